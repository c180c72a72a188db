"""Automations over HTTP: the runs in a record's history, the run log, re-running a
failed run, dry runs; a sync rule's failure is the save's 422."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from blockscrm.engine import Workspace

from .conftest import assert_problem

TICKET = {"kind": "entity", "name": "ticket", "label": {"en": "Ticket"},
          "properties": {"subject": {"type": "string"}, "amount": {"type": "number"},
                         "score": {"type": "integer"}}}
FLAG = {"kind": "automation", "name": "flag", "label": {"en": "Flag"}, "entity": "ticket",
        "trigger": {"on": "created"}, "condition": "amount > 10", "mode": "sync",
        "actions": [{"type": "set_fields", "values": {"score": {"formula": "amount * 2"}}}]}
HOOK = {"kind": "automation", "name": "hook", "label": {"en": "Hook"}, "entity": "ticket",
        "trigger": {"on": "updated", "fields": ["subject"]}, "mode": "async",
        "actions": [{"type": "webhook", "url": "http://127.0.0.1:9/down", "timeout": 1}]}


@pytest.fixture
def rules(client: FlaskClient, workspace: Workspace) -> FlaskClient:
    workspace.plugins.enable("webhooks")  # HOOK's action is the plugin's
    for kind, document in (("entity", TICKET), ("automation", FLAG), ("automation", HOOK)):
        assert client.post(f"/api/v1/meta/{kind}", json=document).status_code == 201
    assert client.post("/api/v1/meta/publish", json={}).status_code == 200
    return client


def test_runs_show_in_the_history_and_the_log(rules: FlaskClient) -> None:
    ticket = rules.post("/api/v1/records/ticket", json={"subject": "a", "amount": 21})
    assert ticket.status_code == 201 and ticket.get_json()["score"] == 42
    record_id = ticket.get_json()["id"]
    history = rules.get(f"/api/v1/records/ticket/{record_id}/history").get_json()
    assert [(r["automation"], r["status"], r["why"]) for r in history["runs"]] == [
        ("flag", "done", "on created, when amount > 10")]
    failing = rules.patch(f"/api/v1/records/ticket/{record_id}", json={"subject": "b"})
    assert failing.status_code == 200  # the save stands; its async rule failed apart
    [run] = rules.get("/api/v1/runs?entity=ticket&status=queued").get_json()["items"]
    assert run["automation"] == "hook" and "webhook" in run["error"]
    assert_problem(rules.post(f"/api/v1/runs/{run['id']}/rerun"), 404)  # not failed yet
    assert_problem(rules.get("/api/v1/runs?entity=ticket&status=odd"), 400)
    assert_problem(rules.get("/api/v1/runs"), 400)


def test_a_dry_run_over_http(rules: FlaskClient) -> None:
    for amount in (5, 50, 500):
        rules.post("/api/v1/records/ticket", json={"subject": "t", "amount": amount})
    preview = rules.get("/api/v1/automations/flag/dry-run").get_json()
    assert preview["matches"] == 2
    assert_problem(rules.get("/api/v1/automations/nope/dry-run"), 404)


def test_a_dry_run_of_a_rule_not_published(rules: FlaskClient) -> None:
    """The designer tries its draft on the records before publishing it."""
    for amount in (5, 50, 500):
        rules.post("/api/v1/records/ticket", json={"subject": "t", "amount": amount})
    draft = {**FLAG, "name": "big", "condition": "amount > 100"}
    preview = rules.post("/api/v1/automations/dry-run", json=draft).get_json()
    assert preview["automation"] == "big"
    assert preview["matches"] == 1
    assert preview["items"][0]["actions"][0]["values"] == {"score": 1000}
    bad = assert_problem(rules.post("/api/v1/automations/dry-run",
                                    json={**draft, "condition": "amount > \"x\""}), 422)
    assert list(bad["errors"]) == ["/condition"]
    unknown = assert_problem(rules.post("/api/v1/automations/dry-run",
                                        json={**draft, "entity": "nothing"}), 422)
    assert "publish it first" in unknown["errors"]["/entity"][0]
    assert rules.get("/api/v1/meta/plan").get_json()["definitions"] == []  # nothing saved


def test_a_failing_sync_rule_is_the_saves_422(rules: FlaskClient) -> None:
    broken = rules.post("/api/v1/records/ticket", json={"subject": "x", "amount": 10.25})
    problem = assert_problem(broken, 422)  # score would be 20.5, not an integer
    assert "rule 'flag'" in problem["detail"]
    assert rules.get("/api/v1/records/ticket?count=true").get_json()["count"] == 0


def test_runs_are_for_admins(app: Flask, rules: FlaskClient) -> None:
    ws = app.extensions["blocks"]
    token = ws.accounts.issue_token(ws.accounts.create_user("plain"))
    assert_problem(app.test_client().get("/api/v1/runs?entity=ticket",
                                         headers={"Authorization": f"Bearer {token}"}), 403)


def test_notifications_with_a_read_flag(app: Flask, client: FlaskClient) -> None:
    ws = app.extensions["blocks"]
    for kind, document in (("entity", TICKET), ("automation", {
            "kind": "automation", "name": "tell", "label": {"en": "Tell"},
            "entity": "ticket", "trigger": {"on": "created"}, "mode": "sync",
            "actions": [{"type": "notify", "user": "owner",
                         "title": "New: {{ record.subject }}"}]})):
        assert client.post(f"/api/v1/meta/{kind}", json=document).status_code == 201
    assert client.post("/api/v1/meta/publish", json={}).status_code == 200
    for subject in ("a", "b"):
        client.post("/api/v1/records/ticket", json={"subject": subject})
    listed = client.get("/api/v1/notifications").get_json()
    assert [n["title"] for n in listed["items"]] == ["New: b", "New: a"]
    assert listed["unread"] == 2
    first = listed["items"][1]["id"]
    assert client.post("/api/v1/notifications/read", json={"ids": [first]}).get_json() == {
        "marked": 1}
    assert client.get("/api/v1/notifications?unread=true").get_json()["unread"] == 1
    # regression (found by schemathesis): an id past 64 bits answered 500 on SQLite
    assert client.post("/api/v1/notifications/read",
                       json={"ids": [-1, 2**64, 10**30]}).get_json() == {"marked": 0}
    assert client.post("/api/v1/notifications/read").get_json() == {"marked": 1}
    assert_problem(client.post("/api/v1/notifications/read", json={"ids": "x"}), 422)
    assert ws.accounts.notifications(ws.accounts.user("root"))["unread"] == 0


def test_regression_runs_in_history_hide_what_actions_wrote(app: Flask,
                                                           rules: FlaskClient) -> None:
    """A rule's step results carry the values it set, which a reader may not see."""
    ws = app.extensions["blocks"]
    ws.metadata.create({"kind": "role", "name": "reader", "label": {"en": "R"},
                        "permissions": {"ticket": {"read": True,
                                                   "fields": {"score": "hidden"}}}})
    ws.metadata.publish()
    token = ws.accounts.issue_token(ws.accounts.create_user("rita", roles=["reader"]))
    record = rules.post("/api/v1/records/ticket", json={"subject": "a", "amount": 21})
    path = f"/api/v1/records/ticket/{record.get_json()['id']}/history"
    seen = app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})
    assert seen.get_json()["runs"][0]["steps"] == [{"action": "set_fields"}]
    assert "result" in rules.get(path).get_json()["runs"][0]["steps"][0]  # an admin sees
