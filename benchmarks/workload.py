"""The benchmark's entities and rows: a 15-field ``deal`` and deterministic, lazy rows.

Rows are generated one at a time from a seeded ``random.Random``, so a run of a million
rows never holds them all and two runs with the same seed insert the same values. The
engine takes the JSON shape (:func:`deal_values`); the Core baseline takes the same
values as database values (:func:`core_rows`), with the system columns a plain table
needs filled in the cheapest way a Core user would.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Iterator
from typing import Any

from blockscrm.engine.records import new_id

ACCOUNT = {
    "kind": "entity", "name": "account", "label": {"en": "Account"},
    "required": ["name"],
    "properties": {"name": {"type": "string", "maxLength": 200}},
}

STAGES = ["lead", "qualified", "proposal", "negotiation", "won", "lost"]
#: How often each stage occurs (in twentieths): ``won`` is 3/20 = 15 % of the rows.
_STAGE_WEIGHTS = {"lead": 6, "qualified": 4, "proposal": 3, "negotiation": 2, "won": 3,
                  "lost": 2}

#: Fifteen fields, one of each common type; ``stage`` and ``close_date`` are indexed, and
#: ``(stage, close_date)`` serves "deals at a stage, by close date".
DEAL = {
    "kind": "entity", "name": "deal", "label": {"en": "Deal"},
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 200},                          # text
        "notes": {"x-field": "long_text"},                                     # long_text
        "employees": {"type": "integer", "minimum": 0},                        # integer
        "score": {"type": "number", "x-scale": 2},                             # decimal
        "amount": {"type": "number", "minimum": 0, "x-field": "currency",      # currency
                   "x-currency": "EUR"},
        "probability": {"type": "number", "minimum": 0, "maximum": 100,        # percent
                        "x-field": "percent"},
        "active": {"type": "boolean"},                                         # boolean
        "close_date": {"type": "string", "format": "date", "x-index": True},   # date
        "last_contact": {"type": "string", "format": "date-time"},             # datetime
        "email": {"type": "string", "format": "email"},                        # email
        "phone": {"x-field": "phone"},                                         # phone
        "stage": {"type": "string", "enum": STAGES, "x-field": "select",       # select
                  "default": "lead", "x-index": True},
        "tags": {"x-field": "tags"},                                           # tags
        "city": {"type": "string", "maxLength": 100},                          # text
        "account": {"type": "string", "x-field": "reference",                  # reference
                    "x-ref": "account"},
    },
    "x-indexes": [["stage", "close_date"]],
}

_ADJECTIVES = ["Blue", "Bright", "Calm", "Clever", "Swift", "Solid", "Green", "Prime",
               "Silver", "Golden", "North", "South", "Rapid", "Quiet", "Bold", "Clear"]
_NOUNS = ["Renewal", "Upgrade", "Pilot", "Expansion", "License", "Rollout", "Support",
          "Migration", "Training", "Audit", "Bundle", "Subscription", "Project", "Order"]
_FIRST = ["anna", "ben", "chen", "dara", "eli", "fatima", "goran", "hana", "ivan", "jia",
          "karl", "lena", "mo", "nina", "omar", "pia", "quinn", "rosa", "sven", "tara"]
_DOMAINS = ["acme.test", "globex.test", "initech.test", "umbrella.test", "hooli.test",
            "stark.test", "wayne.test", "wonka.test"]
_CITIES = ["Berlin", "Paris", "Madrid", "Rome", "Vienna", "Prague", "Warsaw", "Lisbon",
           "Dublin", "Oslo", "Stockholm", "Helsinki", "Athens", "Zurich", "Amsterdam",
           "Brussels", "Copenhagen", "Budapest", "Munich", "Lyon"]
_TAGS = ["vip", "renewal", "inbound", "outbound", "partner", "event", "trial", "churn-risk",
         "upsell", "public-sector"]
_NOTES = [
    "Called the buyer; they want a proposal by the end of the month.",
    "Budget approved for next quarter. Legal review pending, expect redlines on "
    "liability and data processing terms.",
    "Met at the trade fair. Interested in the premium tier; follow up with a demo for "
    "the operations team and their IT lead.",
    "Price objection. Offer the annual plan with a 10 % discount if they sign this "
    "month; escalate to the regional manager otherwise.",
    "Champion left the company.",
    "Pilot running well: 40 users active, weekly check-ins on Thursdays, success "
    "criteria agreed in writing. Decision meeting scheduled after the pilot ends.",
    "Waiting for the purchase order.",
    "Competitor is cheaper but lacks the integrations they need. Send the comparison "
    "sheet and two references from the same industry.",
]
_START = dt.date(2022, 1, 1)
_DATES = [(_START + dt.timedelta(days=d)).isoformat() for d in range(1096)]
_EPOCH = dt.datetime(2022, 1, 1)
_STAGE_POOL = [s for s, w in _STAGE_WEIGHTS.items() for _ in range(w)]


def account_values(count: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        yield {"name": f"Account {i:05d}"}


def deal_values(seed: int, count: int, accounts: list[str]) -> Iterator[dict[str, Any]]:
    """``count`` deals as the API receives them, every field present (``None`` = empty)."""
    rng = random.Random(seed)
    r = rng.random
    n_accounts = len(accounts)
    for i in range(count):
        first = _FIRST[int(r() * 20)]
        tags_count = int(r() * 4)
        tags = rng.sample(_TAGS, tags_count) if tags_count else None
        yield {
            "name": f"{_ADJECTIVES[int(r() * 16)]} {_NOUNS[int(r() * 14)]} {i}",
            "notes": _NOTES[int(r() * 8)] if r() < 0.6 else None,
            "employees": int(r() * 5000),
            "score": round(r() * 1000, 2),
            "amount": round(r() * 250_000, 2),
            "probability": int(r() * 101),
            "active": r() < 0.7,
            "close_date": _DATES[int(r() * 1096)] if r() < 0.9 else None,
            "last_contact": (_EPOCH + dt.timedelta(seconds=int(r() * 94_000_000))
                             ).isoformat() + "Z",
            "email": f"{first}.{i}@{_DOMAINS[int(r() * 8)]}",
            "phone": f"+49 30 {int(r() * 10_000_000):07d}",
            "stage": _STAGE_POOL[int(r() * 20)],
            "tags": tags,
            "city": _CITIES[int(r() * 20)] if r() < 0.95 else None,
            "account": accounts[int(r() * n_accounts)] if n_accounts and r() < 0.8 else None,
        }


def core_row(values: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """One deal as a plain table's row: database values and the system columns."""
    row = dict(values)
    if row["close_date"] is not None:
        row["close_date"] = dt.date.fromisoformat(row["close_date"])
    row["last_contact"] = dt.datetime.fromisoformat(row["last_contact"][:-1])
    row.update(id=new_id(), version=1, owner_id=None, created_at=now, created_by=None,
               updated_at=now, updated_by=None)
    return row


def core_rows(values: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for v in values:
        yield core_row(v, now)
