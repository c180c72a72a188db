"""Approval processes through the engine's API: steps and modes, the lock, recall,
rejection and re-submission, delegation, escalation (time injected), concurrency."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from blockscrm.engine import (
    ActionFailed,
    Conflict,
    DefinitionError,
    Locked,
    NotFound,
    PermissionDenied,
    User,
    ValidationError,
    Workspace,
)
from blockscrm.engine.store import utcnow

QUOTE = {"kind": "entity", "name": "quote", "label": {"en": "Quote"}, "required": ["title"],
         "properties": {"title": {"type": "string"}, "discount": {"type": "number"},
                        "amount": {"type": "number"}, "note": {"type": "string"},
                        "reviewer": {"x-field": "user"}}}
FLOW = {"kind": "workflow", "name": "quoting", "label": {"en": "Quoting"}, "entity": "quote",
        "initial": "draft", "states": [{"name": "draft"}, {"name": "agreed"}],
        "transitions": [{"name": "agree", "from": ["draft"], "to": "agreed"}]}
MANAGERS = {"kind": "role", "name": "manager", "label": {"en": "Manager"},
            "permissions": {"quote": {"read": True, "update": True}}}
REPS = {"kind": "role", "name": "rep", "label": {"en": "Rep"},
        "permissions": {"quote": {"create": True, "read": "own", "update": "own"}}}


def process(steps: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {"kind": "approval", "name": "discount", "label": {"en": "Discount"},
            "entity": "quote", "entry": "discount > 20", "steps": steps, **more}


@pytest.fixture
def office(workspace: Workspace) -> dict[str, Any]:
    """Sam submits; Mia, Max and Moe are managers; Bea is Sam's manager; Ada is an admin."""
    for document in (QUOTE, FLOW, MANAGERS, REPS):
        workspace.metadata.create(document)
    workspace.metadata.publish()
    accounts = workspace.accounts
    people: dict[str, Any] = {"ws": workspace}
    people["bea"] = accounts.create_user("bea")
    people["sam"] = accounts.create_user("sam", manager="bea", roles=["rep"])
    for name in ("mia", "max", "moe"):
        people[name] = accounts.create_user(name, roles=["manager"])
    people["ada"] = accounts.create_user("ada", roles=["admin"])
    return people


def publish(ws: Workspace, *documents: dict[str, Any]) -> None:
    for document in documents:
        ws.metadata.create(document)
    ws.metadata.publish()


def quote(office: dict[str, Any], **values: Any) -> dict[str, Any]:
    ws, sam = office["ws"], office["sam"]
    return ws.records.create("quote", {"title": "Q", "discount": 30, "owner_id": sam.id,
                                       **values})


def decisions(ws: Workspace, record_id: str) -> list[tuple[str, str | None]]:
    return [(h["decision"], h["changes"]["step"]) for h in ws.records.history("quote",
                                                                                record_id)
            if h["action"] == "approval"]


def test_one_step_from_submission_to_approval(office: dict[str, Any]) -> None:
    ws, sam, mia = office["ws"], office["sam"], office["mia"]
    publish(ws, process([{"name": "manager", "approvers": [{"role": "manager"}]}],
                        transition="agree",
                        on={"approved": [{"type": "set_fields", "values": {"note": "ok"}}]}))
    record = quote(office)
    request = ws.approvals.submit("quote", record["id"], user=sam, comment="please")
    assert (request["status"], request["step"]) == ("pending", "manager")
    assert sorted(request["approvers"]) == sorted(office[n].id for n in ("mia", "max", "moe"))
    [waiting] = ws.approvals.inbox(mia)
    assert waiting["id"] == request["id"] and waiting["summary"]["title"] == "Q"
    assert ws.approvals.inbox(sam) == []
    assert (ws.approvals.pending_count(mia), ws.approvals.pending_count(sam)) == (1, 0)
    done = ws.approvals.approve(request["id"], user=mia, comment="fine")
    assert done["status"] == "approved" and ws.approvals.inbox(office["max"]) == []
    saved = ws.records.get("quote", record["id"])
    assert (saved["state"], saved["note"]) == ("agreed", "ok")
    assert decisions(ws, record["id"]) == [("submitted", None), ("step_approved", "manager"),
                                           ("approved", None)]
    entry = next(h for h in ws.records.history("quote", record["id"])
                 if h.get("decision") == "step_approved")
    assert entry["actor"] == mia.id and entry["changes"]["comment"] == "fine"


