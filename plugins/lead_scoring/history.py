"""The score history: every change of a record's score, with who made the write and the
reasons that gave the points, in a table of the plugin's own.

The table is created on first use, in the transaction of the write that first needs it
(so a write that rolls back takes its table and its row with it), and a row lands in the
same transaction as the score it explains.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from blockscrm.engine import Workspace

from .scoring import Reason

metadata = sa.MetaData()

table = sa.Table(
    "plugin_lead_scoring_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("record_id", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(128)),
    sa.Column("score", sa.Integer),
    sa.Column("previous", sa.Integer),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Index("ix_plugin_lead_scoring_history_record", "entity", "record_id", "id"),
)

#: The workspaces known to have the table (checked once each, then remembered).
_READY: weakref.WeakSet[Workspace] = weakref.WeakSet()


def record_change(ws: Workspace, conn: sa.Connection, entity: str, record_id: str,
                  previous: int | None, score: int | None, reasons: Iterable[Reason],
                  actor: str | None) -> None:
    """Keep one change of a score, in the write's transaction ``conn``."""
    if ws not in _READY:
        metadata.create_all(conn, checkfirst=True)
        ws.after_commit(lambda: _READY.add(ws))
    conn.execute(sa.insert(table).values(
        entity=entity, record_id=record_id, at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        actor=actor, score=score, previous=previous,
        reasons=[r.as_json() for r in reasons]))


def changes(ws: Workspace, entity: str, record_id: str, *, limit: int | None = None
            ) -> list[dict[str, Any]]:
    """A record's score changes, newest first (none before the table exists)."""
    with ws.reading() as conn:
        if ws not in _READY:
            if not sa.inspect(conn).has_table(table.name):
                return []
            _READY.add(ws)
        rows = conn.execute(sa.select(table).where(table.c.entity == entity,
                                                   table.c.record_id == record_id)
                            .order_by(table.c.id.desc()).limit(limit)).mappings().all()
    return [{"at": row["at"].isoformat() + "Z", "actor": row["actor"], "score": row["score"],
             "previous": row["previous"], "reasons": row["reasons"]} for row in rows]
