"""Warnings and breaches: the schedule that finds the timed records whose warning or due
moment has passed, sets their SLA status and fires the plugin's ``sla`` trigger, once per
record, target and event, so that escalations are ordinary automations (notify the
manager, reassign, raise the priority) listening to ``{"on": "sla", "event": "breach"}``.

A paused or resolved record is not looked at, nor a first response once it happened. A
breach found with its warning not yet fired (the worker was down) fires alone.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from blockscrm.engine import BlocksError, NotFound, Workspace
from blockscrm.engine.automations import TriggerType

from . import store
from .settings import NAME, TARGETS, Policy, policies
from .timers import ACTOR

log = logging.getLogger(__name__)
EVENTS = ("warning", "breach")


def concerns(options: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    """Whether a firing is one a rule listens to: each key its trigger names (``event``,
    ``target``) has that value; a key it leaves out takes any."""
    return all(payload.get(key) == value for key, value in options.items())


TRIGGER = TriggerType(
    NAME,
    {"type": "object", "additionalProperties": False,
     "properties": {"event": {"enum": list(EVENTS)}, "target": {"enum": list(TARGETS)}}},
    label={"en": "SLA warning or breach"}, matches=concerns)


def check(ws: Workspace, now: dt.datetime) -> None:
    """Fire what is due at ``now`` on every policy's records (the engine's tick runs this
    once a minute)."""
    for policy in policies(ws).values():
        with ws.transaction() as conn:
            store.ensure_table(ws, conn)
            rows = conn.execute(sa.select(store.clocks).where(
                store.clocks.c.entity == policy.entity,
                store.clocks.c.paused_since.is_(None), store.clocks.c.resolved_at.is_(None),
                sa.or_(*(_pending(target, now) for target in TARGETS)))).mappings().all()
        for row in rows:
            for target in TARGETS:
                event = due_event(row, target, now)
                if event is not None:
                    escalate(ws, policy, row["record_id"], target, event)


def due_event(clock: Mapping[str, Any], target: str, now: dt.datetime) -> str | None:
    """The event a target has reached at ``now`` and not yet fired, if any."""
    if target == "first_response" and clock["responded_at"] is not None:
        return None
    due, warn = clock[f"{target}_due_at"], clock[f"{target}_warn_at"]
    fired = clock[f"{target}_event"]
    if due is not None and due <= now and fired != "breach":
        return "breach"
    if warn is not None and warn <= now and fired is None:
        return "warning"
    return None


def escalate(ws: Workspace, policy: Policy, record_id: str, target: str, event: str
             ) -> None:
    """Mark ``event`` fired, set the record's status and fire the trigger, all in one
    transaction: a rule that fails takes the mark back, and the next tick tries again."""
    column = store.clocks.c[f"{target}_event"]
    try:
        with ws.transaction() as conn:
            taken = conn.execute(sa.update(store.clocks).where(
                store.key(policy.entity, record_id),
                store.clocks.c.paused_since.is_(None), store.clocks.c.resolved_at.is_(None),
                column.is_(None) if event == "warning" else column.is_distinct_from("breach"))
                .values({column: event}))
            if taken.rowcount != 1:
                return  # paused or resolved since it was read, or another tick fired it
            if policy.status_field:
                clock = store.load(conn, policy.entity, record_id) or {}
                fired = {t: clock.get(f"{t}_event") for t in TARGETS}
                ws.records.update(policy.entity, record_id,
                                  {policy.status_field: status(fired)}, actor=ACTOR)
            ws.automations.trigger(NAME, policy.entity, record_id,
                                   {"event": event, "target": target})
    except NotFound:  # the record went while the plugin was off: its clock goes too
        with ws.transaction() as conn:
            conn.execute(sa.delete(store.clocks).where(store.key(policy.entity, record_id)))
    except BlocksError as exc:  # the next record still gets its turn
        log.error("sla: %s %s, %s %s: %s", policy.entity, record_id, target, event, exc)


def status(fired: Mapping[str, str | None]) -> str:
    """The record's SLA status: the worst event any of its targets reached."""
    if "breach" in fired.values():
        return "breached"
    return "warning" if "warning" in fired.values() else "ok"


def _pending(target: str, now: dt.datetime) -> sa.ColumnElement[bool]:
    """The rows where ``target`` may have an event to fire at ``now``."""
    c = store.clocks.c
    pending = sa.or_(sa.and_(c[f"{target}_warn_at"] <= now, c[f"{target}_event"].is_(None)),
                     sa.and_(c[f"{target}_due_at"] <= now,
                             c[f"{target}_event"].is_distinct_from("breach")))
    if target == "first_response":
        return sa.and_(c.responded_at.is_(None), pending)
    return pending