def test_entry_condition_and_one_pending_request_at_a_time(office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    publish(ws, process([{"name": "manager", "approvers": [{"role": "manager"}]}]))
    small = quote(office, discount=5)
    with pytest.raises(ValidationError, match="discount > 20"):
        ws.approvals.submit("quote", small["id"], user=sam)
    big = quote(office)
    ws.approvals.submit("quote", big["id"], user=sam)
    with pytest.raises(Conflict, match="pending already"):
        ws.approvals.submit("quote", big["id"], user=sam)


def test_sequential_steps_with_a_skipped_middle_step(office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    publish(ws, process([
        {"name": "first", "approvers": [{"user": "mia"}]},
        {"name": "big_only", "condition": "amount > 100000", "approvers": [{"user": "max"}]},
        {"name": "boss", "approvers": [{"manager": True}]}]))
    record = quote(office, amount=10)
    request = ws.approvals.submit("quote", record["id"], user=sam)
    ws.approvals.approve(request["id"], user=office["mia"])
    now = ws.approvals.get(request["id"])
    assert now["step"] == "boss" and now["approvers"] == [office["bea"].id]  # sam's manager
    with pytest.raises(PermissionDenied):
        ws.approvals.approve(request["id"], user=office["max"])
    assert ws.approvals.approve(request["id"], user=office["bea"])["status"] == "approved"
    assert decisions(ws, record["id"]) == [
        ("submitted", None), ("step_approved", "first"), ("skipped", "big_only"),
        ("step_approved", "boss"), ("approved", None)]


@pytest.mark.parametrize(("mode", "needed"), [("all", 3), ({"at_least": 2}, 2)])
def test_all_of_three_and_two_of_three(office: dict[str, Any], mode: Any, needed: int) -> None:
    ws, sam = office["ws"], office["sam"]
    publish(ws, process([{"name": "board", "approvers": [{"role": "manager"}], "mode": mode}]))
    request = ws.approvals.submit("quote", quote(office)["id"], user=sam)
    for i, name in enumerate(("mia", "max", "moe")[:needed]):
        status = ws.approvals.approve(request["id"], user=office[name])["status"]
        assert status == ("approved" if i == needed - 1 else "pending")
    with pytest.raises(Conflict):
        ws.approvals.approve(request["id"], user=office["moe"])


def test_rejection_sends_it_back_and_it_can_be_submitted_again(office: dict[str, Any]) -> None:
    ws, sam, mia = office["ws"], office["sam"], office["mia"]
    publish(ws, process([{"name": "manager", "approvers": [{"role": "manager"}]}]))
    record = quote(office)
    first = ws.approvals.submit("quote", record["id"], user=sam)
    rejected = ws.approvals.reject(first["id"], user=mia, comment="too much")
    assert rejected["status"] == "rejected"
    assert ws.records.update("quote", record["id"], {"discount": 25})["discount"] == 25
    second = ws.approvals.submit("quote", record["id"], user=sam)
    assert second["id"] != first["id"] and second["status"] == "pending"
    assert [r["status"] for r in ws.approvals.for_record("quote", record["id"])] == [
        "rejected", "pending"]


def test_recall_by_the_submitter_only(office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    publish(ws, process([{"name": "manager", "approvers": [{"role": "manager"}]}],
                        on={"recalled": [{"type": "set_fields", "values": {"note": "back"}}]}))
    record = quote(office)
    request = ws.approvals.submit("quote", record["id"], user=sam)
    with pytest.raises(PermissionDenied, match="submitter"):
        ws.approvals.recall(request["id"], user=office["mia"])
    assert ws.approvals.recall(request["id"], user=sam)["status"] == "recalled"
    assert ws.records.get("quote", record["id"])["note"] == "back"
    with pytest.raises(Conflict):
        ws.approvals.approve(request["id"], user=office["mia"])


def test_a_pending_record_is_locked_but_for_its_editable_fields(office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    publish(ws, process([{"name": "manager", "approvers": [{"role": "manager"}],
                          "actions": [{"type": "set_fields", "values": {"amount": 1}}]}],
                        editable=["note"],
                        on={"submit": [{"type": "set_fields", "values": {"amount": 7}}]}))
    record = quote(office)
    ws.approvals.submit("quote", record["id"], user=sam)
    with pytest.raises(Locked, match="waits on approval 'discount'"):
        ws.records.update("quote", record["id"], {"discount": 90})
    with pytest.raises(Locked):
        ws.records.transition("quote", record["id"], "agree")
    with pytest.raises(Locked):
        ws.records.delete("quote", record["id"])
    assert ws.records.update("quote", record["id"], {"note": "fyi"})["note"] == "fyi"
    assert ws.records.get("quote", record["id"])["discount"] == 30
    assert ws.records.get("quote", record["id"])["amount"] == 7  # its own actions may write
    [request] = ws.approvals.for_record("quote", record["id"])
    ws.approvals.approve(request["id"], user=office["moe"])
    assert ws.records.get("quote", record["id"])["amount"] == 1


def test_no_one_approves_their_own_submission_unless_allowed(office: dict[str, Any]) -> None:
    ws, mia = office["ws"], office["mia"]
    publish(ws, process([{"name": "peer", "approvers": [{"role": "manager"}],
                          "mode": "all"}]))
    request = ws.approvals.submit("quote", quote(office)["id"], user=mia)
    assert mia.id not in request["approvers"]  # she is not asked
    with pytest.raises(PermissionDenied):
        ws.approvals.approve(request["id"], user=mia)
    ws.metadata.replace("approval", "discount", process(
        [{"name": "peer", "approvers": [{"role": "manager"}], "allow_self": True}]))
    ws.metadata.publish()
    own = ws.approvals.submit("quote", quote(office)["id"], user=mia)
    assert ws.approvals.approve(own["id"], user=mia)["status"] == "approved"


def test_delegation_in_and_out_of_its_period(office: dict[str, Any]) -> None:
    ws, sam, mia, ada = office["ws"], office["sam"], office["mia"], office["ada"]
    publish(ws, process([{"name": "mia", "approvers": [{"user": "mia"}]}]))
    now = utcnow()
    ws.approvals.delegate(mia, "bea", now - dt.timedelta(days=1), now + dt.timedelta(days=1))
    ws.approvals.delegate(mia, "ada", now + dt.timedelta(days=5), now + dt.timedelta(days=9))
    request = ws.approvals.submit("quote", quote(office)["id"], user=sam)
    assert [r["id"] for r in ws.approvals.inbox(office["bea"])] == [request["id"]]
    assert ws.approvals.inbox(ada) == []
    assert (ws.approvals.pending_count(office["bea"]), ws.approvals.pending_count(ada)) == (1, 0)
    with pytest.raises(PermissionDenied):
        ws.approvals.approve(request["id"], user=ada)  # not yet her period
    done = ws.approvals.approve(request["id"], user=office["bea"])
    assert done["status"] == "approved" and ws.approvals.pending_count(office["bea"]) == 0
    assert done["decisions"][0]["on_behalf_of"] == mia.id


def test_a_step_escalates_after_its_timeout(office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    publish(ws, process([{"name": "mia", "approvers": [{"user": "mia"}],
                          "timeout": {"hours": 24}, "escalate_to": {"user": "ada"}}]))
    request = ws.approvals.submit("quote", quote(office)["id"], user=sam)
    assert ws.approvals.escalate(utcnow() + dt.timedelta(hours=23)) == 0
    assert ws.approvals.escalate(utcnow() + dt.timedelta(hours=25)) == 1
    assert ws.approvals.escalate(utcnow() + dt.timedelta(hours=26)) == 0  # once
    assert [r["id"] for r in ws.approvals.inbox(office["ada"])] == [request["id"]]
    assert ws.accounts.notifications(office["ada"])["unread"] == 1
    assert ws.approvals.approve(request["id"], user=office["ada"])["status"] == "approved"


def test_concurrent_approvals_count_once_each_and_finish_the_step_once(
        office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    publish(ws, process([{"name": "pair", "approvers": [{"user": "mia"}, {"user": "max"}],
                          "mode": "all"},
                         {"name": "boss", "approvers": [{"user": "ada"}]}]))
    request = ws.approvals.submit("quote", quote(office)["id"], user=sam)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def approve(who: User) -> None:
        start.wait()
        try:
            ws.approvals.approve(request["id"], user=who)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(office[n],)) for n in ("mia", "max")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    now = ws.approvals.get(request["id"])
    assert now["step"] == "boss" and now["approvers"] == [office["ada"].id]
    assert len(now["decisions"]) == 2
    assert [d for d, step in decisions(ws, now["record_id"])].count("step_approved") == 2


def test_the_approval_decided_trigger_fires(office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    publish(ws, process([{"name": "manager", "approvers": [{"role": "manager"}]}]),
            {"kind": "automation", "name": "said_no", "label": {"en": "Said no"},
             "entity": "quote", "mode": "sync",
             "trigger": {"on": "approval", "approval": "discount", "decision": "rejected"},
             "actions": [{"type": "set_fields", "values": {"note": "rejected"}}]})
    record = quote(office)
    request = ws.approvals.submit("quote", record["id"], user=sam)
    ws.approvals.reject(request["id"], user=office["moe"])
    assert ws.records.get("quote", record["id"])["note"] == "rejected"


@pytest.mark.parametrize(("change", "pointer"), [
    ({"entry": "title > 3"}, "/approval/discount/entry"),
    ({"steps": [{"name": "x", "approvers": [{"role": "ghost"}]}]},
     "/approval/discount/steps/0/approvers/0/role"),
    ({"steps": [{"name": "x", "approvers": [{"field": "title"}]}]},
     "/approval/discount/steps/0/approvers/0/field"),
    ({"transition": "teleport"}, "/approval/discount/transition"),
    ({"on": {"approved": [{"type": "nope"}]}}, "/approval/discount/on/approved/0/type"),
])
def test_a_bad_process_is_refused_with_a_pointer(office: dict[str, Any], change: dict[str, Any],
                                                 pointer: str) -> None:
    ws = office["ws"]
    ws.metadata.create({**process([{"name": "m", "approvers": [{"role": "manager"}]}]),
                        **change})
    with pytest.raises(DefinitionError) as caught:
        ws.metadata.publish()
    assert pointer in caught.value.errors, caught.value.errors


def test_the_timer_tick_escalates_too(office: dict[str, Any]) -> None:
    """Escalation rides on the automations' tick, which every worker runs."""
    ws, sam = office["ws"], office["sam"]
    publish(ws, process([{"name": "mia", "approvers": [{"user": "mia"}],
                          "timeout": {"minutes": 30}, "escalate_to": {"role": "manager"}}]))
    request = ws.approvals.submit("quote", quote(office)["id"], user=sam)
    ws.automations.tick(utcnow() + dt.timedelta(hours=1))
    assert set(ws.approvals.get(request["id"])["approvers"]) == {
        office[n].id for n in ("mia", "max", "moe")}


def test_every_decision_fires_the_trigger(office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    publish(ws, {"kind": "automation", "name": "count_votes", "label": {"en": "Count"},
             "entity": "quote", "mode": "sync",
             "trigger": {"on": "approval", "approval": "discount"},
             "actions": [{"type": "set_fields",
                          "values": {"amount": {"formula": "if(amount == null, 1, amount + 1)"}}}]},
            process([{"name": "pair", "approvers": [{"user": "mia"}, {"user": "max"}],
                      "mode": "all"}], rules=["count_votes"]))
    record = quote(office)
    request = ws.approvals.submit("quote", record["id"], user=sam)
    ws.approvals.approve(request["id"], user=office["mia"])
    ws.approvals.approve(request["id"], user=office["max"])
    assert ws.records.get("quote", record["id"])["amount"] == 3  # two votes, one approval


# --- found in review, pinned ----------------------------------------------------------------


def test_regression_concurrent_submits_make_one_request(office: dict[str, Any]) -> None:
    """Submit checked for a pending request, then inserted, unlocked: on PostgreSQL four
    threads made several pending requests for one record."""
    ws, sam = office["ws"], office["sam"]
    publish(ws, process([{"name": "manager", "approvers": [{"role": "manager"}]}]))
    record = quote(office)
    start, outcomes = threading.Barrier(4), []

    def submit() -> None:
        start.wait()
        try:
            ws.approvals.submit("quote", record["id"], user=sam)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"]
    assert [r["status"] for r in ws.approvals.for_record("quote", record["id"])] == ["pending"]


def test_regression_the_lock_holds_against_owner_changes_and_cascades(
        office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    ws.metadata.create({"kind": "entity", "name": "deal", "label": {"en": "Deal"},
                        "properties": {"name": {"type": "string"}}})
    document = ws.metadata.get("entity", "quote")
    document["properties"]["deal"] = {"x-field": "reference", "x-ref": "deal",
                                      "x-on-delete": "cascade"}
    ws.metadata.replace("entity", "quote", document)
    publish(ws, process([{"name": "manager", "approvers": [{"role": "manager"}]}]))
    deal = ws.records.create("deal", {"name": "D"})
    record = quote(office, deal=deal["id"])
    ws.approvals.submit("quote", record["id"], user=sam)
    with pytest.raises(Locked):
        ws.records.update("quote", record["id"], {"owner_id": office["mia"].id})
    with pytest.raises(Locked):
        ws.records.delete("deal", deal["id"])
    assert ws.records.get("quote", record["id"])["deal"] == deal["id"]


def test_regression_submitting_takes_the_right_to_change_the_record(
        office: dict[str, Any]) -> None:
    ws = office["ws"]
    ws.metadata.create({"kind": "role", "name": "viewer", "label": {"en": "Viewer"},
                        "permissions": {"quote": {"read": True}}})
    publish(ws, process([{"name": "manager", "approvers": [{"role": "manager"}]}]))
    viewer = ws.accounts.create_user("vic", roles=["viewer"])
    with pytest.raises(PermissionDenied):
        ws.approvals.submit("quote", quote(office)["id"], user=viewer)


def test_regression_an_escalation_does_not_raise_what_all_needs(office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    publish(ws, process([{"name": "pair", "approvers": [{"user": "mia"}, {"user": "max"}],
                          "mode": "all", "timeout": {"hours": 1},
                          "escalate_to": {"user": "ada"}}]))
    request = ws.approvals.submit("quote", quote(office)["id"], user=sam)
    ws.approvals.approve(request["id"], user=office["mia"])
    ws.approvals.escalate(utcnow() + dt.timedelta(hours=2))
    assert ws.approvals.approve(request["id"], user=office["ada"])["status"] == "approved"


def test_regression_fewer_steps_after_a_republish_is_a_conflict(office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    two = process([{"name": "one", "approvers": [{"user": "mia"}]},
                   {"name": "two", "approvers": [{"user": "max"}], "timeout": {"hours": 1},
                    "escalate_to": {"user": "ada"}}])
    publish(ws, two)
    request = ws.approvals.submit("quote", quote(office)["id"], user=sam)
    ws.approvals.approve(request["id"], user=office["mia"])
    ws.metadata.replace("approval", "discount", {**two, "steps": two["steps"][:1]})
    ws.metadata.publish()
    with pytest.raises(Conflict, match="recall it"):
        ws.approvals.approve(request["id"], user=office["max"])
    assert ws.approvals.escalate(utcnow() + dt.timedelta(hours=2)) == 0  # no crash
    assert ws.approvals.recall(request["id"], user=sam)["status"] == "recalled"


def test_regression_a_final_transition_that_cannot_happen_is_refused_at_submit(
        office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    publish(ws, process([{"name": "manager", "approvers": [{"role": "manager"}]}],
                        transition="agree"))
    record = quote(office)
    ws.records.transition("quote", record["id"], "agree")
    with pytest.raises(ValidationError, match="does not leave"):
        ws.approvals.submit("quote", record["id"], user=sam)


def test_regression_a_request_and_an_inbox_show_only_what_the_reader_may_see(
        office: dict[str, Any]) -> None:
    ws, sam = office["ws"], office["sam"]
    ws.metadata.replace("role", "manager", {**MANAGERS, "permissions": {
        "quote": {"read": True, "update": True, "fields": {"discount": "hidden"}}}})
    publish(ws, process([{"name": "manager", "approvers": [{"user": "mia"}]}]))
    request = ws.approvals.submit("quote", quote(office, note="secret")["id"], user=sam)
    [item] = ws.approvals.inbox(office["mia"])
    assert "discount" not in item["summary"] and item["summary"]["title"] == "Q"
    outsider = ws.accounts.create_user("eve", roles=["rep"])
    with pytest.raises(NotFound):
        ws.approvals.get(request["id"], user=outsider)
    assert ws.approvals.get(request["id"], user=office["mia"])["id"] == request["id"]


def test_regression_only_the_processs_own_actions_write_through_the_lock(
        office: dict[str, Any]) -> None:
    """A rule that an approval action's write triggered also passed the lock."""
    ws, sam = office["ws"], office["sam"]
    publish(ws, {"kind": "automation", "name": "echo", "label": {"en": "Echo"},
                 "entity": "quote", "mode": "sync",
                 "trigger": {"on": "updated", "fields": ["amount"]},
                 "actions": [{"type": "set_fields", "values": {"note": "echoed"}}]},
            process([{"name": "manager", "approvers": [{"role": "manager"}]}],
                    on={"submit": [{"type": "set_fields", "values": {"amount": 7}}]}))
    record = quote(office)
    with pytest.raises(ActionFailed, match="rule 'echo'"):
        ws.approvals.submit("quote", record["id"], user=sam)
    assert ws.approvals.for_record("quote", record["id"]) == []  # nothing written
