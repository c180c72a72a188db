"""Scoring inside writes, so that a score is validated and stored with the write that
changes it, and its history row lands in the same transaction.

- A scored record's write: ``blocks_before_validate`` sets its score among the values
  (:func:`score_to_set`): the points of the rules that hold on them and, on an update
  (the hook is told the record's id), of the activities that refer to it, counted in the
  write's transaction. ``blocks_before_save`` scores the validated record again, keeps the
  change in the history, and refuses a write whose two scores differ
  (:func:`check_and_keep`), so a score and its history's reasons always agree.
- An activity's write: ``blocks_before_save`` re-scores the record it refers to (and the
  one it referred to before) with ``ws.records.update``, inside the activity's own
  transaction: both land or neither does, and a score never lags behind its activities
  (which ``blocks_after_commit`` would allow, a second transaction later). That hook
  comes before the activity's row lands, so the transaction keeps the activities it is
  writing (:func:`_writing`), which the counts take in place of their rows.

Rules read the values the write brings, the way validation keeps them (empty values
dropped, defaults filled on create); they may not read a record's id, owner, dates or
state, which a new record has only once validated (see :mod:`.settings`).

No recursion: re-scoring writes the scored entity, which is never the activity entity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from blockscrm.engine import Entity, User, Workspace

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

#: Who the history and the audit trail name for the plugin's own writes.
ACTOR = "plugin:lead-scoring"
#: Where a transaction keeps the scored records it is deleting (see :func:`_deleting`).
_DELETING = "blockscrm.plugins.lead_scoring.deleting"
#: Where a transaction keeps the activities it is writing (see :func:`_writing`).
_WRITING = "blockscrm.plugins.lead_scoring.writing"


# --- blocks_before_validate ---------------------------------------------------------------


def score_to_set(ws: Workspace, entity: Entity, values: Mapping[str, Any],
                 previous: Mapping[str, Any] | None, record_id: str | None,
                 user: User | None) -> Mapping[str, Any] | None:
    """The score of a scored record about to be validated, as a value to set: its rules'
    points, and on an update its activities' (a new record has none yet)."""
    scoring = scoring_for(ws, entity.name)
    if scoring is None or entity.name != scoring.entity:
        return None
    try:
        reasons = rule_reasons(ws, scoring, values)  # as validation keeps them
        if record_id is not None:
            with ws.reading() as conn:  # the update's own transaction
                reasons += activity_reasons(ws, scoring, record_id, _writing(conn))
    except ScoringFailed:
        if record_id is not None and values == previous:
            raise  # the record as stored, re-scored: its values are valid
        # Maybe the values are not valid (validation will say so); if they are,
        # blocks_before_save evaluates the conditions again and stops the write there.
        return None
    return {scoring.score_field: Score.of(reasons, scoring.cap).value}


# --- blocks_before_save -------------------------------------------------------------------


def check_and_keep(ws: Workspace, conn: sa.Connection, entity: Entity, action: str,
                   record: Mapping[str, Any], previous: Mapping[str, Any] | None) -> None:
    """Score a write inside its transaction: a scored record's, or an activity's."""
    scoring = scoring_for(ws, entity.name)
    if scoring is None:
        return
    if entity.name == scoring.entity:
        _scored_record(ws, conn, scoring, action, record, previous)
    elif scoring.counts(entity.name):
        _activity(ws, conn, scoring, action, record, previous)


def _scored_record(ws: Workspace, conn: sa.Connection, scoring: Scoring, action: str,
                   record: Mapping[str, Any], previous: Mapping[str, Any] | None) -> None:
    """Check the score about to be stored, and keep it in the history when it changed."""
    record_id = record["id"]
    if action == "delete":
        _deleting(conn).add(record_id)  # its activities go with it: no re-score for them
        return
    activities: list[Reason] = [] if action == "create" \
        else activity_reasons(ws, scoring, record_id, _writing(conn))
    score = Score.of(rule_reasons(ws, scoring, record) + activities, scoring.cap)
    stored = record.get(scoring.score_field)
    if stored != score.value:
        raise ScoringFailed(f"the score of {scoring.entity} {record_id} came out as "
                            f"{stored} before validation and {score.value} after it")
    before = None if previous is None else previous.get(scoring.score_field)
    if previous is None or before != stored:
        history.record_change(ws, conn, scoring.entity, record_id, before, stored,
                              score.reasons, record.get("updated_by"))


def _activity(ws: Workspace, conn: sa.Connection, scoring: Scoring, action: str,
              record: Mapping[str, Any], previous: Mapping[str, Any] | None) -> None:
    """Re-score the record an activity refers to, and the one it referred to before."""
    _writing(conn)[record["id"]] = record if action != "delete" else None
    now = counted_as(ws, scoring, record) if action != "delete" else (None, [])
    before = counted_as(ws, scoring, previous) if previous is not None else (None, [])
    if now == before:
        return  # the same record, the same points: no score moves
    touched = {r for r in (now[0], before[0]) if r is not None} - _deleting(conn)
    for record_id in sorted(touched):  # one order: two writes never wait on each other
        ws.records.update(scoring.entity, record_id, {}, actor=ACTOR)


# --- what a transaction is writing --------------------------------------------------------------


def _deleting(conn: sa.Connection) -> set[str]:
    """The scored records the transaction open on ``conn`` is deleting (kept on the
    connection, with the transaction they belong to, so that the next one starts empty)."""
    transaction = conn.get_transaction()
    held = conn.info.get(_DELETING)
    if held is None or held[0] is not transaction:
        held = conn.info[_DELETING] = (transaction, set())
    deleting: set[str] = held[1]
    return deleting


def _writing(conn: sa.Connection) -> dict[str, Mapping[str, Any] | None]:
    """The activities the transaction open on ``conn`` is writing, by id, as their writes
    leave them (None: deleted); kept like :func:`_deleting`."""
    transaction = conn.get_transaction()
    held = conn.info.get(_WRITING)
    if held is None or held[0] is not transaction:
        held = conn.info[_WRITING] = (transaction, {})
    writing: dict[str, Mapping[str, Any] | None] = held[1]
    return writing
