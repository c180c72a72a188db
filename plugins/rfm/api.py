"""``POST /api/v1/plugins/rfm/run``: recompute the scores now (admins only), answering
how many customers each segment holds and how many changed."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, jsonify

from blockscrm.engine import PermissionDenied
from blockscrm.platform.auth import current_user
from blockscrm.platform.extension import current_workspace

from .run import recompute

#: One blueprint for every app of the process (the platform mounts it inside its own).
routes = Blueprint("rfm", __name__)


@routes.before_request
def admins_only() -> None:
    user = current_user()
    if user is None or not user.is_admin:
        raise PermissionDenied("only an admin may recompute the RFM scores")


@routes.post("/run")
def run() -> Response:
    outcome = recompute(current_workspace(), dt.datetime.now(dt.UTC).replace(tzinfo=None))
    return jsonify({"segments": outcome.segments, "updated": outcome.updated})
