"""The sla plugin: its business-time arithmetic on its own (weekends, holidays, starts
outside the hours, the days the clocks change), then its timers in a workspace with a
ticket entity whose workflow has a paused state, at injected times: the warning and the
breach set the status and fire the escalation rule once each, a pause stops the clock,
a resolution in time leaves the status ok, and a disabled plugin does nothing; settings
naming what the workspace does not have (or closing before they open) are refused when
enabled, the setting named."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockscrm.engine import DefinitionError, User, Workspace
from blockscrm.plugins.sla import clock
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


# --- the plugin in a workspace ------------------------------------------------------------

TICKET = {
    "kind": "entity", "name": "ticket", "label": {"en": "Ticket"}, "required": ["subject"],
    "properties": {
        "subject": {"type": "string"},
        "priority": {"type": "string", "enum": ["urgent", "normal", "low"],
                     "x-field": "select", "default": "normal"},
        "first_response_at": {"type": "string", "format": "date-time"},
        "response_due": {"type": "string", "format": "date-time"},
        "resolution_due": {"type": "string", "format": "date-time"},
        "sla_status": {"type": "string", "enum": ["ok", "warning", "breached"],
                       "x-field": "select"},
        "escalated": {"type": "boolean"},
    }}
SUPPORT = {
    "kind": "workflow", "name": "support", "label": {"en": "Support"}, "entity": "ticket",
    "initial": "new",
    "states": [{"name": "new", "label": {"en": "New"}},
               {"name": "open", "label": {"en": "Open"}},
               {"name": "waiting_on_customer", "label": {"en": "Waiting on customer"}},
               {"name": "resolved", "label": {"en": "Resolved"}, "category": "closed"}],
    "transitions": [
        {"name": "take", "from": ["new"], "to": "open"},
        {"name": "ask", "from": ["new", "open"], "to": "waiting_on_customer"},
        {"name": "answer", "from": ["waiting_on_customer"], "to": "open"},
        {"name": "resolve", "from": "*", "to": "resolved"},
    ]}
ESCALATE = {
    "kind": "automation", "name": "escalate_breach", "label": {"en": "Escalate a breach"},
    "entity": "ticket", "trigger": {"on": "sla", "event": "breach", "target": "resolution"},
    "mode": "sync",
    "actions": [{"type": "notify", "user": "mia", "title": "SLA breached"},
                {"type": "set_fields", "values": {"escalated": True}}]}
POLICY = {
    "entity": "ticket", "priority_field": "priority",
    "targets": {"urgent": {"first_response": {"minutes": 30}, "resolution": {"hours": 4}},
                "normal": {"first_response": {"hours": 2}, "resolution": {"hours": 8}}},
    "business_hours": {"time_zone": "Europe/Berlin", "days": ["mon", "tue", "wed", "thu", "fri"],
                       "opens": "09:00", "closes": "17:00"},
    "holidays": ["2026-01-06"],
    "paused_states": ["waiting_on_customer"],
    "first_response": {"leaves_state": "new"},
    "resolved_states": ["resolved"],
    "fields": {"first_response_due": "response_due", "resolution_due": "resolution_due",
               "status": "sla_status"},
}
MONDAY = utc("2026-01-05 09:00")


class Clock:
    """The time the plugin reads when a record is written, set by the test."""

    def __init__(self) -> None:
        self.at = MONDAY

    def __call__(self) -> dt.datetime:
        return self.at


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fixed = Clock()
    monkeypatch.setattr(clock, "now", fixed)
    return fixed


@pytest.fixture
def desk(workspace: Workspace, now: Clock) -> Iterator[Workspace]:
    """A workspace (SQLite, then PostgreSQL) with tickets, the plugin enabled with the
    policy, a manager and the escalation rule; the schedule's first tick has planted its
    timer."""
    workspace.metadata.create(TICKET)
    workspace.metadata.create(SUPPORT)
    workspace.metadata.publish()
    workspace.plugins.enable("sla", {"policies": [POLICY]})
    workspace.metadata.create(ESCALATE)
    workspace.metadata.publish()
    workspace.accounts.create_user("mia", roles=["admin"])
    workspace.automations.tick(MONDAY - dt.timedelta(minutes=5))
    yield workspace


def ticket(ws: Workspace, record_id: str) -> dict[str, Any]:
    return ws.records.get("ticket", record_id)


def notices(ws: Workspace) -> list[str]:
    mia = ws.accounts.user("mia")
    assert isinstance(mia, User)
    return [n["title"] for n in ws.accounts.notifications(mia)["items"]]


def test_a_new_ticket_gets_its_due_times_in_business_hours(desk: Workspace,
                                                           now: Clock) -> None:
    now.at = utc("2026-01-05 16:00")
    urgent = desk.records.create("ticket", {"subject": "down", "priority": "urgent"})
    assert urgent["response_due"] == "2026-01-05T15:30:00Z"  # 16:30 in Berlin
    assert urgent["resolution_due"] == "2026-01-07T11:00:00Z"  # Wed 12:00: Tue is off
    assert urgent["sla_status"] == "ok"
    normal = desk.records.create("ticket", {"subject": "slow"})  # the default priority
    assert normal["response_due"] == "2026-01-07T09:00:00Z"


def test_a_priority_change_moves_the_due_times_by_the_difference(desk: Workspace,
                                                                 now: Clock) -> None:
    record = desk.records.create("ticket", {"subject": "slow"})  # Monday 09:00, normal
    assert record["resolution_due"] == "2026-01-05T16:00:00Z"  # 17:00 in Berlin
    now.at = utc("2026-01-05 10:00")
    raised = desk.records.update("ticket", record["id"], {"priority": "urgent"})
    assert raised["resolution_due"] == "2026-01-05T12:00:00Z"  # 4 h from 09:00, not 10:00
    assert raised["response_due"] == "2026-01-05T08:30:00Z"
    untimed = desk.records.create("ticket", {"subject": "someday", "priority": "low"})
    assert untimed["resolution_due"] is None and untimed["sla_status"] is None
    timed = desk.records.update("ticket", untimed["id"], {"priority": "urgent"})
    assert timed["resolution_due"] == "2026-01-05T13:00:00Z"  # its clock starts now
    assert timed["sla_status"] == "ok"


def test_a_breach_warns_then_escalates_once(desk: Workspace, now: Clock) -> None:
    record = desk.records.create("ticket", {"subject": "down", "priority": "urgent"})
    desk.records.transition("ticket", record["id"], "take")  # the first response, in time
    desk.automations.tick(utc("2026-01-05 11:00"))
    assert ticket(desk, record["id"])["sla_status"] == "ok"
    desk.automations.tick(utc("2026-01-05 12:13"))  # 80 % of 4 h used at 12:12
    assert ticket(desk, record["id"])["sla_status"] == "warning"
    assert notices(desk) == []
    desk.automations.tick(utc("2026-01-05 13:01"))  # due at 13:00
    breached = ticket(desk, record["id"])
    assert breached["sla_status"] == "breached" and breached["escalated"] is True
    assert notices(desk) == ["SLA breached"]
    for minutes in (2, 3, 60):
        desk.automations.tick(utc("2026-01-05 13:00") + dt.timedelta(minutes=minutes))
    assert notices(desk) == ["SLA breached"]  # once per record and event
    runs = desk.automations.runs("ticket", record["id"])
    assert [r["automation"] for r in runs] == ["escalate_breach"]
    history = desk.records.history("ticket", record["id"])
    assert [h["actor"] for h in history if "sla_status" in h["changes"]][-2:] == \
        ["plugin:sla", "plugin:sla"]


def test_a_missed_first_response_fires_its_own_event(desk: Workspace) -> None:
    desk.metadata.create({**ESCALATE, "name": "late_answer",
                          "trigger": {"on": "sla", "target": "first_response"},
                          "actions": [{"type": "notify", "user": "mia",
                                       "title": "Answer late"}]})
    desk.metadata.publish()
    record = desk.records.create("ticket", {"subject": "down", "priority": "urgent"})
    desk.automations.tick(utc("2026-01-05 09:25"))  # warned at 09:24
    desk.automations.tick(utc("2026-01-05 09:31"))  # breached at 09:30
    assert notices(desk) == ["Answer late", "Answer late"]
    assert ticket(desk, record["id"])["sla_status"] == "breached"
    assert ticket(desk, record["id"])["escalated"] is None  # the resolution is not late


def test_a_late_tick_fires_the_breach_alone_and_keeps_the_worst_status(
        desk: Workspace) -> None:
    """No tick came between the warnings and the due time (the worker was down): one
    tick finds the first response breached (its warning is skipped) and the resolution
    at its warning."""
    record = desk.records.create("ticket", {"subject": "down", "priority": "urgent"})
    desk.automations.tick(utc("2026-01-05 12:13"))
    assert ticket(desk, record["id"])["escalated"] is None  # the resolution is not late
    statuses = [h["changes"]["sla_status"]["after"]
                for h in desk.records.history("ticket", record["id"])
                if "sla_status" in h["changes"]]
    assert statuses == ["ok", "breached"]  # the warning after it did not lower it


def test_a_paused_ticket_is_not_breached(desk: Workspace, now: Clock) -> None:
    record = desk.records.create("ticket", {"subject": "down", "priority": "urgent"})
    desk.records.transition("ticket", record["id"], "take")
    now.at = utc("2026-01-05 10:00")
    desk.records.transition("ticket", record["id"], "ask")  # 1 h of 4 used
    desk.automations.tick(utc("2026-01-05 14:00"))
    desk.automations.tick(utc("2026-01-07 10:00"))  # a working day later (Tuesday is off)
    assert ticket(desk, record["id"])["sla_status"] == "ok"
    now.at = utc("2026-01-07 10:00")
    desk.records.transition("ticket", record["id"], "answer")
    # 3 h left: 13:00 in Berlin; the plugin moved the due time once the answer landed.
    assert ticket(desk, record["id"])["resolution_due"] == "2026-01-07T12:00:00Z"
    desk.automations.tick(utc("2026-01-07 11:00"))
    assert ticket(desk, record["id"])["sla_status"] == "ok"
    desk.automations.tick(utc("2026-01-07 13:01"))
    assert ticket(desk, record["id"])["sla_status"] == "breached"
    assert notices(desk) == ["SLA breached"]


def test_a_ticket_resolved_in_time_stays_ok(desk: Workspace, now: Clock) -> None:
    """Here a field marks the first response."""
    desk.plugins.enable("sla", {"policies": [
        {**POLICY, "first_response": {"field": "first_response_at"}}]})
    record = desk.records.create("ticket", {"subject": "down", "priority": "urgent"})
    now.at = utc("2026-01-05 09:10")
    desk.records.update("ticket", record["id"], {"first_response_at": "2026-01-05T08:10:00Z"})
    desk.records.transition("ticket", record["id"], "take")
    now.at = utc("2026-01-05 11:00")
    desk.records.transition("ticket", record["id"], "resolve")
    for moment in ("2026-01-05 09:31", "2026-01-05 12:30", "2026-01-05 14:00",
                   "2026-01-08 09:00"):
        desk.automations.tick(utc(moment))
    assert ticket(desk, record["id"])["sla_status"] == "ok"
    assert notices(desk) == []


def test_a_disabled_plugin_does_nothing(workspace: Workspace, now: Clock) -> None:
    workspace.metadata.create(TICKET)
    workspace.metadata.create(SUPPORT)
    workspace.metadata.publish()
    workspace.plugins.enable("sla", {"policies": [POLICY]})
    workspace.plugins.disable("sla")
    workspace.automations.tick(MONDAY - dt.timedelta(minutes=5))
    record = workspace.records.create("ticket", {"subject": "down", "priority": "urgent"})
    assert record["response_due"] is None and record["sla_status"] is None
    workspace.records.transition("ticket", record["id"], "ask")
    workspace.automations.tick(utc("2026-01-08 09:00"))
    assert ticket(workspace, record["id"])["sla_status"] is None


def test_settings_are_checked(desk: Workspace) -> None:
    bad = {**POLICY, "business_hours": {**POLICY["business_hours"],
                                        "time_zone": "Europe/Atlantis", "closes": "25:00"}}
    with pytest.raises(DefinitionError) as refused:
        desk.plugins.enable("sla", {"policies": [bad]})
    assert set(refused.value.errors) == {"/policies/0/business_hours/time_zone",
                                         "/policies/0/business_hours/closes"}


@pytest.mark.parametrize(("change", "pointer", "says"), [
    ({"business_hours": {**POLICY["business_hours"], "opens": "17:00", "closes": "09:00"}},
     "/policies/0/business_hours/closes", "not after it opens"),
    ({"entity": "case"}, "/policies/0/entity", "no entity 'case'"),
    ({"priority_field": "urgency"}, "/policies/0/priority_field", "no field 'urgency'"),
    ({"fields": {**POLICY["fields"], "resolution_due": "resolve_by"}},
     "/policies/0/fields/resolution_due", "no field 'resolve_by'"),
    ({"fields": {**POLICY["fields"], "resolution_due": "subject"}},
     "/policies/0/fields/resolution_due", "not a date-time field"),
    ({"fields": {**POLICY["fields"], "status": "priority"}}, "/policies/0/fields/status",
     "lacks the options breached, ok, warning"),
    ({"first_response": {"field": "answered_at"}}, "/policies/0/first_response/field",
     "no field 'answered_at'"),
    ({"first_response": {"leaves_state": "fresh"}},
     "/policies/0/first_response/leaves_state", "no state 'fresh'"),
    ({"paused_states": ["waiting_on_customer", "on_hold"]}, "/policies/0/paused_states/1",
     "no state 'on_hold'"),
])
def test_settings_that_do_not_fit_the_workspace_are_refused_when_enabled(
        desk: Workspace, change: dict[str, Any], pointer: str, says: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        desk.plugins.enable("sla", {"policies": [{**POLICY, **change}]})
    assert list(refused.value.errors) == [pointer]
    assert says in refused.value.errors[pointer][0]
    assert "sla" in str(refused.value)
    assert desk.plugins.settings("sla") == {"policies": [POLICY]}  # the ones it had


def test_a_second_policy_for_one_entity_is_refused(desk: Workspace) -> None:
    with pytest.raises(DefinitionError) as refused:
        desk.plugins.enable("sla", {"policies": [POLICY, POLICY]})
    assert set(refused.value.errors) == {"/policies/1/entity"}
