"""The timers: due times set on a record when it is written, and the clock's state kept
with each write.

* Before validation (:func:`due_values`), a new record gets each target's due time: its
  priority's target in working time from now. When the priority changes, each due time
  moves by the difference between the two targets, so time already used and time paused
  still count. The due times are fields of the record, validated and saved with it.
* Before the save lands (:func:`keep`), the plugin's table follows the record: the due
  times and the warning moments derived from them, whether a pause began or ended, the
  first response, the resolution. When a pause ends, the working time it lasted is added
  to the due times there, and :func:`mirror` copies them onto the record once the
  transition has committed (a hook before validation does not see the state a
  transition moves to, and one before the save can no longer change the record).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from blockscrm.engine import Entity, Workspace

from . import store
from .settings import TARGETS, Policy

#: Who the plugin's own writes are by, in a record's history.
ACTOR = "plugin:sla"


def due_values(policy: Policy, entity: Entity, values: Mapping[str, Any],
               previous: Mapping[str, Any] | None, now: dt.datetime
               ) -> dict[str, Any] | None:
    """The due times (and when a clock starts, the status ``ok``) to set on a record about
    to be written, or None when its priority did not change."""
    field = policy.priority_field
    if previous is None:
        before, after = None, values.get(field, entity.schema_defaults.get(field))
    else:
        before, after = previous.get(field), values.get(field)
        if before == after:
            return None
    changes: dict[str, Any] = {}
    for target, due_field in policy.due_fields.items():
        old, new = policy.target(before, target), policy.target(after, target)
        due = moment(values.get(due_field))
        if new is None:
            changes[due_field] = None
        elif old is None or due is None:  # no clock ran: it starts now
            changes[due_field] = record_moment(policy.hours.add(now, new))
        else:  # time used and time paused still count
            changes[due_field] = record_moment(policy.hours.add(due, new - old))
    status = policy.status_field
    if status and values.get(status) is None and any(changes.values()):
        changes[status] = "ok"
    return changes


def keep(conn: sa.Connection, ws: Workspace, policy: Policy, action: str,
         record: Mapping[str, Any], previous: Mapping[str, Any] | None, now: dt.datetime
         ) -> None:
    """Bring the record's row of the plugin's table up to date with a write, in its
    transaction."""
    store.ensure_table(ws, conn)
    where = store.key(policy.entity, record["id"])
    if action == "delete":
        conn.execute(sa.delete(store.clocks).where(where))
        return
    row = store.load(conn, policy.entity, record["id"])
    clock: dict[str, Any] = row or {}
    for target, due_field in policy.due_fields.items():
        if row is None or previous is None or record.get(due_field) != previous.get(due_field):
            due = moment(record.get(due_field))
            minutes = policy.target(record.get(policy.priority_field), target)
            clock[f"{target}_due_at"] = due
            clock[f"{target}_warn_at"] = None if due is None or minutes is None else \
                policy.hours.add(due, -(1 - policy.warning_at) * minutes)
    state = record.get("state")
    if state in policy.paused_states:
        clock["paused_since"] = clock.get("paused_since") or now
    elif clock.get("paused_since") is not None:
        paused = policy.hours.between(clock["paused_since"], now)
        for target in TARGETS:
            for name in (f"{target}_due_at", f"{target}_warn_at"):
                if clock.get(name) is not None:
                    clock[name] = policy.hours.add(clock[name], paused)
        clock["paused_since"] = None
    if clock.get("responded_at") is None and responded(policy, record):
        clock["responded_at"] = now
    clock["resolved_at"] = (clock.get("resolved_at") or now) \
        if state in policy.resolved_states else None
    if row is None:
        conn.execute(sa.insert(store.clocks).values(
            entity=policy.entity, record_id=record["id"], **clock))
    else:
        conn.execute(sa.update(store.clocks).where(where).values(**clock))


def mirror(ws: Workspace, policy: Policy, record: Mapping[str, Any]) -> None:
    """Copy the due times of the plugin's table onto the record where they differ (after a
    pause moved them)."""
    with ws.transaction() as conn:
        store.ensure_table(ws, conn)
        clock = store.load(conn, policy.entity, record["id"])
        if clock is None:
            return
        changes = {due_field: record_moment(clock[f"{target}_due_at"])
                   for target, due_field in policy.due_fields.items()}
        changes = {name: value for name, value in changes.items()
                   if moment(record.get(name)) != moment(value)}
        if changes:
            ws.records.update(policy.entity, record["id"], changes, actor=ACTOR)


def responded(policy: Policy, record: Mapping[str, Any]) -> bool:
    """Whether the record shows its first response: the marking field is set, or it has
    left the marking state."""
    if policy.first_response is None:
        return False
    how, name = policy.first_response
    if how == "field":
        return record.get(name) is not None
    return record.get("state") != name


def moment(value: Any) -> dt.datetime | None:
    """A datetime field's value (RFC 3339 text, as records carry it) as naive UTC."""
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def record_moment(value: dt.datetime | None) -> str | None:
    """A naive UTC moment as a datetime field takes it, to the second."""
    if value is None:
        return None
    return value.replace(microsecond=0).isoformat() + "Z"
