"""The approval inbox, and the decisions taken from it or from a record's approval panel:
submit, approve, reject, recall. Each goes through the engine as the user, so the
engine's checks (who may decide, which step) are the screen's."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from blockscrm.engine.errors import BlocksError

from ..extension import current_workspace
from ..i18n import gettext
from . import bp
from .helpers import current_catalog, navigation, record_title, the_user

DECISIONS = ("approve", "reject", "recall")


@bp.get("/approvals")
def inbox() -> str:
    user = the_user()
    ws = current_workspace()
    catalog = current_catalog()
    items = ws.approvals.inbox(user)
    for item in items:
        entity = catalog.entities.get(item["entity"])
        summary = item.get("summary") or {}
        item["title"] = record_title(entity, summary) if entity else item["record_id"]
        item["entity_label"] = summary.get("label")
        item["fields"] = {k: v for k, v in summary.items() if k != "label"}
    return render_template("app/approvals.html", nav=navigation(user), items=items)


@bp.post("/approvals/<int:request_id>/<decision>")
def decide(request_id: int, decision: str) -> Response:
    """Approve, reject or recall; back to where the user came from, with what happened."""
    user = the_user()
    ws = current_workspace()
    comment = (request.form.get("comment") or "").strip() or None
    try:
        if decision not in DECISIONS:
            raise BlocksError(gettext("Unknown decision."))
        getattr(ws.approvals, decision)(request_id, user=user, comment=comment)
        flash({"approve": gettext("Approved."), "reject": gettext("Rejected."),
               "recall": gettext("Recalled.")}[decision])
    except BlocksError as exc:
        flash(str(exc), "error")
    return redirect(_back(url_for("screens.inbox")))


@bp.post("/<entity>/<record_id>/submit")
def submit(entity: str, record_id: str) -> Response:
    user = the_user()
    comment = (request.form.get("comment") or "").strip() or None
    try:
        current_workspace().approvals.submit(entity, record_id, user=user, comment=comment,
                                             approval=request.form.get("approval") or None)
        flash(gettext("Submitted for approval."))
    except BlocksError as exc:
        flash(str(exc), "error")
    return redirect(url_for("screens.record_view", entity=entity, record_id=record_id))


def _back(default: str) -> str:
    target = request.form.get("next") or ""
    return target if target.startswith("/app/") and not target.startswith("//") else default
