"""``GET /api/v1/plugins/lead-scoring/history/<entity>/<id>``: a scored record's score and
its changes, newest first, for a caller who may read the record and its score."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from blockscrm.engine import NotFound, PermissionDenied
from blockscrm.platform.auth import current_user
from blockscrm.platform.extension import current_workspace

from .history import changes
from .settings import settings_of

#: The most changes one call answers (``?limit=``, default 100).
MOST = 1000


#: One blueprint for every app of the process (the platform mounts it inside its own).
routes = Blueprint("lead_scoring", __name__)


@routes.get("/history/<entity>/<record_id>")
def history(entity: str, record_id: str) -> Response:
    ws = current_workspace()
    settings = settings_of(ws.catalog())
    if settings is None or settings["entity"] != entity:
        raise NotFound(f"{entity!r} records are not scored")
    record = ws.records.get(entity, record_id, user=current_user())
    if settings["score_field"] not in record:
        raise PermissionDenied("the score is hidden from you")
    limit = min(max(request.args.get("limit", 100, type=int) or 100, 1), MOST)
    return jsonify({"entity": entity, "id": record_id,
                    "score": record[settings["score_field"]],
                    "history": changes(ws, entity, record_id, limit=limit)})
