"""The designer under ``/designer/``, where business users build their CRM.

Each page is a shell whose script reads and writes through the metadata REST routes
(``/api/v1/meta``: drafts, plan, publish, versions), the same ones every API client
uses, so whatever is built here can be exported as a blueprint. Only admins design.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from blockscrm.engine.definitions import KINDS
from blockscrm.platform.auth import current_user
from blockscrm.platform.extension import current_workspace
from blockscrm.platform.i18n import gettext

bp = Blueprint("designer", __name__, url_prefix="/designer", template_folder="templates",
               static_folder="static")


@bp.before_request
def _designers_only() -> Response | None:
    user = current_user()
    if user is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if not user.is_admin:
        abort(403)
    return None


@bp.get("/")
def home() -> str:
    """Every definition by kind, with what is waiting in drafts."""
    ws = current_workspace()
    pending = set(ws.metadata.pending())
    kinds: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        kinds[kind] = [{"name": d["name"], "label": d.get("label", {}),
                        "draft": (kind, d["name"]) in pending}
                       for d in ws.metadata.list(kind)]
    deleting = sorted(k for k in pending if k[1] not in {d["name"] for d in kinds[k[0]]})
    kind_labels = {"entity": gettext("Entities"), "form": gettext("Forms"),
                   "view": gettext("Views"), "workflow": gettext("Workflows"),
                   "automation": gettext("Automations"), "approval": gettext("Approvals"),
                   "dashboard": gettext("Dashboards"), "role": gettext("Roles")}
    return render_template("designer/home.html", kinds=kinds, pending=len(pending),
                           deleting=deleting, kind_labels=kind_labels,
                           edited=editors.EDITED, new_labels={
                               "form": gettext("New form"), "view": gettext("New view"),
                               "dashboard": gettext("New dashboard"),
                               "workflow": gettext("New workflow"),
                               "automation": gettext("New automation"),
                               "approval": gettext("New approval")})


@bp.get("/review")
def review() -> str:
    """The plan of every draft, to read and publish (its script does both)."""
    return render_template("designer/review.html")


@bp.get("/history")
def history() -> str:
    """Every publish, and each definition's versions: diff two, restore one."""
    return render_template("designer/history.html")


# Each module's routes join bp.
from . import (  # noqa: E402,F401
    approvals,
    automations,
    dashboards,
    editors,
    entities,
    forms,
    views,
    workflows,
)
