"""Automations through the engine's API: triggers, conditions, actions, sync and async
runs (inline here; RQ in test_jobs.py), timers, the run log, dry runs and cycles."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import pytest
import sqlalchemy as sa

from blockscrm.engine import (
    ActionFailed,
    DefinitionError,
    PluginInfo,
    QueryError,
    Workspace,
    hookimpl,
)
from blockscrm.engine.actions import Action
from blockscrm.engine.automations import MAX_ATTEMPTS, MAX_DEPTH
from blockscrm.engine.plugins import add_plugin, create_plugin_manager
from blockscrm.engine.store import utcnow

from conftest import Receiver

TICKET = {"kind": "entity", "name": "ticket", "label": {"en": "Ticket"},
          "required": ["subject"],
          "properties": {"subject": {"type": "string"},
                         "amount": {"type": "number"},
                         "priority": {"type": "string", "enum": ["low", "high"],
                                      "x-field": "select"},
                         "score": {"type": "integer"},
                         "due": {"type": "string", "format": "date"},
                         "notes": {"x-field": "long_text"}}}
TASK = {"kind": "entity", "name": "task", "label": {"en": "Task"}, "required": ["title"],
        "properties": {"title": {"type": "string"},
                       "ticket": {"type": "string", "x-field": "reference", "x-ref": "ticket",
                                  "x-on-delete": "cascade"}}}


def rule(name: str, trigger: dict[str, Any], actions: list[dict[str, Any]],
         condition: Any = None, mode: str = "sync") -> dict[str, Any]:
    document = {"kind": "automation", "name": name, "label": {"en": name}, "entity": "ticket",
                "trigger": trigger, "actions": actions, "mode": mode}
    if condition is not None:
        document["condition"] = condition
    return document


@pytest.fixture
def desk(workspace: Workspace) -> Workspace:
    workspace.metadata.create(TICKET)
    workspace.metadata.create(TASK)
    workspace.metadata.publish()
    return workspace


def publish(ws: Workspace, *documents: dict[str, Any]) -> None:
    for document in documents:
        ws.metadata.create(document)
    ws.metadata.publish()


def runs(ws: Workspace, record_id: str | None = None) -> list[dict[str, Any]]:
    return ws.automations.runs("ticket", record_id)


def test_a_sync_rule_acts_within_the_save_and_says_why(desk: Workspace) -> None:
    publish(desk, rule("flag_big", {"on": "created"},
                       [{"type": "set_fields", "values": {"priority": "high",
                                                          "score": {"formula": "amount / 10"}}}],
                       condition="amount > 1000"))
    big = desk.records.create("ticket", {"subject": "Big", "amount": 5000})
    assert (big["priority"], big["score"]) == ("high", 500)  # the save answers it
    small = desk.records.create("ticket", {"subject": "Small", "amount": 5})
    assert small["priority"] is None and runs(desk, small["id"]) == []
    [run] = runs(desk, big["id"])
    assert run["status"] == "done" and run["why"] == "on created, when amount > 1000"
    assert run["steps"][0]["action"] == "set_fields"
    history = desk.records.history("ticket", big["id"])
    assert history[-1]["actor"] == "automation:flag_big"


def test_a_failing_sync_rule_rolls_the_whole_save_back(desk: Workspace) -> None:
    publish(desk, rule("broken", {"on": "created"},
                       [{"type": "set_fields", "values": {"score": {"formula": "amount"}}}]))
    with pytest.raises(ActionFailed, match=r"rule 'broken', action 1 \(set_fields\)"):
        desk.records.create("ticket", {"subject": "x", "amount": 1.5})  # not an integer
    assert desk.query("ticket").count().value == 0
    with desk.reading() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM blocks_runs")) == 0


def test_an_async_rule_runs_after_the_commit(desk: Workspace) -> None:
    publish(desk, rule("follow_up", {"on": "created"},
                       [{"type": "create_record", "entity": "task", "link": "ticket",
                         "values": {"title": "Call back"}}], mode="async"))
    ticket = desk.records.create("ticket", {"subject": "Hello"})
    tasks = desk.query("task").page().items
    assert [(t["title"], t["ticket"]) for t in tasks] == [("Call back", ticket["id"])]
    [run] = runs(desk, ticket["id"])
    assert run["status"] == "done" and run["mode"] == "async" and run["attempts"] == 1


def test_updated_triggers_follow_named_fields_and_changes(desk: Workspace) -> None:
    publish(desk, rule("escalate", {"on": "updated", "fields": ["amount"]},
                       [{"type": "set_fields", "values": {"priority": "high"}}],
                       condition='amount > previous("amount")'))
    ticket = desk.records.create("ticket", {"subject": "t", "amount": 10})
    assert desk.records.update("ticket", ticket["id"], {"subject": "u"})["priority"] is None
    assert desk.records.update("ticket", ticket["id"], {"amount": 5})["priority"] is None
    assert desk.records.update("ticket", ticket["id"], {"amount": 50})["priority"] == "high"


def test_rules_that_trigger_each_other_are_cut_and_the_cut_is_logged(desk: Workspace) -> None:
    publish(desk,
            rule("ping", {"on": "updated", "fields": ["amount"]},
                 [{"type": "set_fields", "values": {"score": {"formula": "score + 1"}}}]),
            rule("pong", {"on": "updated", "fields": ["score"]},
                 [{"type": "set_fields", "values": {"amount": {"formula": "amount + 1"}}}]))
    ticket = desk.records.create("ticket", {"subject": "loop", "amount": 0, "score": 0})
    done = desk.records.update("ticket", ticket["id"], {"amount": 1})
    assert done["score"] == 1 and done["amount"] == 2  # ping, pong, then ping is cut
    statuses = [(r["automation"], r["status"]) for r in reversed(runs(desk, ticket["id"]))]
    assert ("ping", "cut") in statuses and statuses.count(("ping", "done")) == 1
    cut = next(r for r in runs(desk, ticket["id"]) if r["status"] == "cut")
    assert "re-enter itself" in cut["error"]


def test_the_depth_limit_cuts_a_chain_across_records(desk: Workspace) -> None:
    publish(desk, rule("spawn", {"on": "created"},
                       [{"type": "create_record", "entity": "ticket",
                         "values": {"subject": "child"}}]))
    desk.records.create("ticket", {"subject": "root"})
    assert desk.query("ticket").count().value == MAX_DEPTH + 1
    cuts = [r for r in runs(desk) if r["status"] == "cut"]
    assert len(cuts) == 1 and f"reached {MAX_DEPTH}" in cuts[0]["error"]


def test_notify_and_email_without_smtp(desk: Workspace) -> None:
    ann = desk.accounts.create_user("ann", roles=["admin"], email="ann@example.com")
    publish(desk, rule("tell", {"on": "created"},
                       [{"type": "notify", "user": "owner",
                         "title": "New ticket: {{ record.subject }}"},
                        {"type": "send_email", "to": ["{{ record.notes }}"],
                         "subject": "About {{ record.subject }}",
                         "body": "{{ record.subject|upper }} costs {{ record.amount }}"}]))
    desk.records.create("ticket", {"subject": "Leak", "amount": 3, "notes": "x@example.com"},
                        user=ann)
    with desk.reading() as conn:
        note = conn.execute(sa.text("SELECT user_id, title, read FROM blocks_notifications")
                            ).one()
        mail = conn.execute(sa.text("SELECT subject, body, status FROM blocks_outbox")).one()
    assert note[0] == ann.id and note[1] == "New ticket: Leak" and not note[2]
    assert tuple(mail) == ("About Leak", "LEAK costs 3", "kept")


def test_templates_are_sandboxed(desk: Workspace) -> None:
    publish(desk, rule("snoop", {"on": "created"},
                       [{"type": "notify", "user": "owner",
                         "title": "{{ record.__class__.__mro__ }}"}]))
    ann = desk.accounts.create_user("ann", roles=["admin"])
    with pytest.raises(ActionFailed, match=r"unsafe|not safely"):
        desk.records.create("ticket", {"subject": "x"}, user=ann)


def test_a_webhook_is_signed_and_a_failing_one_is_retried_then_kept(
        desk: Workspace, receiver: tuple[str, type[Receiver]]) -> None:
    url, handler = receiver
    desk.plugins.enable("webhooks")  # the webhook action is the plugin's
    publish(desk, rule("hook", {"on": "created"},
                       [{"type": "webhook", "url": url, "secret": "s3cret", "timeout": 5}],
                       mode="async"))
    ticket = desk.records.create("ticket", {"subject": "Signed"})
    [(headers, body)] = handler.calls
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Blocks-Signature"] == expected
    assert json.loads(body)["record"]["id"] == ticket["id"]
    handler.status = 503
    down = desk.records.create("ticket", {"subject": "Down"})
    [run] = runs(desk, down["id"])
    assert run["status"] == "queued" and "503" in run["error"] and run["attempts"] == 1
    later = utcnow() + dt.timedelta(hours=1)
    for _ in range(MAX_ATTEMPTS):
        desk.automations.tick(later)
    [run] = runs(desk, down["id"])
    assert run["status"] == "failed" and run["attempts"] == MAX_ATTEMPTS
    handler.status = 200
    desk.automations.rerun(run["id"])
    assert runs(desk, down["id"])[0]["status"] == "done"


def test_a_relative_trigger_fires_once_and_only_while_its_condition_holds(
        desk: Workspace) -> None:
    publish(desk, rule("remind", {"on": "relative", "field": "due", "offset": {"days": -1}},
                       [{"type": "set_fields", "values": {"priority": "high"}}],
                       condition='priority != "high" and subject != "skip"', mode="async"))
    soon = desk.records.create("ticket", {"subject": "soon", "due": "2030-01-10"})
    skip = desk.records.create("ticket", {"subject": "keep", "due": "2030-01-10"})
    desk.records.update("ticket", skip["id"], {"subject": "skip"})
    assert desk.automations.tick(dt.datetime(2030, 1, 8)) == 0  # not yet due
    assert desk.automations.tick(dt.datetime(2030, 1, 9, 0, 1)) == 2
    assert desk.records.get("ticket", soon["id"])["priority"] == "high"
    assert runs(desk, skip["id"])[0]["status"] == "skipped"
    assert desk.automations.tick(dt.datetime(2030, 1, 9, 0, 2)) == 0  # once
    desk.records.update("ticket", soon["id"], {"due": "2031-01-10", "priority": "low"})
    assert desk.automations.tick(dt.datetime(2031, 1, 9, 1)) == 1  # the timer moved


def test_a_schedule_fires_on_its_cron(desk: Workspace) -> None:
    publish(desk, {"kind": "automation", "name": "nightly", "label": {"en": "Nightly"},
                   "entity": "ticket", "trigger": {"on": "schedule", "cron": "0 2 * * *"},
                   "actions": [{"type": "create_record", "entity": "ticket",
                                "values": {"subject": "nightly report"}}]})
    assert desk.automations.tick(dt.datetime(2030, 5, 1, 1, 0)) == 0
    assert desk.automations.tick(dt.datetime(2030, 5, 1, 2, 1)) == 1
    assert desk.automations.tick(dt.datetime(2030, 5, 1, 3, 0)) == 0
    assert desk.automations.tick(dt.datetime(2030, 5, 2, 2, 0)) == 1
    assert desk.query("ticket").count().value == 2


def test_assigning_owners_round_robin(desk: Workspace) -> None:
    desk.accounts.create_team("support")
    people = [desk.accounts.create_user(n, teams=["support"]).id for n in ("a1", "a2", "a3")]
    publish(desk, rule("share", {"on": "created"},
                       [{"type": "assign_owner", "team": "support"}]))
    owners = [desk.records.create("ticket", {"subject": str(i)})["owner_id"]
              for i in range(4)]
    assert owners == [*sorted(people), sorted(people)[0]]


def test_a_dry_run_shows_what_a_rule_would_do_and_writes_nothing(desk: Workspace) -> None:
    desk.records.bulk_insert("ticket", [{"subject": f"t{i}", "amount": i * 100}
                                        for i in range(10)])
    publish(desk, rule("flag", {"on": "updated"},
                       [{"type": "set_fields", "values": {"score": {"formula": "amount / 100"}}}],
                       condition="amount >= 700"))
    preview = desk.automations.dry_run("flag")
    assert preview["matches"] == 3
    assert sorted(i["actions"][0]["values"]["score"] for i in preview["items"]) == [7, 8, 9]
    assert desk.query("ticket").filter("score != null").count().value == 0
    publish(desk, rule("moved", {"on": "updated"}, [{"type": "notify", "title": "x"}],
                       condition='changed("amount")'))
    with pytest.raises(QueryError, match="reads the write"):
        desk.automations.dry_run("moved")


@pytest.mark.parametrize(("change", "pointer"), [
    ({"actions": [{"type": "teleport"}]}, "/automation/r/actions/0/type"),
    ({"actions": [{"type": "set_fields", "values": {"nope": 1}}]},
     "/automation/r/actions/0/values/nope"),
    ({"actions": [{"type": "set_fields", "values": {"score": {"formula": "amount +"}}}]},
     "/automation/r/actions/0/values/score/formula"),
    ({"condition": "subject > 3"}, "/automation/r/condition"),
    ({"trigger": {"on": "schedule", "cron": "every day"}}, "/automation/r/trigger/cron"),
    ({"trigger": {"on": "relative", "field": "subject", "offset": {"days": 1}}},
     "/automation/r/trigger/field"),
    ({"trigger": {"on": "updated", "fields": ["ghost"]}}, "/automation/r/trigger/fields/0"),
    ({"trigger": {"on": "transition"}}, "/automation/r/trigger/on"),
    ({"actions": [{"type": "create_record", "entity": "ghost"}]},
     "/automation/r/actions/0/entity"),
])
def test_a_bad_rule_is_refused_with_a_pointer(desk: Workspace, change: dict[str, Any],
                                              pointer: str) -> None:
    desk.metadata.create({**rule("r", {"on": "created"},
                                 [{"type": "notify", "title": "x"}]), **change})
    with pytest.raises(DefinitionError) as caught:
        desk.metadata.publish()
    assert pointer in caught.value.errors, caught.value.errors


def test_a_plugin_adds_an_action(tmp_path: Any) -> None:
    """The built-in actions come through the same hook a plugin's does."""
    seen: list[tuple[str, str]] = []

    class Plugin:
        @hookimpl
        def blocks_plugin_info(self) -> PluginInfo:
            return PluginInfo("stamper", "1.0", ">=0.1")

        @hookimpl
        def blocks_actions(self) -> list[Action]:
            schema = {"type": "object", "required": ["type", "tag"],
                      "properties": {"type": {"type": "string"}, "tag": {"type": "string"}},
                      "additionalProperties": False}
            return [Action("stamp", schema,
                           lambda ctx, params: seen.append((ctx.record["id"], params["tag"])))]

    pm = create_plugin_manager(load_entry_points=False)
    add_plugin(pm, Plugin())
    ws = Workspace(f"sqlite:///{tmp_path / 'p.db'}", pm=pm)
    try:
        ws.plugins.enable("stamper")
        publish(ws, TICKET, rule("stamp_it", {"on": "created"},
                                 [{"type": "stamp", "tag": "seen"}]))
        ticket = ws.records.create("ticket", {"subject": "x"})
        assert seen == [(ticket["id"], "seen")]
        ws.metadata.create(rule("bad_stamp", {"on": "created"}, [{"type": "stamp"}]))
        with pytest.raises(DefinitionError) as caught:
            ws.metadata.publish()
        assert "/automation/bad_stamp/actions/0" in caught.value.errors
    finally:
        ws.close()


