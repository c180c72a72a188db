"""The engine's own hook implementations, registered like any plugin's."""

from __future__ import annotations

from .actions import Action, builtin_actions
from .fieldtypes import FieldType, builtin_field_types
from .hookspecs import hookimpl
from .rules import RuleFunction, builtin_functions


@hookimpl
def blocks_field_types() -> list[FieldType]:
    return builtin_field_types()


@hookimpl
def blocks_rule_functions() -> list[RuleFunction]:
    return builtin_functions()


@hookimpl
def blocks_actions() -> list[Action]:
    return builtin_actions()
