"""Approval routes (DESIGN.md's contract): submit a record, list the caller's inbox,
approve, reject or recall a request; and delegate one's approvals for a period."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from blockscrm.engine import QueryError, ValidationError

from ..auth import current_user
from ..extension import current_workspace
from .inputs import json_object

approvals_bp = Blueprint("approvals", __name__)
DECISIONS = ("approve", "reject", "recall")


def _comment(body: dict[str, Any]) -> str | None:
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 5000):
        raise ValidationError([("comment", "must be text of at most 5,000 characters")])
    return comment


@approvals_bp.post("/records/<entity>/<record_id>/approvals")
def submit(entity: str, record_id: str) -> Response:
    """Submit the record (``{"approval": name}`` picks the process, else the first whose
    entry condition holds); 201 with the request."""
    body = json_object(optional=True)
    name = body.get("approval")
    if name is not None and not isinstance(name, str):
        raise ValidationError([("approval", "must be the name of an approval process")])
    submitted = current_workspace().approvals.submit(entity, record_id, approval=name,
                                                     user=current_user(),
                                                     comment=_comment(body))
    response = jsonify(submitted)
    response.status_code = 201
    response.headers["Location"] = url_for(".get_request", request_id=submitted["id"])
    return response


@approvals_bp.get("/approvals")
def inbox() -> Response:
    """``?mine=pending``: the requests whose current step the caller may decide."""
    if request.args.get("mine") != "pending":
        raise QueryError({"mine": ["say mine=pending: the approvals waiting on you"]})
    user = current_user()
    assert user is not None
    return jsonify({"items": current_workspace().approvals.inbox(user)})


@approvals_bp.get("/approvals/<int:request_id>")
def get_request(request_id: int) -> Response:
    return jsonify(current_workspace().approvals.get(request_id, user=current_user()))


@approvals_bp.post("/approvals/<int:request_id>/<decision>")
def decide(request_id: int, decision: str) -> Response:
    """Approve or reject (with an optional ``comment``), or recall (the submitter)."""
    if decision not in DECISIONS:
        raise QueryError({"decision": [f"must be one of {', '.join(DECISIONS)}"]})
    body = json_object(optional=True)
    approvals, user = current_workspace().approvals, current_user()
    assert user is not None
    comment = _comment(body)
    if decision == "approve":
        answer = approvals.approve(request_id, user=user, comment=comment)
    elif decision == "reject":
        answer = approvals.reject(request_id, user=user, comment=comment)
    else:
        answer = approvals.recall(request_id, user=user, comment=comment)
    return jsonify(answer)


@approvals_bp.post("/approvals/delegations")
def delegate() -> tuple[dict[str, Any], int]:
    """Let another user decide the caller's approvals: ``{"to", "starts", "ends"}``."""
    body = json_object()
    errors = []
    moments = {}
    for key in ("starts", "ends"):
        try:
            moments[key] = dt.datetime.fromisoformat(str(body.get(key, "")).replace("Z", "+00:00"))
        except ValueError:
            errors.append((key, "must be a date-time"))
    if not isinstance(body.get("to"), str):
        errors.append(("to", "must be a username"))
    if errors:
        raise ValidationError(errors)
    naive = {k: v.astimezone(dt.UTC).replace(tzinfo=None) if v.tzinfo else v
             for k, v in moments.items()}
    user = current_user()
    assert user is not None
    current_workspace().approvals.delegate(user, body["to"], naive["starts"], naive["ends"])
    return {"delegated_to": body["to"]}, 201
