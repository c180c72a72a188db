"""Scoring inside writes, so that a score is validated and stored with the write that
changes it, and its history row lands in the same transaction.

- A scored record's write: ``blocks_before_validate`` sets its score among the values
  (:func:`score_to_set`); ``blocks_before_save`` checks it on the validated record, whose
  id it now knows, and keeps the change in the history (:func:`check_and_keep`).
- An activity's write: ``blocks_before_save`` re-scores the record it refers to (and the
  one it referred to before) with ``ws.records.update``, inside the activity's own
  transaction: both land or neither does, and a score never lags behind its activities
  (which ``blocks_after_commit`` would allow, a second transaction later).

``blocks_before_validate`` is told a record's values, not its id. A new record has no
activities yet; a record this plugin re-scores has the activity points it counted
(:class:`Rescoring`); any other update is scored with the activity points its previous
score held beyond its rules' points. ``blocks_before_save`` then counts them for real,
and in the rare case the two differ (a capped score, changed settings) re-scores the
record once the write commits.

No recursion: re-scoring writes the scored entity, which is never the activity entity.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from blockscrm.engine import Entity, NotFound, User, Workspace

from . import history
from .scoring import (
    Reason,
    Score,
    ScoringFailed,
    activity_reasons,
    counted_as,
    rule_reasons,
)
from .settings import Scoring, scoring_for

log = logging.getLogger(__name__)

#: Who the history and the audit trail name for the plugin's own writes.
ACTOR = "plugin:lead-scoring"
#: Where a transaction keeps the scored records it is deleting (see :func:`_deleting`).
_DELETING = "blockscrm.plugins.lead_scoring.deleting"


@dataclass
class Rescoring:
    """A re-score this plugin is making: the record and the activity points counted for
    it; ``taken`` once its ``blocks_before_validate`` has used them, so that a write an
    automation makes during the re-score is not taken for it.

    A re-score that corrects a write whose score was off says what score the history
    showed before that write (``shown``), so the history goes from it to the right one.
    """

    entity: str
    record_id: str
    activities: list[Reason]
    correcting: bool = False
    shown: int | None = None
    taken: bool = False


_RESCORING: ContextVar[Rescoring | None] = ContextVar("lead_scoring_rescoring", default=None)


# --- blocks_before_validate ---------------------------------------------------------------


def score_to_set(ws: Workspace, entity: Entity, values: Mapping[str, Any],
                 previous: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The score of a scored record about to be validated, as a value to set."""
    scoring = scoring_for(ws, entity.name)
    if scoring is None or entity.name != scoring.entity:
        return None
    rescoring = _RESCORING.get()
    if rescoring is not None and (rescoring.taken or rescoring.entity != scoring.entity
                                  or previous is None):
        rescoring = None  # another record, written while this plugin re-scores one
    if rescoring is not None:
        rescoring.taken = True
    try:
        reasons = rule_reasons(ws, scoring, values) + (
            rescoring.activities if rescoring is not None
            else _activities_kept(ws, scoring, previous))
    except ScoringFailed:
        if rescoring is not None:
            raise  # the record as stored: its values are valid
        # Maybe the values are not valid (validation will say so); if they are,
        # blocks_before_save evaluates the conditions again and stops the write there.
        return None
    return {scoring.score_field: Score.of(reasons, scoring.cap).value}


def _activities_kept(ws: Workspace, scoring: Scoring, previous: Mapping[str, Any] | None
                     ) -> list[Reason]:
    """The activity points of a record being validated, whose id is unknown here (see
    the module): none on a new record; on an update, what its previous score held beyond
    its rules' points."""
    if previous is None or previous.get(scoring.score_field) is None:
        return []
    kept = previous[scoring.score_field] - sum(
        r.points for r in rule_reasons(ws, scoring, previous))
    return [Reason("/activities", "activities", kept)] if kept > 0 else []


# --- blocks_before_save -------------------------------------------------------------------


def check_and_keep(ws: Workspace, conn: sa.Connection, entity: Entity, action: str,
                   record: Mapping[str, Any], previous: Mapping[str, Any] | None,
                   user: User | None) -> None:
    """Score a write inside its transaction: a scored record's, or an activity's."""
    scoring = scoring_for(ws, entity.name)
    if scoring is None:
        return
    if entity.name == scoring.entity:
        _scored_record(ws, conn, scoring, action, record, previous, user)
    elif scoring.counts(entity.name):
        _activity(ws, conn, scoring, action, record, previous)


