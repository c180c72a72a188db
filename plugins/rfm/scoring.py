"""RFM scores and segments, from each customer's orders: pure arithmetic, no database.

Each of recency (days since the last order), frequency (how many orders) and monetary
(their total) is scored 1-5 by quintiles across the customers being scored, 5 the best:
the fewest days, the most orders, the largest total. A customer's score is
``1 + 5 * below // n``, where ``below`` is how many of the ``n`` customers did strictly
worse; customers who tie get the same score, the one the first of them would get, so the
result does not depend on the order they come in.

The segment comes from the recency and frequency scores, the well-known RF grid
(:data:`GRID`); the monetary score goes into the code (``"545"``) and its own field.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

#: Every segment, best first (the order ``blocks rfm run`` prints them in).
SEGMENTS = ("champions", "loyal", "potential_loyalists", "new_customers", "promising",
            "needs_attention", "about_to_sleep", "at_risk", "cant_lose_them", "hibernating",
            "lost")

#: The segment of each recency score (the key) and frequency score (the position, 1 to 5):
#: recent and frequent buyers are champions; frequent ones gone quiet are at risk, or
#: can't be lost when they bought the most; a single old order is lost.
GRID: Mapping[int, tuple[str, str, str, str, str]] = {
    5: ("new_customers", "potential_loyalists", "potential_loyalists", "champions",
        "champions"),
    4: ("promising", "potential_loyalists", "potential_loyalists", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "needs_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose_them"),
    1: ("lost", "hibernating", "at_risk", "at_risk", "cant_lose_them"),
}

#: The segment of a customer with no order in the window (who then has no scores).
NO_ORDERS = "lost"

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class Profile:
    """A customer's orders in the window, summed up."""

    recency: int  # days since the last order
    frequency: int  # how many orders
    monetary: float  # their total amount


@dataclass(frozen=True)
class Score:
    """A customer's three scores, each 1 to 5 (5 the best)."""

    recency: int
    frequency: int
    monetary: int

    @property
    def code(self) -> str:
        return f"{self.recency}{self.frequency}{self.monetary}"

    @property
    def segment(self) -> str:
        return GRID[self.recency][self.frequency - 1]


def quintiles(values: Mapping[Key, float]) -> dict[Key, int]:
    """Each key's score 1-5 by where its value falls among all of them (greater is
    better); equal values score alike."""
    ordered = sorted(values.values())
    n = len(ordered)
    return {key: 1 + 5 * bisect_left(ordered, value) // n for key, value in values.items()}


def score(profiles: Mapping[Key, Profile]) -> dict[Key, Score]:
    """Every customer's scores, each against all the others'."""
    recency = quintiles({key: -p.recency for key, p in profiles.items()})  # fewer days: better
    frequency = quintiles({key: p.frequency for key, p in profiles.items()})
    monetary = quintiles({key: p.monetary for key, p in profiles.items()})
    return {key: Score(recency[key], frequency[key], monetary[key]) for key in profiles}
