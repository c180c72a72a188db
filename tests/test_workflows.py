"""Workflows: a state machine on an entity, through the engine's API.

The state changes only through a transition; each transition checks the record's state,
the user's roles, the fields it requires and its guard, and lands in the history.
Publishing a workflow is a plan like any other: records already there get the initial
state, a state still in use cannot be removed, and stopping a workflow archives states.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import sqlalchemy as sa

from blockscrm.engine import (
    Conflict,
    DefinitionError,
    NotFound,
    PermissionDenied,
    User,
    ValidationError,
    Workspace,
)
from blockscrm.engine.store import archive_table

PIPELINE = {
    "kind": "workflow", "name": "pipeline", "label": {"en": "Pipeline", "zh": "销售流程"},
    "entity": "deal", "initial": "new",
    "states": [{"name": "new", "label": {"en": "New"}, "category": "open", "order": 1},
               {"name": "qualified", "label": {"en": "Qualified"}, "order": 2},
               {"name": "won", "label": {"en": "Won"}, "category": "won", "color": "green"},
               {"name": "lost", "label": {"en": "Lost"}, "category": "lost"}],
    "transitions": [
        {"name": "qualify", "from": ["new"], "to": "qualified", "label": {"en": "Qualify"}},
        {"name": "win", "from": ["qualified"], "to": "won", "label": {"en": "Win"},
         "roles": ["closer"], "guard": "amount > 0", "require": ["close_date"],
         "guard_message": {"en": "a won deal has an amount"}},
        {"name": "lose", "from": "*", "to": "lost"},
    ],
}
CLOSER = {"kind": "role", "name": "closer", "label": {"en": "Closer"},
          "permissions": {"deal": {"read": True, "update": True}}}
REP = {"kind": "role", "name": "rep", "label": {"en": "Rep"},
       "permissions": {"deal": {"read": True, "update": True}}}


@pytest.fixture
def pipeline(sales: Workspace) -> Workspace:
    sales.metadata.create(CLOSER)
    sales.metadata.create(REP)
    sales.metadata.create(PIPELINE)
    sales.metadata.publish()
    return sales


def user(name: str, *roles: str) -> User:
    return User(f"id-{name}", name, roles=frozenset(roles))


def test_records_start_in_the_initial_state_and_move_only_by_transition(
        pipeline: Workspace) -> None:
    ws = pipeline
    deal = ws.records.create("deal", {"title": "Acme", "amount": 10})
    assert deal["state"] == "new"
    with pytest.raises(ValidationError) as caught:
        ws.records.update("deal", deal["id"], {"state": "won"})
    assert "state" in caught.value.errors
    moved = ws.records.transition("deal", deal["id"], "qualify", actor="ann")
    assert moved["state"] == "qualified" and moved["version"] == 2
    history = ws.records.history("deal", deal["id"])
    assert history[-1]["action"] == "transition" and history[-1]["transition"] == "qualify"
    assert history[-1]["changes"]["state"] == {"before": "new", "after": "qualified"}
    assert [r["title"] for r in ws.query("deal").filter('state == "qualified"').page().items] \
        == ["Acme"]


def test_a_transition_checks_state_roles_fields_and_guard(pipeline: Workspace) -> None:
    ws = pipeline
    deal = ws.records.create("deal", {"title": "Acme"})
    with pytest.raises(Conflict, match="does not leave the state 'new'"):
        ws.records.transition("deal", deal["id"], "win")
    ws.records.transition("deal", deal["id"], "qualify")
    with pytest.raises(PermissionDenied, match="closer"):
        ws.records.transition("deal", deal["id"], "win", user=user("rita", "rep"))
    closer = user("carl", "closer")
    with pytest.raises(ValidationError) as caught:
        ws.records.transition("deal", deal["id"], "win", user=closer)
    assert caught.value.errors == {"close_date": ["is required to Win"]}
    with pytest.raises(ValidationError) as caught:
        ws.records.transition("deal", deal["id"], "win", values={"close_date": "2025-05-01"},
                              user=closer)
    assert caught.value.errors == {"": ["a won deal has an amount"]}
    assert ws.records.get("deal", deal["id"])["close_date"] is None  # nothing written
    won = ws.records.transition("deal", deal["id"], "win", user=closer, version=2,
                                values={"close_date": "2025-05-01", "amount": 500})
    assert (won["state"], won["close_date"], won["amount"]) == ("won", "2025-05-01", 500)
    with pytest.raises(Conflict, match="version"):
        ws.records.transition("deal", deal["id"], "lose", version=2)
    assert ws.records.transition("deal", deal["id"], "lose")["state"] == "lost"  # from "*"
    with pytest.raises(NotFound):
        ws.records.transition("deal", deal["id"], "teleport")
    with pytest.raises(NotFound, match="follows no workflow"):
        ws.records.transition("account", ws.records.create("account", {"name": "A"})["id"],
                              "win")


def test_listing_the_transitions_a_user_may_take(pipeline: Workspace) -> None:
    ws = pipeline
    deal = ws.records.create("deal", {"title": "Acme"})
    ws.records.transition("deal", deal["id"], "qualify")
    rep = ws.records.transitions("deal", deal["id"], user=user("rita", "rep"))
    assert [t["name"] for t in rep] == ["lose"]
    closer = {t["name"]: t for t in ws.records.transitions("deal", deal["id"],
                                                          user=user("carl", "closer"))}
    assert set(closer) == {"win", "lose"}
    assert closer["win"]["missing"] == ["close_date"] and not closer["win"]["guard_holds"]
    assert closer["win"]["label"] == {"en": "Win"} and closer["win"]["to"] == "won"


def test_publishing_a_workflow_onto_existing_records(sales: Workspace) -> None:
    existing = [sales.records.create("deal", {"title": f"d{i}"})["id"] for i in range(3)]
    sales.metadata.create(CLOSER)
    sales.metadata.create(PIPELINE)
    plan = sales.metadata.plan()
    start = next(s for s in plan.steps if s.action == "start_workflow")
    assert start.rows == 3 and "'new'" in start.summary
    assert not plan.destructive
    sales.metadata.publish()
    assert {sales.records.get("deal", i)["state"] for i in existing} == {"new"}
    assert "state" not in sales.records.create("account", {"name": "No workflow"})


def test_a_state_in_use_cannot_be_removed_and_stopping_archives(pipeline: Workspace) -> None:
    ws = pipeline
    deal = ws.records.create("deal", {"title": "Acme"})
    ws.records.transition("deal", deal["id"], "lose")
    smaller = copy.deepcopy(PIPELINE)
    smaller["states"] = [s for s in smaller["states"] if s["name"] != "lost"]
    smaller["transitions"] = [t for t in smaller["transitions"] if t["to"] != "lost"]
    ws.metadata.replace("workflow", "pipeline", smaller)
    with pytest.raises(Conflict) as caught:
        ws.metadata.publish()
    step = next(s for s in caught.value.plan.steps if s.action == "remove_states")
    assert step.bad_rows == 1 and "move them" in (step.blocked or "")
    ws.metadata.discard("workflow", "pipeline")
    ws.metadata.delete("workflow", "pipeline")
    plan = ws.metadata.plan()
    assert [s.action for s in plan.steps if s.kind == "workflow"] == [
        "stop_workflow", "delete_definition"]
    assert plan.destructive
    ws.metadata.publish(confirm=True)
    record = ws.records.get("deal", deal["id"])
    assert "state" not in record
    with ws.reading() as conn:
        archived = conn.scalars(sa.select(archive_table.c.value)
                                .where(archive_table.c.field == "state")).all()
    assert archived == ["lost"]


@pytest.mark.parametrize(("change", "pointer"), [
    ({"initial": "nowhere"}, "/workflow/pipeline/initial"),
    ({"entity": "ghost"}, "/workflow/pipeline/entity"),
    ({"transitions": [{"name": "x", "from": ["nope"], "to": "won"}]},
     "/workflow/pipeline/transitions/0/from/0"),
    ({"transitions": [{"name": "x", "from": "*", "to": "won", "require": ["nope"]}]},
     "/workflow/pipeline/transitions/0/require/0"),
    ({"transitions": [{"name": "x", "from": "*", "to": "won", "guard": "amount > 'a'"}]},
     "/workflow/pipeline/transitions/0/guard"),
    ({"transitions": [{"name": "x", "from": "*", "to": "won", "roles": ["ghost"]}]},
     "/workflow/pipeline/transitions/0/roles/0"),
])
def test_a_bad_workflow_is_refused_with_a_pointer(sales: Workspace, change: dict[str, Any],
                                                  pointer: str) -> None:
    sales.metadata.create({**PIPELINE, **change})
    with pytest.raises(DefinitionError) as caught:
        sales.metadata.publish()
    assert pointer in caught.value.errors, caught.value.errors


def test_one_workflow_per_entity(pipeline: Workspace) -> None:
    pipeline.metadata.create({**PIPELINE, "name": "second"})
    with pytest.raises(DefinitionError) as caught:
        pipeline.metadata.publish()
    assert "/workflow/second/entity" in caught.value.errors
    with pytest.raises(DefinitionError):
        pipeline.metadata.create({**PIPELINE, "name": "odd", "states": []})


def test_a_transition_runs_its_actions_with_the_move(sales: Workspace) -> None:
    stamped = copy.deepcopy(PIPELINE)
    stamped["transitions"][0]["actions"] = [
        {"type": "set_fields", "values": {"probability": 50}},
        {"type": "notify", "user": "owner", "title": "{{ record.title }} is qualified"}]
    stamped["transitions"][2]["actions"] = [{"type": "set_fields", "values": {"nope": 1}}]
    sales.metadata.create(CLOSER)
    sales.metadata.create(stamped)
    with pytest.raises(DefinitionError) as caught:
        sales.metadata.publish()
    assert "/workflow/pipeline/transitions/2/actions/0/values/nope" in caught.value.errors
    del stamped["transitions"][2]["actions"]
    sales.metadata.replace("workflow", "pipeline", stamped)
    sales.metadata.publish()
    deal = sales.records.create("deal", {"title": "Acme"})
    moved = sales.records.transition("deal", deal["id"], "qualify")
    assert (moved["state"], moved["probability"]) == ("qualified", 50)
    [run] = sales.automations.runs("deal", deal["id"])
    assert run["automation"] == "pipeline.qualify" and run["status"] == "done"
