"""One RFM run over a workspace: its orders summed up per customer in SQL, scored, and
the scores written onto the customers whose scores changed.

The orders counted are those the settings' filter keeps, dated within the window that
ends at the run's time. A customer with no such order gets the segment ``lost`` and no
scores (nor code). The writes go through the records service as ``plugin:rfm``, so the
audit trail says who wrote them, in transactions of :data:`BATCH` customers.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from blockscrm.engine import NotFound, Workspace

from .scoring import NO_ORDERS, SEGMENTS, Profile, score
from .settings import Settings

ACTOR = "plugin:rfm"
#: How many customers one write transaction updates.
BATCH = 200


@dataclass(frozen=True)
class Outcome:
    """What a run did: how many customers are in each segment, and how many changed."""

    segments: dict[str, int]
    updated: int


def recompute(ws: Workspace, now: dt.datetime) -> Outcome:
    """Score every customer from their orders as of ``now`` (naive UTC) and store it.

    :raises NotFound: the plugin is not enabled in this workspace.
    :raises DefinitionError: the settings name what the published entities do not have.
    """
    settings = Settings.of(ws)
    settings.check(ws)
    scores = score(profiles(ws, settings, now))
    segments: Counter[str] = Counter()
    changes: dict[str, dict[str, Any]] = {}
    for customer in ws.query(settings.customer_entity).fields(*settings.customer_fields
                                                              ).stream():
        s = scores.get(customer["id"])
        values = (s.recency, s.frequency, s.monetary, s.code, s.segment) if s is not None \
            else (None, None, None, None, NO_ORDERS)
        segments[values[-1]] += 1
        changed = {name: value for name, value
                   in zip(settings.customer_fields, values, strict=True)
                   if customer.get(name) != value}
        if changed:
            changes[customer["id"]] = changed
    updated = _write(ws, settings.customer_entity, changes)
    return Outcome({segment: segments[segment] for segment in SEGMENTS}, updated)


def profiles(ws: Workspace, settings: Settings, now: dt.datetime) -> dict[str, Profile]:
    """Each customer's recency, frequency and monetary value, one aggregate query over
    the orders grouped by their customer."""
    date = settings.order_date_field
    by_day = ws.entity(settings.order_entity).fields[date].value_schema.get("format") == "date"
    start = now - dt.timedelta(days=settings.window_days)
    if by_day:
        window = f'{date} >= date("{start.date()}") and {date} <= date("{now.date()}")'
    else:
        window = (f'{date} >= datetime("{start.isoformat()}Z") and '
                  f'{date} <= datetime("{now.isoformat()}Z")')
    condition = f"({settings.order_filter}) and {window}" if settings.order_filter else window
    rows = ws.query(settings.order_entity).filter(condition).aggregate(
        settings.order_customer_field,
        {"rfm__orders": "count", "rfm__total": f"sum:{settings.order_amount_field}",
         "rfm__last": f"max:{date}"})
    return {row[settings.order_customer_field]: Profile(
                recency=max(0, (now.date() - dt.date.fromisoformat(row["rfm__last"][:10])).days),
                frequency=row["rfm__orders"], monetary=row["rfm__total"] or 0)
            for row in rows if row[settings.order_customer_field] is not None}


def _write(ws: Workspace, entity: str, changes: Mapping[str, Mapping[str, Any]]) -> int:
    """Update the customers, a batch per transaction; answer how many were updated (one
    deleted meanwhile is skipped)."""
    updated = 0
    for batch in _batches(list(changes.items())):
        with ws.transaction():
            for record_id, values in batch:
                try:
                    ws.records.update(entity, record_id, values, actor=ACTOR)
                except NotFound:
                    continue
                updated += 1
    return updated


def _batches(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]