def _scored_record(ws: Workspace, conn: sa.Connection, scoring: Scoring, action: str,
                   record: Mapping[str, Any], previous: Mapping[str, Any] | None,
                   user: User | None) -> None:
    """Check the score about to be stored, and keep it in the history when it changed."""
    record_id = record["id"]
    if action == "delete":
        _deleting(conn).add(record_id)  # its activities go with it: no re-score for them
        return
    rescoring = _RESCORING.get()
    if rescoring is not None and (rescoring.entity, rescoring.record_id) != (
            scoring.entity, record_id):
        rescoring = None  # another record, written while this plugin re-scores one
    if action == "create":
        activities: list[Reason] = []
    elif rescoring is not None:
        activities = rescoring.activities
    else:
        activities = activity_reasons(ws, scoring, record_id)
    score = Score.of(rule_reasons(ws, scoring, record) + activities, scoring.cap)
    stored = record.get(scoring.score_field)
    before = None if previous is None else previous.get(scoring.score_field)
    if stored != score.value:
        if rescoring is not None:
            raise ScoringFailed(f"the score of {scoring.entity} {record_id} came out as "
                                f"{stored} before validation and {score.value} after it")
        ws.after_commit(lambda: _rescore_later(ws, scoring.entity, record_id, before))
        return
    if rescoring is not None and rescoring.correcting:
        before = rescoring.shown
    if previous is None or before != stored:
        history.record_change(ws, conn, scoring.entity, record_id, before, stored,
                              score.reasons,
                              ACTOR if rescoring is not None else user.id if user else None)


def _activity(ws: Workspace, conn: sa.Connection, scoring: Scoring, action: str,
              record: Mapping[str, Any], previous: Mapping[str, Any] | None) -> None:
    """Re-score the record an activity refers to, and the one it referred to before."""
    now = counted_as(ws, scoring, record) if action != "delete" else (None, [])
    before = counted_as(ws, scoring, previous) if previous is not None else (None, [])
    if now == before:
        return  # the same record, the same points: no score moves
    touched = {r for r in (now[0], before[0]) if r is not None} - _deleting(conn)
    for record_id in sorted(touched):  # one order: two writes never wait on each other
        arriving = record if now[0] == record_id else None
        rescore(ws, scoring, record_id, activity_reasons(ws, scoring, record_id,
                                                         leaving=record["id"],
                                                         arriving=arriving))


# --- re-scoring -----------------------------------------------------------------------------


def rescore(ws: Workspace, scoring: Scoring, record_id: str,
            activities: list[Reason] | None = None, *, correcting: bool = False,
            shown: int | None = None) -> None:
    """Write a record's score again, as this plugin, in the transaction open now (or one
    of its own): ``activities`` are its activity points, counted when None."""
    with ws.transaction():
        counted = activity_reasons(ws, scoring, record_id) if activities is None \
            else activities
        token = _RESCORING.set(Rescoring(scoring.entity, record_id, counted, correcting,
                                         shown))
        try:
            ws.records.update(scoring.entity, record_id, {}, actor=ACTOR)
        finally:
            _RESCORING.reset(token)


def _rescore_later(ws: Workspace, entity: str, record_id: str, shown: int | None) -> None:
    """Re-score a record after a write whose score was off (see the module), ``shown``
    being its score before that write. The write has committed: a failure here is logged,
    not raised at its author."""
    try:
        scoring = scoring_for(ws, entity)
        if scoring is not None and scoring.entity == entity:
            rescore(ws, scoring, record_id, correcting=True, shown=shown)
    except NotFound:
        pass  # deleted meanwhile
    except Exception:  # contained: the write that asked for it stands
        log.exception("lead-scoring could not re-score %s %s", entity, record_id)


def _deleting(conn: sa.Connection) -> set[str]:
    """The scored records the transaction open on ``conn`` is deleting (kept on the
    connection, with the transaction they belong to, so that the next one starts empty)."""
    transaction = conn.get_transaction()
    held = conn.info.get(_DELETING)
    if held is None or held[0] is not transaction:
        held = conn.info[_DELETING] = (transaction, set())
    deleting: set[str] = held[1]
    return deleting
