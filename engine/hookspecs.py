"""The engine's hook specifications: every extension point, built-in or plugin, in one place.

Built-ins are registered as a plugin too (:mod:`blockscrm.engine.builtins`), so the
engine's registries are filled through these hooks from the first line of code.
Implementations are found through the entry-point group ``blockscrm.plugins``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .actions import Action
    from .fieldtypes import FieldType
    from .rules import RuleFunction

PROJECT = "blockscrm"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- Registries ---------------------------------------------------------------------------


@hookspec
def blocks_field_types() -> list[FieldType]:
    """Return the field types this plugin adds.

    Called once when a workspace opens. A field type's ``name`` is what entity
    definitions write in ``x-field``; two plugins may not register the same name.
    """


@hookspec
def blocks_rule_functions() -> list[RuleFunction]:
    """Return the rule-language functions this plugin adds.

    Called once when a workspace opens. Each :class:`~blockscrm.engine.rules.RuleFunction`
    brings its signature check (argument types to result type), its Python
    implementation and its SQL implementation (or ``python_only=True``), so both
    compilers can run it. A name may be registered once.
    """


@hookspec
def blocks_actions() -> list[Action]:
    """Return the automation actions this plugin adds.

    Called once when a workspace opens. An :class:`~blockscrm.engine.actions.Action`'s
    ``name`` is what a rule's action writes in ``type``; its ``schema`` checks the
    action's own keys when the rule is published, and ``run(context, params)`` does the
    work (raise :class:`~blockscrm.engine.errors.ActionFailed` when it cannot: a rule run
    with the save then rolls the save back, a job is retried). A name may be registered
    once.
    """
