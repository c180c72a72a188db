"""The sla plugin's settings: a list of policies, each for one entity, as a JSON Schema
and as the :class:`Policy` the timers read. When a workspace enables the plugin or changes
its settings, :func:`problems` also checks them against what the schema cannot know: the
entities, fields and workflow states they name, and the business hours' opening before
their closing.

A policy names the entity's priority field and, per priority, how long the first
response and the resolution may take in working time; the business hours, holidays and
the workflow states in which the clock stops; what marks the first response (a field
being set, or the record leaving a state) and which states mark resolution; the fields
the plugin writes (each target's due time, the SLA status); and when to warn (by default
once 80 % of a target is used).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import sqlalchemy as sa

from blockscrm.engine import Entity, Workspace

from .business_time import WEEKDAYS, BusinessHours

NAME = "sla"
#: The two clocks a policy may run, as the trigger's ``target`` names them.
TARGETS = ("first_response", "resolution")

_NAME = {"type": "string", "minLength": 1}
_NAMES = {"type": "array", "items": _NAME, "uniqueItems": True}
_CLOCK_TIME = "^([01][0-9]|2[0-3]):[0-5][0-9]$"
_CLOSING_TIME = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
_DURATION = {
    "type": "object", "additionalProperties": False, "minProperties": 1,
    "description": "Working time: hours, minutes, or both (added).",
    "properties": {"hours": {"type": "number", "minimum": 0},
                   "minutes": {"type": "number", "minimum": 0}}}


def schema() -> dict[str, Any]:
    """The settings' JSON Schema (the time zones are the ones this machine knows)."""
    policy = {
        "type": "object", "additionalProperties": False,
        "required": ["entity", "priority_field", "targets", "fields"],
        "properties": {
            "entity": {**_NAME, "description": "The entity whose records are timed."},
            "priority_field": {**_NAME, "description": "The field holding the priority."},
            "targets": {
                "type": "object", "minProperties": 1,
                "description": "Per priority value, how long each target may take; a "
                               "record whose priority is not here runs no clock.",
                "additionalProperties": {
                    "type": "object", "additionalProperties": False, "minProperties": 1,
                    "properties": {target: _DURATION for target in TARGETS}}},
            "business_hours": {
                "type": "object", "additionalProperties": False,
                "required": ["time_zone", "days", "opens", "closes"],
                "description": "When the clock runs; around the clock when left out.",
                "properties": {
                    "time_zone": {"enum": sorted(available_timezones())},
                    "days": {"type": "array", "minItems": 1, "uniqueItems": True,
                             "items": {"enum": list(WEEKDAYS)}},
                    "opens": {"type": "string", "pattern": _CLOCK_TIME},
                    "closes": {"type": "string", "pattern": _CLOSING_TIME}}},
            "holidays": {"type": "array", "uniqueItems": True,
                         "description": "Days the clock does not run (local dates).",
                         "items": {"type": "string",
                                   "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}},
            "paused_states": {**_NAMES, "description": "Workflow states in which the "
                                                      "clock stops."},
            "first_response": {
                "description": "What marks the first response: a field being set, or the "
                               "record leaving a state.",
                "oneOf": [{"type": "object", "additionalProperties": False,
                           "required": ["field"], "properties": {"field": _NAME}},
                          {"type": "object", "additionalProperties": False,
                           "required": ["leaves_state"],
                           "properties": {"leaves_state": _NAME}}]},
            "resolved_states": {**_NAMES, "description": "The states that mark resolution."},
            "fields": {
                "type": "object", "additionalProperties": False, "minProperties": 1,
                "description": "The fields the plugin writes: each target's due time (a "
                               "target without one runs no clock) and the status (ok, "
                               "warning, breached: the worst any target reached).",
                "properties": {"first_response_due": _NAME, "resolution_due": _NAME,
                               "status": _NAME}},
            "warning_at": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                           "default": 0.8,
                           "description": "The share of a target used when the warning "
                                          "fires."}}}
    return {"type": "object", "additionalProperties": False, "required": ["policies"],
            "properties": {"policies": {"type": "array", "items": policy}}}


@dataclass(frozen=True)
class Policy:
    """One entity's SLA, as the timers use it."""

    entity: str
    priority_field: str
    #: Working minutes per priority value and target.
    targets: Mapping[str, Mapping[str, float]]
    hours: BusinessHours
    paused_states: frozenset[str]
    #: ``("field", name)`` or ``("leaves_state", state)``; None: no first response timed.
    first_response: tuple[str, str] | None
    resolved_states: frozenset[str]
    #: The due-time field of each target the policy times.
    due_fields: Mapping[str, str]
    status_field: str | None
    warning_at: float

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> Policy:
        """The policy of one (schema-valid) settings entry."""
        fields = document["fields"]
        marker = document.get("first_response")
        return cls(
            entity=document["entity"], priority_field=document["priority_field"],
            targets={priority: {target: _minutes(length) for target, length in spec.items()}
                     for priority, spec in document["targets"].items()},
            hours=_business_hours(document.get("business_hours"),
                                  document.get("holidays", ())),
            paused_states=frozenset(document.get("paused_states", ())),
            first_response=next(iter(marker.items())) if marker else None,
            resolved_states=frozenset(document.get("resolved_states", ())),
            due_fields={target: fields[f"{target}_due"] for target in TARGETS
                        if f"{target}_due" in fields},
            status_field=fields.get("status"),
            warning_at=document.get("warning_at", 0.8))

    def target(self, priority: Any, target: str) -> float | None:
        """The working minutes ``target`` may take at ``priority``, or None: no clock."""
        if target not in self.due_fields or not isinstance(priority, str):
            return None
        return self.targets.get(priority, {}).get(target)


def policies(ws: Workspace, conn: sa.Connection | None = None) -> dict[str, Policy]:
    """The policies of a workspace that enabled the plugin, by entity."""
    documents = ws.plugins.settings(NAME, conn).get("policies", [])
    return {document["entity"]: Policy.of(document) for document in documents}


def _minutes(length: Mapping[str, float]) -> float:
    return length.get("hours", 0) * 60 + length.get("minutes", 0)


def _business_hours(spec: Mapping[str, Any] | None, holidays: Any) -> BusinessHours:
    days = {dt.date.fromisoformat(day) for day in holidays}
    if spec is None:
        return BusinessHours(holidays=frozenset(days))
    return BusinessHours(ZoneInfo(spec["time_zone"]),
                         frozenset(WEEKDAYS.index(day) for day in spec["days"]),
                         _clock_minutes(spec["opens"]), _clock_minutes(spec["closes"]),
                         frozenset(days))


def _clock_minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def problems(ws: Workspace, settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What in schema-valid settings does not fit the workspace's published entities, each
    problem by the JSON Pointer of its setting (``/policies/0/fields/status``)."""
    found: list[tuple[str, str]] = []
    entities = ws.catalog().entities
    timed: set[str] = set()
    for i, document in enumerate(settings.get("policies", [])):
        where = f"/policies/{i}"
        hours = document.get("business_hours")
        if hours is not None and _clock_minutes(hours["opens"]) >= \
                _clock_minutes(hours["closes"]):
            found.append((f"{where}/business_hours/closes",
                          f"the day closes at {hours['closes']}, not after it opens "
                          f"({hours['opens']})"))
        entity = entities.get(document["entity"])
        if entity is None:
            found.append((f"{where}/entity", f"there is no entity {document['entity']!r}"))
            continue
        if entity.name in timed:
            found.append((f"{where}/entity", f"another policy times {entity.name} already"))
        timed.add(entity.name)
        found += [(f"{where}{pointer}", message)
                  for pointer, message in _policy_problems(entity, document)]
    return found


def _policy_problems(entity: Entity, document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The fields and states a policy names that ``entity`` does not have."""
    found: list[tuple[str, str]] = []

    def field(pointer: str, name: str, *, moment: bool = False) -> None:
        got = entity.fields.get(name)
        if got is None:
            found.append((pointer, f"{entity.name} has no field {name!r}"))
        elif moment and got.value_schema.get("format") != "date-time":
            found.append((pointer, f"{name!r} is not a date-time field"))

    field("/priority_field", document["priority_field"])
    for key, name in document["fields"].items():
        field(f"/fields/{key}", name, moment=key.endswith("_due"))
    status = entity.fields.get(document["fields"].get("status", ""))
    options = status.value_schema.get("enum") if status is not None else None
    lacking = sorted({"ok", "warning", "breached"} - set(options)) if options else []
    if lacking:
        found.append(("/fields/status", f"{document['fields']['status']!r} lacks the options "
                                        f"{', '.join(lacking)}"))
    marker = document.get("first_response", {})
    if "field" in marker:
        field("/first_response/field", marker["field"])
    states = set(entity.workflow.states) if entity.workflow is not None else set()
    named = [(f"/{key}/{j}", state) for key in ("paused_states", "resolved_states")
             for j, state in enumerate(document.get(key, []))]
    if "leaves_state" in marker:
        named.append(("/first_response/leaves_state", marker["leaves_state"]))
    found += [(pointer, f"{entity.name}'s workflow has no state {state!r}"
               if entity.workflow is not None else f"{entity.name} has no workflow")
              for pointer, state in named if state not in states]
    return found
