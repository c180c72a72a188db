"""The ``stamp`` automation action: sets a text field to the greeting in the plugin's
settings, as ``{"type": "stamp", "field": "note"}``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from blockscrm.engine import Entity
from blockscrm.engine.actions import Action, ActionContext

#: The plugin's name, as its settings are kept under.
PLUGIN = "example"
DEFAULT_GREETING = "Hello"
TEXT_TYPES = frozenset({"text", "long_text"})


def greeting(ctx: ActionContext) -> str:
    return str(ctx.ws.plugins.settings(PLUGIN).get("greeting", DEFAULT_GREETING))


def run(ctx: ActionContext, params: Mapping[str, Any]) -> Any:
    """Write through the record service, so the change is validated and audited like any
    other (``ctx.writer`` names the rule, or the user it acts as)."""
    values = {params["field"]: greeting(ctx)}
    ctx.ws.records.update(ctx.entity.name, ctx.record["id"], values, **ctx.writer)
    return {"stamped": values}


def describe(ctx: ActionContext, params: Mapping[str, Any]) -> Any:
    """What a dry run shows instead of writing."""
    return {"would stamp": {params["field"]: greeting(ctx)}}


def check(params: Mapping[str, Any], entity: Entity, catalog: Any
          ) -> Iterable[tuple[str, str]]:
    """Refuse, when the rule is published, a field the action could not write."""
    found = entity.fields.get(params["field"])
    if found is None or found.type.name not in TEXT_TYPES:
        yield "/field", f"{entity.name} has no text field {params['field']!r}"


STAMP = Action(
    "stamp",
    {"type": "object", "required": ["type", "field"], "additionalProperties": False,
     "properties": {"type": {"const": "stamp"}, "field": {"type": "string", "minLength": 1}}},
    run, check=check, describe=describe, label={"en": "Stamp a greeting"})
