"""Record routes: list, create, read, update, delete and history of published entities.

Handlers stay thin: the engine validates, queries and versions; these translate HTTP
(query parameters, ``ETag`` and ``If-Match``, 201 with ``Location``, 204) to its calls.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from blockscrm.engine import NotFound
from blockscrm.engine.query import DEFAULT_LIMIT

from ..auth import current_user
from ..extension import current_workspace
from ..problems import abort_with_problem
from .inputs import bool_parameter, if_match_version, int_parameter, json_body, json_object
from .inputs import text_parameter as param

records_bp = Blueprint("records", __name__, url_prefix="/records")


def _record_response(record: dict[str, Any], status: int = 200) -> Response:
    """A record with its version as the ``ETag``, which ``If-Match`` sends back."""
    response = jsonify(record)
    response.status_code = status
    response.set_etag(str(record["version"]))
    return response


@records_bp.get("/<entity>")
def list_records(entity: str) -> Response:
    """One page of records; ``next_cursor`` fetches the next, ``count=true`` counts all."""
    query = current_workspace().query(entity, user=current_user())
    if (condition := param("filter")) is not None:
        query = query.filter(condition)
    if (text := param("q")) is not None:
        query = query.search(text)
    if (keys := param("sort")) is not None:
        query = query.sort(keys)
    if (names := param("fields")) is not None:
        query = query.fields(names)
    query = query.limit(int_parameter("limit", DEFAULT_LIMIT))
    page = query.page(param("cursor"))
    body: dict[str, Any] = {"items": page.items, "next_cursor": page.next_cursor}
    if bool_parameter("count"):
        body["count"] = query.count(exact=True).value  # every match, as the contract says
    return jsonify(body)


@records_bp.post("/<entity>")
def create_record(entity: str) -> Response:
    record = current_workspace().records.create(entity, json_body(), user=current_user())
    response = _record_response(record, 201)
    response.headers["Location"] = url_for(".get_record", entity=entity,
                                           record_id=record["id"])
    return response


@records_bp.get("/<entity>/<record_id>")
def get_record(entity: str, record_id: str) -> Response:
    record = current_workspace().records.get(entity, record_id, user=current_user())
    return _record_response(record)


@records_bp.patch("/<entity>/<record_id>")
def update_record(entity: str, record_id: str) -> Response:
    """Apply the fields sent (``null`` clears one); a stale ``If-Match`` is refused (409)."""
    changes = json_object()
    record = current_workspace().records.update(entity, record_id, changes,
                                                version=if_match_version(),
                                                user=current_user())
    return _record_response(record)


@records_bp.delete("/<entity>/<record_id>")
def delete_record(entity: str, record_id: str) -> Response:
    current_workspace().records.delete(entity, record_id, version=if_match_version(),
                                       user=current_user())
    return Response(status=204)


@records_bp.get("/<entity>/<record_id>/history")
def record_history(entity: str, record_id: str) -> Response:
    """The record's audit trail, oldest first (a deleted record keeps its trail), and the
    automation runs that fired on it, newest first: which rules, why, what they did."""
    ws = current_workspace()
    entries = ws.records.history(entity, record_id, user=current_user())
    if not entries:
        raise NotFound(f"no {entity} record with id {record_id!r}")
    runs = ws.automations.runs(entity, record_id)
    user = current_user()
    if user is not None and not user.is_admin:
        for run in runs:  # what an action wrote may be hidden from this reader
            run["steps"] = [{"action": s.get("action")} for s in run["steps"]]
    return jsonify({"items": entries, "runs": runs})


@records_bp.get("/<entity>/<record_id>/transitions")
def list_transitions(entity: str, record_id: str) -> Response:
    """The workflow transitions the caller may take from the record's state, with the
    fields each still needs and whether its guard holds."""
    items = current_workspace().records.transitions(entity, record_id, user=current_user())
    return jsonify({"items": items})


@records_bp.post("/<entity>/<record_id>/transitions/<transition>")
def take_transition(entity: str, record_id: str, transition: str) -> Response:
    """Take a transition; ``{"values": {...}}`` fills the fields it requires on the way."""
    body = json_object(optional=True)
    unknown = sorted(set(body) - {"values"})
    if unknown:
        abort_with_problem(422, "a transition takes only values",
                           errors={k: ["is not a transition parameter"] for k in unknown})
    record = current_workspace().records.transition(
        entity, record_id, transition, values=body.get("values"), version=if_match_version(),
        user=current_user())
    return _record_response(record)


@records_bp.post("/<entity>/<record_id>/shares")
def share(entity: str, record_id: str) -> tuple[dict[str, Any], int]:
    """Share the record with ``{"user": …}`` or ``{"team": …}``, to ``read`` or ``edit``
    (whoever may edit it may share it)."""
    body = json_object()
    unknown = sorted(set(body) - {"user", "team", "access"})
    if unknown:
        abort_with_problem(422, "a share names a user or a team, and an access",
                           errors={k: ["is not a share parameter"] for k in unknown})
    who = {k: body.get(k) for k in ("user", "team")}
    if any(v is not None and not isinstance(v, str) for v in who.values()):
        abort_with_problem(422, "a share names a user or a team by name",
                           errors={"with": ["user and team are names"]})
    access = body.get("access", "read")
    current_workspace().access.share(entity, record_id, with_user=who["user"],
                                     with_team=who["team"], access=access,
                                     by=current_user())
    return {"user": who["user"], "team": who["team"], "access": access}, 201


@records_bp.delete("/<entity>/<record_id>/shares")
def unshare(entity: str, record_id: str) -> Response:
    """Stop sharing the record with ``?user=`` or ``?team=``."""
    current_workspace().access.unshare(entity, record_id, with_user=param("user"),
                                       with_team=param("team"), by=current_user())
    return Response(status=204)
