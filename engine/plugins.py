"""The plugin manager: built-ins first, then whatever the ``blockscrm.plugins`` group names."""

from __future__ import annotations

import pluggy

from . import builtins, hookspecs
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


def collect_field_types(hook: pluggy.HookRelay) -> dict[str, FieldType]:
    """Every registered field type by name; a name registered twice is an error."""
    registry: dict[str, FieldType] = {}
    for types in hook.blocks_field_types():
        for field_type in types:
            if field_type.name in registry:
                raise DefinitionError(
                    {"/x-field": [f"field type {field_type.name!r} is registered twice"]}
                )
            registry[field_type.name] = field_type
    return registry


def collect_rule_functions(hook: pluggy.HookRelay) -> dict[str, RuleFunction]:
    """Every registered rule-language function by name; a name registered twice is an error."""
    registry: dict[str, RuleFunction] = {}
    for functions in hook.blocks_rule_functions():
        for function in functions:
            if function.name in registry:
                raise DefinitionError(
                    {"/": [f"rule function {function.name!r} is registered twice"]})
            registry[function.name] = function
    return registry
