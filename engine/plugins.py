"""The plugin manager: built-ins first, then whatever the ``blockscrm.plugins`` group names."""

from __future__ import annotations

from typing import TypeVar

import pluggy

from . import builtins, hookspecs
from .actions import Action
from .errors import DefinitionError
from .fieldtypes import FieldType
from .rules import RuleFunction


def create_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the engine's hooks, its built-ins and the installed plugins.

    ``check_pending()`` makes a misspelled hook implementation fail loudly.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(builtins, name="blockscrm.builtins")
    if load_entry_points:
        pm.load_setuptools_entrypoints("blockscrm.plugins")
    pm.check_pending()
    return pm


Named = TypeVar("Named", FieldType, RuleFunction, Action)


def _by_name(answers: list[list[Named]], what: str) -> dict[str, Named]:
    """One registry from every plugin's answer to a hook; a name given twice is an error."""
    registry: dict[str, Named] = {}
    for items in answers:
        for item in items:
            if item.name in registry:
                raise DefinitionError({"/": [f"{what} {item.name!r} is registered twice"]})
            registry[item.name] = item
    return registry


def collect_field_types(hook: pluggy.HookRelay) -> dict[str, FieldType]:
    """Every registered field type by name."""
    return _by_name(hook.blocks_field_types(), "field type")


def collect_rule_functions(hook: pluggy.HookRelay) -> dict[str, RuleFunction]:
    """Every registered rule-language function by name."""
    return _by_name(hook.blocks_rule_functions(), "rule function")


def collect_actions(hook: pluggy.HookRelay) -> dict[str, Action]:
    """Every registered automation action by name."""
    return _by_name(hook.blocks_actions(), "action")