def test_assigning_owners_by_rule_and_by_fewest_open(desk: Workspace) -> None:
    big = desk.accounts.create_user("big", roles=["admin"]).id
    small = desk.accounts.create_user("small", roles=["admin"]).id
    publish(desk, rule("route", {"on": "created"},
                       [{"type": "assign_owner", "strategy": "rule",
                         "rules": [{"when": "amount >= 1000", "user": "big"}],
                         "otherwise": "small"}]))
    owners = [desk.records.create("ticket", {"subject": "x", "amount": a})["owner_id"]
              for a in (5000, 10)]
    assert owners == [big, small]
    desk.metadata.delete("automation", "route")
    publish(desk, rule("balance", {"on": "created"},
                       [{"type": "assign_owner", "strategy": "least_open", "role": "admin"}]))
    assert desk.records.create("ticket", {"subject": "y"})["owner_id"] == big  # a tie: first
    desk.metadata.create(rule("odd", {"on": "created"},
                              [{"type": "assign_owner", "strategy": "rule",
                                "rules": [{"when": "amount > 'x'", "user": "big"}]}]))
    with pytest.raises(DefinitionError) as caught:
        desk.metadata.publish()
    assert "/automation/odd/actions/0/rules/0/when" in caught.value.errors


def test_regression_a_save_stands_when_the_job_queue_is_down(desk: Workspace) -> None:
    """The job went to Redis after the commit, and a refused connection failed the
    committed save (a 500, then a duplicate on retry) and lost the run."""
    publish(desk, rule("later", {"on": "created"}, [{"type": "notify", "title": "x"}],
                       mode="async"))
    down = Workspace(desk.url, secret="test-secret", redis_url="redis://127.0.0.1:1/0")
    try:
        ticket = down.records.create("ticket", {"subject": "kept"})
        assert [r["status"] for r in runs(down, ticket["id"])] == ["queued"]
        assert down.automations.tick(utcnow() + dt.timedelta(hours=1)) == 1  # handed again
    finally:
        down.close()


