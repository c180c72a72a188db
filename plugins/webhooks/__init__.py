"""The ``webhooks`` plugin: other systems told of the records' changes, and told to act.

- Outgoing (:mod:`.outgoing`): the ``webhook`` action POSTs a rule's record as signed JSON
  to a URL.
- Incoming (:mod:`.incoming`): ``POST /api/v1/plugins/webhooks/incoming/<hook>``, signed
  with the hook's secret, fires the ``webhook`` trigger on the record it names; rules
  listen with ``"trigger": {"on": "webhook", "hook": "<hook>"}``, and their actions'
  templates read what the call sent as ``payload`` (``{{ payload.data.invoice }}``;
  ``payload.hook`` and ``payload.delivery`` too).

The settings name hooks and their secrets, nothing of the workspace's definitions, so
their schema is their whole check.

::

    blocks plugin enable webhooks --settings '{"incoming": {"billing": {"secret": "…"}},
                                              "tolerance": 300}'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blockscrm.engine import PluginInfo, hookimpl
from blockscrm.engine.actions import Action
from blockscrm.engine.automations import TriggerType

from .outgoing import ACTION

NAME = "webhooks"
TRIGGER_NAME = "webhook"
HOOK_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,62}$"}
SETTINGS = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "incoming": {
            "type": "object", "propertyNames": HOOK_NAME,
            "additionalProperties": {
                "type": "object", "required": ["secret"], "additionalProperties": False,
                "properties": {"secret": {"type": "string", "minLength": 16,
                                          "maxLength": 256}}}},
        # Seconds a call's timestamp may be from the server's clock; a delivery id is
        # remembered that long.
        "tolerance": {"type": "integer", "minimum": 30, "maximum": 3600, "default": 300},
    },
}


def _same_hook(options: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    """A rule listens to the calls of the one hook it names."""
    return bool(options.get("hook") == payload.get("hook"))


TRIGGER = TriggerType(TRIGGER_NAME, {"type": "object", "required": ["hook"],
                                     "additionalProperties": False,
                                     "properties": {"hook": HOOK_NAME}},
                      label={"en": "Incoming webhook", "zh": "传入 Webhook"},
                      matches=_same_hook)


@hookimpl
def blocks_plugin_info() -> PluginInfo:
    return PluginInfo(NAME, "0.1.0", ">=0.1,<1", settings=SETTINGS,
                      label={"en": "Webhooks", "zh": "Webhook"},
                      description="Signed webhooks: an action that calls out, and a "
                                  "trigger that signed calls in fire.")


@hookimpl
def blocks_actions() -> list[Action]:
    return [ACTION]


@hookimpl
def blocks_triggers() -> list[TriggerType]:
    return [TRIGGER]


@hookimpl
def blocks_api_routes() -> Any:
    from .incoming import routes  # the web platform's part: loaded only where it serves

    return routes
