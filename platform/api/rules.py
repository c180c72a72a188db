"""Rule routes: what a condition builder needs to build rules for an entity, and the one
parser that turns a rule's text into its tree and back.

The designer's condition builder edits the tree in rows and shows the same rule as text
in a tab; both directions go through here, so there is one parser and one type checker,
the engine's. The entity is read as the drafts have it, so a rule can be built on an
entity that is not published yet.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from blockscrm.engine import DefinitionError, PermissionDenied

from ..auth import current_user
from ..extension import current_workspace
from ..screens.helpers import title_field
from ..screens.lists import OPERATORS, filter_fields, operator_labels
from .inputs import json_object

rules_bp = Blueprint("rules", __name__, url_prefix="/rules")


@rules_bp.before_request
def _logged_in() -> None:
    if current_user() is None:
        raise PermissionDenied("log in to build rules")


@rules_bp.get("/<entity>")
def vocabulary(entity: str) -> Response:
    """The fields a builder offers for ``entity`` (name, label, kind, options, and for a
    reference its target and the target's title field), with each kind's operators."""
    return jsonify(_vocabulary(entity, None))


@rules_bp.post("/<entity>/fields")
def vocabulary_of(entity: str) -> Response:
    """The same for the entity as an editor has it, unsaved: ``{"entity": document}``."""
    body = json_object()
    _only(body, {"entity"})
    return jsonify(_vocabulary(entity, body.get("entity")))


def _vocabulary(entity: str, document: Any) -> dict[str, Any]:
    ws = current_workspace()
    ent = ws.metadata.draft_entity(entity, document)
    catalog = ws.metadata.draft_catalog()
    user = current_user()
    assert user is not None
    fields = filter_fields(ent, user)
    for spec in fields:
        found = ent.fields.get(spec["name"])
        if found is not None and found.ref and found.ref in catalog.entities:
            spec["target"] = found.ref
            spec["title"] = title_field(catalog.entities[found.ref])
    return {"entity": entity, "fields": fields, "operators": OPERATORS,
            "labels": operator_labels()}


@rules_bp.post("/<entity>")
def check(entity: str) -> Response:
    """``{"rule": text or tree}`` answers ``{"tree", "text", "type"}``; a rule that does
    not parse or is not well typed is a 422 under ``/rule``. ``"saving": true`` allows
    ``changed()`` and ``previous()`` (validation rules and automation conditions);
    ``"entity": document`` reads the rule against an editor's unsaved entity."""
    body = json_object()
    _only(body, {"rule", "saving", "entity"})
    errors: dict[str, list[str]] = {}
    if "rule" not in body:
        errors["/rule"] = ["give the rule, as text or as a tree"]
    saving = body.get("saving", False)
    if not isinstance(saving, bool):
        errors["/saving"] = ["must be true or false"]
    if errors:
        raise DefinitionError(errors)
    return jsonify(current_workspace().metadata.check_rule(
        entity, body["rule"], saving=saving, document=body.get("entity")))


def _only(body: dict[str, Any], keys: set[str]) -> None:
    if unknown := sorted(set(body) - keys):
        raise DefinitionError({f"/{key}": ["is not an option here"] for key in unknown})
