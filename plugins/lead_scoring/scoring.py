"""A record's score: the points of the rules that hold on it and of the activities that
refer to it, each kept as a :class:`Reason`, so the history can say where every point
came from.

Rules are read on the record in memory (their compiled predicates); activities are
counted with queries of the activity entity, whose conditions the engine compiles to
SQL from the same trees. Both read null as "does not hold".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from blockscrm.engine import NotFound, Workspace
from blockscrm.engine.rules import Env

from .settings import Condition, Scoring


class ScoringFailed(Exception):
    """A condition could not be evaluated on a record. Raised inside a write, it rolls
    the write back, and the engine reports it naming the plugin."""


@dataclass(frozen=True)
class Reason:
    """Points and why: a rule (``/rules/2``), the activities (``/activities``, or one
    type of them, ``/activities/types/0``, with how many there are), or the cap."""

    where: str
    label: str
    points: int
    count: int | None = None

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"where": self.where, "label": self.label,
                                  "points": self.points}
        if self.count is not None:
            answer["count"] = self.count
        return answer


@dataclass(frozen=True)
class Score:
    """A score and its reasons; the cap, when it bites, is a reason of negative points."""

    reasons: tuple[Reason, ...]

    @property
    def value(self) -> int:
        return sum(r.points for r in self.reasons)

    @classmethod
    def of(cls, reasons: Iterable[Reason], cap: int | None) -> Score:
        found = tuple(reasons)
        total = sum(r.points for r in found)
        if cap is not None and total > cap:
            found += (Reason("/cap", f"capped at {cap}", cap - total),)
        return cls(found)


def rule_reasons(ws: Workspace, scoring: Scoring, record: Mapping[str, Any]
                 ) -> list[Reason]:
    """The rules that hold on ``record``, each with its points.

    :raises ScoringFailed: a condition could not be evaluated on it.
    """
    env = Env(related=related_loader(ws, scoring.references.get(scoring.entity, {})))
    return [Reason(rule.where, rule.label, rule.points)
            for rule in scoring.rules if holds(rule, record, env)]


def activity_reasons(ws: Workspace, scoring: Scoring, record_id: str,
                     writing: Mapping[str, Mapping[str, Any] | None]) -> list[Reason]:
    """The points the activities referring to record ``record_id`` give it, counted with
    queries in the current transaction.

    ``writing`` holds the activities the transaction is writing, by id, as their writes
    leave them (None: deleted): their rows may not have landed yet (the plugin hears of a
    write before it lands), so the query leaves them out and they are counted in memory.

    :raises ScoringFailed: a condition could not be evaluated on one of them.
    """
    activities = scoring.activities
    if activities is None:
        return []
    mine: list[Any] = [{"==": [{"var": activities.field}, record_id]}]
    mine += [{"!=": [{"var": "id"}, written]} for written in sorted(writing)]
    arriving = [values for values in writing.values()
                if values is not None and values.get(activities.field) == record_id]
    env = Env(related=related_loader(ws, scoring.references.get(activities.entity, {})))

    def count(condition: Condition | None) -> int:
        query = ws.query(activities.entity).filter(
            {"and": mine + ([condition.tree] if condition is not None else [])})
        counted = query.count(exact=True).value
        return counted + sum(1 for values in arriving
                             if condition is None or holds(condition, values, env))

    reasons = []
    if activities.points:
        every = count(None)
        if every:
            reasons.append(Reason("/activities", "activities", every * activities.points,
                                  every))
    for kind in activities.types:
        if kind.points:
            matching = count(kind)
            if matching:
                reasons.append(Reason(kind.where, kind.label, matching * kind.points,
                                      matching))
    return reasons


def counted_as(ws: Workspace, scoring: Scoring, activity: Mapping[str, Any]
               ) -> tuple[Any, list[str]]:
    """What one activity counts for: the record it refers to and the types that hold on
    it (so a write that changes neither needs no new score).

    :raises ScoringFailed: a condition could not be evaluated on it.
    """
    activities = scoring.activities
    assert activities is not None
    env = Env(related=related_loader(ws, scoring.references.get(activities.entity, {})))
    return (activity.get(activities.field),
            [kind.where for kind in activities.types if holds(kind, activity, env)])


def holds(condition: Condition, record: Mapping[str, Any], env: Env) -> bool:
    """Whether ``condition`` holds on ``record`` (unknown does not).

    :raises ScoringFailed: naming the condition, when it cannot be evaluated.
    """
    try:
        return condition.holds(record, env) is True
    except Exception as exc:  # whatever a condition raises, name it and roll back
        raise ScoringFailed(f"the condition {condition.where} ({condition.label}) could not "
                            f"be evaluated on this record: {type(exc).__name__}: {exc}"
                            ) from exc


def related_loader(ws: Workspace, references: Mapping[str, str]
                   ) -> Callable[[str, Mapping[str, Any]], Mapping[str, Any] | None]:
    """How a condition reads a referenced record (``company.industry``): through
    ``ws.records``, in the current transaction."""

    def related(field: str, record: Mapping[str, Any]) -> Mapping[str, Any] | None:
        target, record_id = references.get(field), record.get(field)
        if target is None or record_id is None:
            return None
        try:
            return ws.records.get(target, record_id)
        except NotFound:
            return None

    return related
