"""The time the sla plugin reads when a record is written: one function, so that a test
can set it (the schedule gets its time from the engine's tick instead)."""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    """Now, as naive UTC: how the engine stores moments."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
