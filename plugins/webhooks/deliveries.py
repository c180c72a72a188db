"""The incoming deliveries already taken, so that a replayed one is refused.

A table of the plugin's own, created the first time a workspace receives a call. A row
is kept as long as its call's signed timestamp could still be accepted: older rows are
pruned, since a call stamped that long ago is refused for its timestamp anyway.
"""

from __future__ import annotations

import datetime as dt
import weakref

import sqlalchemy as sa

from blockscrm.engine import Conflict, Workspace

metadata = sa.MetaData()
deliveries = sa.Table(
    "plugin_webhooks_deliveries", metadata,
    sa.Column("hook", sa.String(63), primary_key=True),
    sa.Column("delivery", sa.String(128), primary_key=True),
    #: The call's own (signed) timestamp, naive UTC.
    sa.Column("sent_at", sa.DateTime(), nullable=False, index=True))

#: The databases (by engine) known to have the table, so it is looked for once.
_ready: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


def ensure_table(ws: Workspace) -> None:
    """Create the table in the workspace's database unless it is there."""
    if ws.engine in _ready:
        return
    try:
        metadata.create_all(ws.engine, checkfirst=True)
    except sa.exc.DBAPIError:  # another process created it between the check and ours
        metadata.create_all(ws.engine, checkfirst=True)
    _ready.add(ws.engine)


def take(conn: sa.Connection, hook: str, delivery: str, sent_at: dt.datetime,
         now: dt.datetime, tolerance: dt.timedelta) -> None:
    """Record a delivery in the open transaction (it lands with what the call does, or
    not at all, so the sender may retry a call that failed).

    :raises Conflict: the delivery was taken before.
    """
    conn.execute(sa.delete(deliveries).where(deliveries.c.sent_at < now - tolerance))
    try:
        conn.execute(sa.insert(deliveries).values(hook=hook, delivery=delivery,
                                                  sent_at=sent_at))
    except sa.exc.IntegrityError:
        raise Conflict(f"the delivery {delivery!r} of the webhook {hook!r} was received "
                       "before: a replayed call is refused") from None
