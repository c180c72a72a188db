"""The sla plugin's own table: per timed record, what its fields do not say.

The record carries what users see (each target's due time, the SLA status). This table
keeps the rest, written in the transaction of each write: when a pause began (so that
the time paused can be added to the due times when it ends), when the first response and
the resolution happened, each target's warning and due moments as the schedule compares
them, and the last event fired for each target (so each fires once). It is created in a
workspace's database the first time the plugin needs it.

A table of its own rather than more fields: a policy then asks the entity for no more
than the fields users should see, and the schedule finds what is due with one query on
this table instead of reading every open record.
"""

from __future__ import annotations

import weakref
from typing import Any

import sqlalchemy as sa

from blockscrm.engine import Workspace

from .settings import TARGETS

metadata = sa.MetaData()

clocks = sa.Table(
    "plugin_sla_clocks", metadata,
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("record_id", sa.String(32), primary_key=True),
    sa.Column("paused_since", sa.DateTime),
    sa.Column("responded_at", sa.DateTime),
    sa.Column("resolved_at", sa.DateTime),
    *(column for target in TARGETS for column in (
        sa.Column(f"{target}_warn_at", sa.DateTime),
        sa.Column(f"{target}_due_at", sa.DateTime),
        # The last event fired for the target: None, "warning" or "breach".
        sa.Column(f"{target}_event", sa.String(16)))),
)

#: The workspaces (of this process) whose database has the table, known once a
#: transaction that created or found it has committed.
_ready: weakref.WeakSet[Workspace] = weakref.WeakSet()


def ensure_table(ws: Workspace, conn: sa.Connection) -> None:
    """Create the table in the workspace's database unless it is there, inside ``conn``'s
    transaction (a write that rolls back takes the new table with it)."""
    if ws in _ready:
        return
    metadata.create_all(conn, checkfirst=True)
    ws.after_commit(lambda: _ready.add(ws))


def key(entity: str, record_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(clocks.c.entity == entity, clocks.c.record_id == record_id)


def load(conn: sa.Connection, entity: str, record_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(clocks).where(key(entity, record_id))).mappings().first()
    return dict(row) if row is not None else None
