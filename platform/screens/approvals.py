"""The approval inbox, and the decisions taken from it or from a record's approval panel:
submit, approve, reject, recall. Each goes through the engine as the user, so the
engine's checks (who may decide, which step) are the screen's."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from blockscrm.engine.errors import BlocksError, NotFound

from ..auth import local_target
from ..extension import current_workspace
from ..i18n import gettext, label
from . import bp
from .helpers import (
    current_catalog,
    display,
    field_label,
    navigation,
    parse_id,
    record_title,
    reference_titles,
    the_user,
    title_field,
)

DECISIONS = ("approve", "reject", "recall")


@bp.get("/approvals")
def inbox() -> str:
    """The requests waiting on the user: each with its record's title, the step's label,
    and the few fields the engine's summary holds (read as the user: nothing hidden)."""
    user = the_user()
    ws = current_workspace()
    catalog = current_catalog()
    items = ws.approvals.inbox(user)
    for item in items:
        entity = catalog.entities.get(item["entity"])
        summary = item.get("summary") or {}
        title = record_title(entity, summary) if entity else ""
        item["title"] = title or item["record_id"]
        item["entity_label"] = label(entity.label if entity else summary.get("label"),
                                     item["entity"])
        item["step_label"] = label(item.get("step_label"), item.get("step") or "")
        names = [k for k in summary if k not in ("label", "id")
                 and (entity is None or k != title_field(entity))]
        item["fields"] = [{"name": k, "label": field_label(entity, k) if entity else k}
                          for k in names]
    titles = _reference_titles(items, user)
    for item in items:
        entity = catalog.entities.get(item["entity"])
        summary = item.get("summary") or {}
        for f in item["fields"]:
            f["value"] = display(entity, f["name"], summary, titles.get(item["entity"])) \
                if entity else str(summary.get(f["name"]))
    return render_template("app/approvals.html", nav=navigation(user), items=items)


def _reference_titles(items: list[dict[str, Any]], user: Any) -> dict[str, dict[str, str]]:
    """The titles of the records the summaries' references point at, by entity (one
    query per entity and target, not per request)."""
    catalog = current_catalog()
    answer = {}
    for name in {i["entity"] for i in items}:
        entity = catalog.entities.get(name)
        if entity is None:
            continue
        summaries = [i.get("summary") or {} for i in items if i["entity"] == name]
        fields = sorted({f["name"] for i in items if i["entity"] == name
                         for f in i["fields"]})
        answer[name] = reference_titles(entity, summaries, fields, user)
    return answer


@bp.post("/approvals/<int:request_id>/<decision>")
def decide(request_id: int, decision: str) -> Response:
    """Approve, reject or recall; back to where the user came from, with what happened."""
    user = the_user()
    ws = current_workspace()
    comment = (request.form.get("comment") or "").strip() or None
    try:
        if parse_id(str(request_id)) is None:  # past 64 bits: no request, not a 500
            raise NotFound(gettext("Approval request not found."))
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
    return local_target(request.form.get("next") or "") or default