def test_regression_a_schedule_removed_and_added_again_fires_again(desk: Workspace) -> None:
    """Its timer stayed spent once the rule was gone, and one of the same name never
    got a new one."""
    nightly = {"kind": "automation", "name": "nightly", "label": {"en": "Nightly"},
               "entity": "ticket", "trigger": {"on": "schedule", "cron": "0 2 * * *"},
               "actions": [{"type": "create_record", "entity": "ticket",
                            "values": {"subject": "report"}}]}
    publish(desk, nightly)
    desk.automations.tick(dt.datetime(2030, 5, 1, 1, 0))  # planted for 02:00
    desk.metadata.delete("automation", "nightly")
    desk.metadata.publish(confirm=True)
    assert desk.automations.tick(dt.datetime(2030, 5, 1, 2, 1)) == 0  # gone with its rule
    publish(desk, nightly)
    desk.automations.tick(dt.datetime(2030, 5, 1, 3, 0))
    assert desk.automations.tick(dt.datetime(2030, 5, 2, 2, 1)) == 1


def test_a_timer_on_updated_at_restarts_with_every_change(desk: Workspace) -> None:
    publish(desk, rule("untouched", {"on": "relative", "field": "updated_at",
                                     "offset": {"hours": 48}},
                       [{"type": "set_fields", "values": {"priority": "high"}}], mode="async"))
    ticket = desk.records.create("ticket", {"subject": "quiet"})
    desk.records.update("ticket", ticket["id"], {"notes": "touched"})
    touched = dt.datetime.fromisoformat(
        desk.records.get("ticket", ticket["id"])["updated_at"].rstrip("Z"))
    assert touched > dt.datetime.fromisoformat(ticket["updated_at"].rstrip("Z"))
    # Due 48 hours after the change, not after the creation.
    assert desk.automations.tick(touched + dt.timedelta(hours=48, microseconds=-1)) == 0
    assert desk.automations.tick(touched + dt.timedelta(hours=48, seconds=1)) == 1
    assert desk.records.get("ticket", ticket["id"])["priority"] == "high"


