"""An example Blocks CRM plugin: the hooks the engine calls, one function each.

The entry point ``example = "blocks_example"`` (``pyproject.toml``) names this module;
the engine reads :func:`blocks_plugin_info` at start-up, and calls the other hooks only
for the workspaces that enabled the plugin (``blocks plugin enable example``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint

from blockscrm.engine import Entity, FieldType, Panel, PluginInfo, hookimpl
from blockscrm.engine.actions import Action
from blockscrm.engine.rules import RuleFunction

from .rating import RATING, STARS
from .stamp import PLUGIN, STAMP
from .web import rating_fields, render_panel, routes


@hookimpl
def blocks_plugin_info() -> PluginInfo:
    """Who the plugin is, the engine versions it works with, and its settings' schema."""
    return PluginInfo(
        PLUGIN, "0.1.0", ">=0.1,<1",
        settings={"type": "object", "additionalProperties": False,
                  "properties": {"greeting": {"type": "string", "minLength": 1,
                                              "maxLength": 80}}},
        label={"en": "Example"},
        description="A rating field, stars(), a stamp action, a summary route and a panel.")


@hookimpl
def blocks_field_types() -> list[FieldType]:
    return [RATING]


@hookimpl
def blocks_rule_functions() -> list[RuleFunction]:
    return [STARS]


@hookimpl
def blocks_actions() -> list[Action]:
    return [STAMP]


@hookimpl
def blocks_before_save(record: Mapping[str, Any]) -> None:
    """Fail on purpose when a record's title is ``explode``: the engine then rolls the
    whole write back and answers an error naming this plugin (a 500 from the API). A
    plugin that means to refuse a write raises ``ValidationError`` instead (a 422)."""
    if record.get("title") == "explode":
        raise RuntimeError("the example plugin explodes on purpose")


@hookimpl
def blocks_api_routes() -> Blueprint:
    return routes()


@hookimpl
def blocks_record_panels(entity: Entity) -> list[Panel]:
    """The stars panel, on the records of entities that have a rating field."""
    if not rating_fields(entity):
        return []
    return [Panel("stars", {"en": "Rating"}, render_panel)]
