"""Business-time arithmetic: N working minutes after a moment, and the working minutes
between two moments, given working days and hours in a time zone and holidays.

Moments are naive UTC datetimes, as the engine stores them. Working hours are wall-clock
times of the zone, so a day on which the clocks change has as many real minutes of work
as its wall clock shows (a day worked from 00:00 to 24:00 is 23 or 25 hours long then).

No library is used: ``businesstimedelta`` (the one that does this arithmetic) has had a
single release, in 2019, for pytz; a day's hours converted through :mod:`zoneinfo` are
all it takes here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

#: Working days as the settings name them, Monday first (``date.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: How many days in a row may have no working time before the search gives up (holidays
#: cannot fill ten years: only hours that never come can).
SEARCH_DAYS = 3660
UTC = ZoneInfo("UTC")

Interval = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True)
class BusinessHours:
    """When the clock runs: on the working ``days`` (0 is Monday) from ``opens`` to
    ``closes`` (minutes after local midnight; 1440 is the end of the day) in ``zone``,
    except on ``holidays`` (local dates). The defaults run it around the clock."""

    zone: ZoneInfo = UTC
    days: frozenset[int] = frozenset(range(7))
    opens: int = 0
    closes: int = 24 * 60
    holidays: frozenset[dt.date] = frozenset()

    def __post_init__(self) -> None:
        if not 0 <= self.opens < self.closes <= 24 * 60:
            raise ValueError("working hours must open before they close, within a day")
        if not self.days:
            raise ValueError("there must be at least one working day")

    def add(self, start: dt.datetime, minutes: float) -> dt.datetime:
        """The moment ``minutes`` working minutes after ``start`` (before it, when
        negative). Work resumes at the next opening: from outside the hours, the count
        starts there."""
        if minutes == 0:
            return start
        left = dt.timedelta(minutes=abs(minutes))
        later = minutes > 0
        for opens, closes in self._forward(start) if later else self._backward(start):
            if left <= closes - opens:
                return opens + left if later else closes - left
            left -= closes - opens
        raise ValueError(f"no working time within {SEARCH_DAYS} days of {start}")

    def between(self, start: dt.datetime, end: dt.datetime) -> float:
        """The working minutes from ``start`` to ``end`` (0 when ``end`` is not later)."""
        worked = dt.timedelta()
        if end <= start:
            return 0.0
        for opens, closes in self._forward(start):
            if opens >= end:
                break
            worked += min(closes, end) - opens
        return worked / dt.timedelta(minutes=1)

    # --- the working intervals, as naive UTC ----------------------------------------------

    def _forward(self, start: dt.datetime) -> Iterator[Interval]:
        """The working intervals from ``start`` on, the first one cut at ``start``."""
        for opens, closes in self._days(self._local_date(start), 1):
            if closes > start:
                yield max(opens, start), closes

    def _backward(self, end: dt.datetime) -> Iterator[Interval]:
        """The working intervals before ``end``, latest first, the first one cut there."""
        for opens, closes in self._days(self._local_date(end), -1):
            if opens < end:
                yield opens, min(closes, end)

    def _days(self, day: dt.date, step: int) -> Iterator[Interval]:
        """Each working day's interval from ``day`` on (``step`` 1) or back (-1), until
        :data:`SEARCH_DAYS` days in a row have none."""
        idle = 0
        while idle < SEARCH_DAYS:
            hours = self._hours(day)
            idle = idle + 1 if hours is None else 0
            if hours is not None:
                yield hours
            day += dt.timedelta(days=step)

    def _hours(self, day: dt.date) -> Interval | None:
        """The day's working interval, or None on a day off. Adding minutes to local
        midnight moves the wall clock, so 09:00 is 09:00 whatever the day's UTC offset."""
        if day.weekday() not in self.days or day in self.holidays:
            return None
        midnight = dt.datetime.combine(day, dt.time(), self.zone)
        return (_naive_utc(midnight + dt.timedelta(minutes=self.opens)),
                _naive_utc(midnight + dt.timedelta(minutes=self.closes)))

    def _local_date(self, moment: dt.datetime) -> dt.date:
        return moment.replace(tzinfo=dt.UTC).astimezone(self.zone).date()


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)
