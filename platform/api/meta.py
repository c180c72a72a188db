"""Metadata routes: meta-schemas, drafts of each definition kind, the plan, publishing.

These are what the designer calls. A definition travels as its JSON document, the same
one ``GET`` answers and ``PUT`` takes back; the kind in the address fills a document
that leaves it out.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from blockscrm.engine import DefinitionError, NotFound, PermissionDenied, QueryError
from blockscrm.engine.definitions import KINDS, meta_schema

from ..auth import SAFE_METHODS, current_user
from ..extension import current_workspace
from ..problems import abort_with_problem
from .inputs import if_match_revision, json_body, json_object

meta_bp = Blueprint("meta", __name__, url_prefix="/meta")


@meta_bp.before_request
def _only_admins_change_definitions() -> None:
    """Anyone logged in reads definitions (the screens label themselves from them); only
    an admin drafts, deletes or publishes."""
    user = current_user()
    if request.method not in SAFE_METHODS and (user is None or not user.is_admin):
        raise PermissionDenied("only an admin may change definitions")


def _actor() -> str | None:
    user = current_user()
    return user.id if user else None


def _known(kind: str) -> str:
    if kind not in KINDS:
        raise NotFound(f"no definition kind named {kind!r}; the kinds are {', '.join(KINDS)}")
    return kind


def _document(kind: str) -> Any:
    """The body as a definition of ``kind``; its own checks are the engine's."""
    document = json_body()
    if isinstance(document, dict):
        document = {"kind": kind, **document}
        if document["kind"] != kind:
            raise DefinitionError({"/kind": [f"must be {kind!r}, as in the address"]})
    return document


@meta_bp.get("/schemas/<kind>")
def get_meta_schema(kind: str) -> Response:
    """The JSON Schema every definition of ``kind`` must pass."""
    return jsonify(meta_schema(kind))


@meta_bp.get("/plan")
def get_plan() -> Response:
    """What publishing every draft would do now."""
    return jsonify(current_workspace().metadata.plan().to_dict())


@meta_bp.post("/publish")
def publish() -> Response:
    """Apply the plan for every draft; ``{"confirm": true}`` allows destructive steps,
    ``{"decisions": {...}}`` answers what the plan asks. A refused plan is a 409."""
    body = json_object(optional=True)
    confirm, decisions = body.get("confirm", False), body.get("decisions")
    errors = {}
    if not isinstance(confirm, bool):
        errors["confirm"] = ["must be true or false"]
    if decisions is not None and not (isinstance(decisions, dict)
                                      and all(isinstance(d, dict) for d in decisions.values())):
        errors["decisions"] = ['must map "entity.field" to an object, such as {"fill": 0}']
    if unknown := sorted(set(body) - {"confirm", "decisions"}):
        errors.update({key: ["is not an option of publish"] for key in unknown})
    if errors:
        abort_with_problem(422, "The publish request is malformed.", errors=errors)
    plan = current_workspace().metadata.publish(confirm=confirm, decisions=decisions,
                                                 actor=_actor())
    return jsonify(plan.to_dict())


@meta_bp.get("/publishes")
def list_publishes() -> Response:
    """The newest publishes: when, by whom, which definitions each changed."""
    return jsonify({"items": current_workspace().metadata.publishes()})


@meta_bp.get("/<kind>")
def list_definitions(kind: str) -> Response:
    """Every definition of ``kind``: the draft where there is one, else the published."""
    return jsonify({"items": current_workspace().metadata.list(_known(kind))})


@meta_bp.post("/<kind>")
def create_definition(kind: str) -> Response:
    """Save a new definition as a draft (409 when the name is taken)."""
    document = current_workspace().metadata.create(_document(_known(kind)), actor=_actor())
    response = _with_revision(jsonify(document), kind, document["name"])
    response.status_code = 201
    response.headers["Location"] = url_for(".get_definition", kind=kind,
                                           name=document["name"])
    return response


def _with_revision(response: Response, kind: str, name: str) -> Response:
    """The definition's revision as its ETag: sent back in If-Match, it keeps two
    editors from overwriting each other."""
    response.set_etag(current_workspace().metadata.revision(kind, name))
    return response


@meta_bp.get("/<kind>/<name>")
def get_definition(kind: str, name: str) -> Response:
    return _with_revision(jsonify(current_workspace().metadata.get(_known(kind), name)),
                          kind, name)


@meta_bp.put("/<kind>/<name>")
def replace_definition(kind: str, name: str) -> Response:
    """Save the document as the definition's draft (409 when If-Match is stale)."""
    document = _document(_known(kind))
    saved = current_workspace().metadata.replace(kind, name, document, actor=_actor(),
                                                 expected=if_match_revision())
    return _with_revision(jsonify(saved), kind, name)


@meta_bp.delete("/<kind>/<name>")
def delete_definition(kind: str, name: str) -> Response:
    """Discard an unpublished draft, or draft the deletion of a published definition."""
    current_workspace().metadata.delete(_known(kind), name, actor=_actor(),
                                        expected=if_match_revision())
    return Response(status=204)


@meta_bp.get("/<kind>/<name>/problems")
def definition_problems(kind: str, name: str) -> Response:
    """What publishing would refuse in the definition as drafted now, by JSON Pointer into
    it (``{"errors": {}}`` when nothing)."""
    return jsonify({"errors": current_workspace().metadata.problems(_known(kind), name)})


@meta_bp.get("/<kind>/<name>/versions")
def list_versions(kind: str, name: str) -> Response:
    """Every published version of a definition, oldest first, with who and when."""
    return jsonify({"items": current_workspace().metadata.versions(_known(kind), name)})


@meta_bp.get("/<kind>/<name>/versions/<int:version>")
def get_version(kind: str, name: str, version: int) -> Response:
    """One published version's document (null where that version deleted it)."""
    return jsonify(current_workspace().metadata.version(_known(kind), name, version))


@meta_bp.get("/<kind>/<name>/diff")
def diff_versions(kind: str, name: str) -> Response:
    """What changed between two published versions (``from`` and ``to``)."""
    bounds = []
    for key in ("from", "to"):
        value = request.args.get(key, "")
        if not value.isascii() or not value.isdigit() or len(value) > 9:
            raise QueryError({key: ["must be a version number"]})
        bounds.append(int(value))
    return jsonify({"changes": current_workspace().metadata.diff(_known(kind), name,
                                                                 *bounds)})


@meta_bp.post("/<kind>/<name>/versions/<int:version>/restore")
def restore_version(kind: str, name: str, version: int) -> Response:
    """Make an earlier version the draft (publishing it goes through the plan)."""
    document = current_workspace().metadata.restore(_known(kind), name, version,
                                                    actor=_actor())
    return _with_revision(jsonify(document), kind, name)
