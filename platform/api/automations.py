"""Automation routes: the run log across records, re-running a failed run, and the dry
run of a rule. Runs show records' data, so these are for admins."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from blockscrm.engine import PermissionDenied, QueryError

from ..auth import current_user
from ..extension import current_workspace
from .inputs import int_parameter, json_body

automations_bp = Blueprint("automations", __name__)
STATUSES = ("queued", "running", "done", "failed", "skipped", "cut")


@automations_bp.before_request
def _admins_only() -> None:
    user = current_user()
    if user is None or not user.is_admin:
        raise PermissionDenied("only an admin may see and re-run automation runs")


@automations_bp.get("/runs")
def list_runs() -> Response:
    """Runs of one entity's rules, newest first; ``status=failed`` for the ones to re-run."""
    entity, status = request.args.get("entity", ""), request.args.get("status")
    if not entity:
        raise QueryError({"entity": ["name the entity whose runs to list"]})
    if status is not None and status not in STATUSES:
        raise QueryError({"status": [f"must be one of {', '.join(STATUSES)}"]})
    items = current_workspace().automations.runs(entity, status=status,
                                                 limit=int_parameter("limit", 100))
    return jsonify({"items": items})


@automations_bp.get("/runs/<int:run_id>")
def get_run(run_id: int) -> Response:
    return jsonify(current_workspace().automations.run(run_id))


@automations_bp.post("/runs/<int:run_id>/rerun")
def rerun(run_id: int) -> Response:
    """Queue a failed run again; answers it as it stands after queueing (inline: done)."""
    ws = current_workspace()
    ws.automations.rerun(run_id)
    return jsonify(ws.automations.run(run_id))


@automations_bp.get("/automations/<name>/dry-run")
def dry_run(name: str) -> Response:
    """The records the rule's condition selects now, and what it would do to each."""
    return jsonify(current_workspace().automations.dry_run(name,
                                                           limit=int_parameter("limit", 20)))


@automations_bp.post("/automations/dry-run")
def dry_run_definition() -> Response:
    """The same for a rule not published yet: the body is its definition (the
    designer's draft), tried on the records of its published entity. Nothing is saved."""
    return jsonify(current_workspace().automations.dry_run(json_body(),
                                                           limit=int_parameter("limit", 20)))
