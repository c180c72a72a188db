"""The sla plugin: its business-time arithmetic on its own (weekends, holidays, starts
outside the hours, the days the clocks change)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockscrm.plugins.sla.business_time import BusinessHours

BERLIN = BusinessHours(ZoneInfo("Europe/Berlin"), frozenset(range(5)), 9 * 60, 17 * 60,
                       frozenset({dt.date(2026, 1, 6)}))


def utc(text: str) -> dt.datetime:
    """A moment written as Berlin wall time in winter (UTC+1), as naive UTC."""
    return dt.datetime.fromisoformat(text) - dt.timedelta(hours=1)


# --- business time ------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "minutes", "due"), [
    ("2026-01-05 10:00", 120, "2026-01-05 12:00"),  # a Monday, within the day
    ("2026-01-05 16:00", 120, "2026-01-07 10:00"),  # over the night and Tuesday's holiday
    ("2026-01-09 16:00", 120, "2026-01-12 10:00"),  # Friday: over the weekend
    ("2026-01-10 12:00", 60, "2026-01-12 10:00"),  # from a Saturday: Monday's opening
    ("2026-01-05 07:00", 30, "2026-01-05 09:30"),  # before the opening
    ("2026-01-05 18:00", 30, "2026-01-07 09:30"),  # after the closing, then the holiday
    ("2026-01-05 10:00", 8 * 60, "2026-01-07 10:00"),  # one whole working day
    ("2026-01-05 10:00", 0, "2026-01-05 10:00"),
])
def test_adding_working_minutes(start: str, minutes: int, due: str) -> None:
    assert BERLIN.add(utc(start), minutes) == utc(due)
    if minutes:
        assert BERLIN.between(utc(start), utc(due)) == minutes


@pytest.mark.parametrize(("start", "minutes", "back_to"), [
    ("2026-01-05 12:00", 120, "2026-01-05 10:00"),
    ("2026-01-12 10:00", 120, "2026-01-09 16:00"),  # back over the weekend
    ("2026-01-07 10:00", 120, "2026-01-05 16:00"),  # and over the holiday
    ("2026-01-10 12:00", 60, "2026-01-09 16:00"),  # from a Saturday: Friday's closing
])
def test_taking_working_minutes_back(start: str, minutes: int, back_to: str) -> None:
    assert BERLIN.add(utc(start), -minutes) == utc(back_to)


@pytest.mark.parametrize(("start", "end", "minutes"), [
    ("2026-01-05 10:00", "2026-01-05 10:30", 30),
    ("2026-01-09 16:00", "2026-01-12 10:00", 120),  # the weekend does not count
    ("2026-01-05 18:00", "2026-01-07 08:00", 0),  # an evening, a holiday, a night
    ("2026-01-10 00:00", "2026-01-11 23:59", 0),  # a weekend
    ("2026-01-05 12:00", "2026-01-05 10:00", 0),  # backwards
])
def test_working_minutes_between(start: str, end: str, minutes: int) -> None:
    assert BERLIN.between(utc(start), utc(end)) == minutes


def test_the_days_the_clocks_change() -> None:
    """Working hours are wall-clock hours: after Berlin moves to summer time (Sunday 29
    March 2026), Monday's 10:00 is 08:00 UTC, not 09:00; a day worked around the clock
    has 23 hours then, and 25 when the clocks go back (25 October)."""
    friday = dt.datetime(2026, 3, 27, 15, 0)  # 16:00 CET
    assert BERLIN.add(friday, 120) == dt.datetime(2026, 3, 30, 8, 0)  # 10:00 CEST
    assert BERLIN.between(friday, dt.datetime(2026, 3, 30, 8, 0)) == 120
    always = BusinessHours(ZoneInfo("Europe/Berlin"))
    spring = dt.datetime(2026, 3, 28, 23, 0)  # Sunday 00:00 CET
    assert always.between(spring, spring + dt.timedelta(days=1)) == 24 * 60
    assert always.add(spring, 23 * 60) == dt.datetime(2026, 3, 29, 22, 0)  # Monday 00:00
    sundays = BusinessHours(ZoneInfo("Europe/Berlin"), frozenset({6}))
    autumn = dt.datetime(2026, 10, 24, 22, 0)  # Sunday 00:00 CEST
    assert sundays.between(autumn, autumn + dt.timedelta(days=2)) == 25 * 60
    assert sundays.between(spring, spring + dt.timedelta(days=2)) == 23 * 60


def test_hours_that_cannot_be_worked_are_refused() -> None:
    with pytest.raises(ValueError, match="open before they close"):
        BusinessHours(opens=17 * 60, closes=9 * 60)
    with pytest.raises(ValueError, match="working day"):
        BusinessHours(days=frozenset())


@settings(max_examples=200, deadline=None)
@given(st.datetimes(dt.datetime(2025, 1, 1), dt.datetime(2027, 12, 31)),
       st.integers(1, 20_000))
def test_adding_then_counting_gives_the_minutes_back(start: dt.datetime,
                                                     minutes: int) -> None:
    due = BERLIN.add(start, minutes)
    assert abs(BERLIN.between(start, due) - minutes) < 1e-6
    assert BERLIN.between(BERLIN.add(due, -minutes), due) == pytest.approx(minutes)
