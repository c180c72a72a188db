"""The engine's hook specifications: every extension point, built-in or plugin, in one place.

Built-ins are registered as a plugin too (:mod:`blockscrm.engine.builtins`), so the
engine's registries are filled through these hooks from the first line of code.
Plugins are found through the entry-point group ``blockscrm.plugins``
(:mod:`blockscrm.engine.plugins`); each workspace enables the ones it uses, and the hooks
of a plugin it has not enabled are not called for it.

A hook that fails raises :class:`~blockscrm.engine.errors.PluginFailed`, naming the
plugin: a failure inside a write rolls the whole write back.

The web hooks (API routes, panels, cards) answer Flask objects or HTML: the engine only
carries them to the platform, which is what imports Flask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from email.message import EmailMessage

    import sqlalchemy as sa

    from .accounts import User
    from .actions import Action
    from .automations import TriggerType
    from .entities import Entity
    from .fieldtypes import FieldType
    from .plugins import CardType, Panel, PluginInfo, Schedule
    from .rules import RuleFunction
    from .workspace import Workspace

PROJECT = "blockscrm"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- Who the plugin is ----------------------------------------------------------------------


@hookspec
def blocks_plugin_info() -> PluginInfo:
    """Return the plugin's name, version, the engine versions it supports and the JSON
    Schema of its settings.

    Called once at start-up, for each installed plugin, before anything else of it: a
    plugin whose supported versions leave the running engine out is refused there, with
    that reason, and none of its other hooks is ever called.
    """


@hookspec
def blocks_check_settings(ws: Workspace, settings: Mapping[str, Any]
                          ) -> list[tuple[str, str]] | None:
    """Return what does not fit ``ws`` in settings that passed the plugin's schema (an
    entity or field they name that is not there), as ``(JSON Pointer, message)`` pairs.

    Called when a workspace enables the plugin or changes its settings: a problem refuses
    the change, so a plugin never runs on settings that cannot work.
    """


# --- Registries ---------------------------------------------------------------------------


@hookspec
def blocks_field_types() -> list[FieldType]:
    """Return the field types this plugin adds.

    Called when a workspace opens, and again when it enables or disables a plugin. A field
    type's ``name`` is what entity definitions write in ``x-field``; it brings its column,
    its JSON Schema, its widget and its formatting. Two plugins may not register one name.
    """


@hookspec
def blocks_rule_functions() -> list[RuleFunction]:
    """Return the rule-language functions this plugin adds.

    Called like :func:`blocks_field_types`. Each
    :class:`~blockscrm.engine.rules.RuleFunction` brings its signature check (argument
    types to result type), its Python implementation and its SQL implementation (or
    ``python_only=True``), so both compilers can run it. A name may be registered once.
    """


@hookspec
def blocks_actions() -> list[Action]:
    """Return the automation actions this plugin adds.

    Called like :func:`blocks_field_types`. An :class:`~blockscrm.engine.actions.Action`'s
    ``name`` is what a rule's action writes in ``type``; its ``schema`` checks the action's
    own keys when the rule is published, and ``run(context, params)`` does the work (raise
    :class:`~blockscrm.engine.errors.ActionFailed` when it cannot: a rule run with the
    save then rolls the save back, a job is retried). A name may be registered once.
    """


@hookspec
def blocks_triggers() -> list[TriggerType]:
    """Return the automation triggers this plugin adds.

    Called like :func:`blocks_field_types`. A rule names one in ``trigger.on``; its
    ``schema`` checks the trigger's other keys. The plugin fires it with
    ``ws.automations.trigger(name, entity, record_id, payload)``, and the rules listening
    run as for any event. A name may be registered once.
    """


@hookspec
def blocks_schedules(ws: Workspace) -> list[Schedule]:
    """Return work this plugin wants done in ``ws`` on a schedule (a cron expression,
    which may come from the workspace's settings of the plugin).

    Called at each timer tick (``blocks worker`` ticks) for the workspaces that enabled
    the plugin; a schedule that is due runs once per due time, with the workspace and the
    tick's time, whichever process ticks first.
    """


@hookspec
def blocks_deliver_email(ws: Workspace, message: EmailMessage) -> str | None:
    """Deliver an email an automation sends, and answer how (``"sent"``), or None to leave
    it to another plugin.

    The first plugin that answers delivers it; with none, the message is only kept in the
    workspace's outbox. Raise :class:`~blockscrm.engine.errors.ActionFailed` when the
    delivery fails (a job is then retried).
    """


# --- Records ------------------------------------------------------------------------------


@hookspec
def blocks_before_validate(ws: Workspace, entity: Entity, values: Mapping[str, Any],
                           previous: Mapping[str, Any] | None, record_id: str | None,
                           user: User | None) -> Mapping[str, Any] | None:
    """Return values to set on a record about to be created or updated, or None.

    Called with the record's values as they will be validated: every field, not only the
    changed ones, empty values left out and, on create, defaults filled in. ``previous``
    is the values before an update and ``record_id`` its record (both None on create).
    What it returns is merged in and then validated with the rest, so a plugin may fill
    or compute a field (a score, a due date) but not store what the entity refuses.
    """


@hookspec
def blocks_before_save(ws: Workspace, conn: sa.Connection, entity: Entity, action: str,
                       record: Mapping[str, Any], previous: Mapping[str, Any] | None,
                       user: User | None) -> None:
    """Look at a write that passed validation, inside its transaction, before it lands.

    ``action`` is ``create``, ``update``, ``transition`` or ``delete`` (then ``record`` is
    the record being deleted). Raise :class:`~blockscrm.engine.errors.ValidationError` to
    refuse it; anything the plugin writes through ``conn`` lands or rolls back with it.
    """


@hookspec
def blocks_after_commit(ws: Workspace, entity: Entity, action: str,
                        record: Mapping[str, Any], previous: Mapping[str, Any] | None
                        ) -> None:
    """Act on a write once it has committed (send, index, notify elsewhere).

    The write is done whatever happens here: a failure is logged, naming the plugin.
    """


# --- Web: API, record panels, dashboard cards, command line ---------------------------------


@hookspec
def blocks_api_routes() -> Any:
    """Return a Flask blueprint of the plugin's API routes, or None.

    The platform mounts it under ``/api/v1/plugins/<plugin name>/``, behind the API's
    authentication and errors; in a workspace that has not enabled the plugin the routes
    answer 404.
    """


@hookspec
def blocks_record_panels(ws: Workspace, entity: Entity) -> list[Panel]:
    """Return the panels this plugin adds to the 360° view of ``entity``'s records.

    A :class:`~blockscrm.engine.plugins.Panel`'s ``render(ws, entity, record, user)``
    answers HTML, which the screen shows as it is: escape what comes from records.
    """


@hookspec
def blocks_dashboard_cards() -> list[CardType]:
    """Return the dashboard card types this plugin adds.

    A dashboard's card names one in ``type`` (``plugin:<name>``); the card type's
    ``render(ws, card, user)`` answers its HTML, computed as the viewer.
    """


@hookspec
def blocks_cli_commands() -> list[Any]:
    """Return click commands the ``blocks`` command line offers (``blocks <name> …``)."""
