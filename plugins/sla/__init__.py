"""The sla plugin: service-level timers on any entity.

A workspace's settings hold one policy per timed entity (:mod:`.settings`): targets for
the first response and the resolution per priority, in working time (:mod:`.business_time`
does the arithmetic: business hours in a time zone, holidays); the workflow states in
which the clock stops; what marks the first response and the resolution; the fields the
plugin writes. When a record is created or its priority changes, its due times are set
on it; pauses move them later (:mod:`.timers`, with the plugin's own table in
:mod:`.store`). Every minute a schedule finds the records past their warning or due
moment, sets their SLA status and fires the ``sla`` trigger (:mod:`.escalation`), which
automations listen to for escalations. Settings naming an entity, field or state the
workspace does not have, or business hours closing before they open, are refused when the
plugin is enabled or its settings change (:func:`.settings.problems`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from blockscrm.engine import Entity, PluginInfo, Schedule, Workspace, hookimpl
from blockscrm.engine.automations import TriggerType

from . import clock, escalation, timers
from .settings import NAME, policies, problems, schema


@hookimpl
def blocks_plugin_info() -> PluginInfo:
    return PluginInfo(NAME, "1.0.0", ">=0.1,<1", settings=schema(),
                      label={"en": "Service levels"},
                      description="Due times for the first response and the resolution of "
                                  "records by priority, in business hours; warnings and "
                                  "breaches fire automations.")


@hookimpl
def blocks_check_settings(ws: Workspace, settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    return problems(ws, settings)


@hookimpl
def blocks_triggers() -> list[TriggerType]:
    return [escalation.TRIGGER]


@hookimpl
def blocks_schedules() -> list[Schedule]:
    return [Schedule("escalate", "* * * * *", escalation.check)]


@hookimpl
def blocks_before_validate(ws: Workspace, entity: Entity, values: Mapping[str, Any],
                           previous: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    policy = policies(ws).get(entity.name)
    if policy is None:
        return None
    return timers.due_values(policy, entity, values, previous, clock.now())


@hookimpl
def blocks_before_save(ws: Workspace, conn: sa.Connection, entity: Entity, action: str,
                       record: Mapping[str, Any], previous: Mapping[str, Any] | None
                       ) -> None:
    policy = policies(ws, conn).get(entity.name)
    if policy is not None:
        timers.keep(conn, ws, policy, action, record, previous, clock.now())


@hookimpl
def blocks_after_commit(ws: Workspace, entity: Entity, action: str,
                        record: Mapping[str, Any], previous: Mapping[str, Any] | None
                        ) -> None:
    policy = policies(ws).get(entity.name)
    if policy is None or action != "transition" or previous is None:
        return
    if previous.get("state") in policy.paused_states and \
            record.get("state") not in policy.paused_states:
        timers.mirror(ws, policy, record)