def test_a_converting_rule_links_what_it_creates_and_gives_it_the_owner(
        desk: Workspace) -> None:
    desk.metadata.replace("entity", "ticket", {**TICKET, "properties": {
        **TICKET["properties"],
        "task": {"x-field": "reference", "x-ref": "task", "x-on-delete": "set_null"},
        "follow_up": {"type": "string", "format": "date"}}})
    desk.metadata.publish()
    mia = desk.accounts.create_user("mia")
    ann = desk.accounts.create_user("ann", manager="mia", roles=["admin"])
    publish(desk, rule("convert", {"on": "created"}, [
        {"type": "create_record", "entity": "task", "into": "task",
         "values": {"title": {"formula": "subject"}}},
        {"type": "set_fields", "values": {"notes": {"formula": "task"},
                                          "follow_up": {"formula": "date_add(today(), 3)"}}},
        {"type": "notify", "user": {"manager_of": "owner"}, "title": "Converted"}]))
    ticket = desk.records.create("ticket", {"subject": "Lead"}, user=ann)
    ticket = desk.records.get("ticket", ticket["id"])
    task = desk.records.get("task", ticket["task"])
    assert task["title"] == "Lead" and ticket["notes"] == task["id"]
    assert task["owner_id"] == ann.id  # not the rule's
    assert ticket["follow_up"] == str(utcnow().date() + dt.timedelta(days=3))
    assert [n["title"] for n in desk.accounts.notifications(mia)["items"]] == ["Converted"]
    with pytest.raises(DefinitionError, match=r"ticket\.subject is no reference to task"):
        publish(desk, rule("bad", {"on": "created"}, [
            {"type": "create_record", "entity": "task", "into": "subject"}]))
