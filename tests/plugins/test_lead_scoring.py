"""The lead-scoring plugin: a lead's score from rule-language conditions and from its
activities, stored with each write of the lead or of an activity, its history kept with
the rules that gave the points, shown on the record's screen and served by the API;
settings that do not fit refused when enabled, with the setting named; nothing written
half."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from blockscrm.engine import DefinitionError, PluginFailed, Workspace
from blockscrm.platform.app import create_app
from blockscrm.plugins.lead_scoring.history import changes

LEAD = {"kind": "entity", "name": "lead", "label": {"en": "Lead"},
        "properties": {
            "name": {"type": "string"},
            "source": {"type": "string", "enum": ["referral", "web", "ad"]},
            "email": {"type": "string", "format": "email"},
            "industry": {"type": "string"},
            "founded": {"type": "string"},
            "score": {"type": "integer"}}}
ACTIVITY = {"kind": "entity", "name": "activity", "label": {"en": "Activity"},
            "properties": {
                "lead": {"x-field": "reference", "x-ref": "lead", "x-on-delete": "cascade"},
                "kind": {"type": "string", "enum": ["call", "meeting", "email"]},
                "subject": {"type": "string"}}}
SETTINGS: dict[str, Any] = {
    "entity": "lead", "score_field": "score",
    "rules": [{"when": 'source == "referral"', "points": 20, "label": "Referral <b>"},
              {"when": "email != null", "points": 5},
              {"when": 'industry in ["banking", "insurance"]', "points": 10,
               "label": "Target industry"}],
    "activities": {"entity": "activity", "field": "lead", "points": 1,
                   "types": [{"when": 'kind == "meeting"', "points": 10,
                              "label": "Meeting"}]}}


@pytest.fixture
def crm(workspace: Workspace) -> Workspace:
    """A workspace (SQLite, then PostgreSQL) with leads and their activities."""
    workspace.metadata.create(LEAD)
    workspace.metadata.create(ACTIVITY)
    workspace.metadata.publish()
    return workspace


@pytest.fixture
def scored(crm: Workspace) -> Workspace:
    crm.plugins.enable("lead-scoring", SETTINGS)
    return crm


def score(ws: Workspace, lead: dict[str, Any]) -> Any:
    return ws.records.get("lead", lead["id"])["score"]


def reasons(change: dict[str, Any]) -> dict[str, int]:
    return {r["label"]: r["points"] for r in change["reasons"]}


def test_rules_score_a_lead_with_each_write_and_keep_the_history(scored: Workspace) -> None:
    lead = scored.records.create("lead", {"name": "Ada", "source": "referral",
                                          "email": "ada@example.com"})
    assert lead["score"] == 25
    scored.records.update("lead", lead["id"], {"industry": "banking"})
    scored.records.update("lead", lead["id"], {"name": "Ada L."})  # the score stays
    scored.records.update("lead", lead["id"], {"email": None})
    assert score(scored, lead) == 30
    history = changes(scored, "lead", lead["id"])
    assert [(c["previous"], c["score"]) for c in history] == [(35, 30), (25, 35), (None, 25)]
    assert reasons(history[0]) == {"Referral <b>": 20, "Target industry": 10}
    assert reasons(history[2]) == {"Referral <b>": 20, "email != null": 5}
    assert history[2]["reasons"][0]["where"] == "/rules/0"
    assert scored.records.create("lead", {"name": "Bob", "source": "ad"})["score"] == 0
    # An empty email is no email: validation drops it, and so does the score.
    assert scored.records.create("lead", {"name": "Cy", "email": ""})["score"] == 0


def test_activities_rescore_the_lead_they_refer_to(scored: Workspace) -> None:
    ada = scored.records.create("lead", {"name": "Ada", "source": "referral"})
    bob = scored.records.create("lead", {"name": "Bob"})
    call = scored.records.create("activity", {"lead": ada["id"], "kind": "call"})
    meeting = scored.records.create("activity", {"lead": ada["id"], "kind": "meeting"})
    assert score(scored, ada) == 20 + 2 + 10
    latest = changes(scored, "lead", ada["id"])[0]
    assert latest["actor"] == "plugin:lead-scoring"
    assert {r["label"]: (r["points"], r.get("count")) for r in latest["reasons"]} == {
        "Referral <b>": (20, None), "activities": (2, 2), "Meeting": (10, 1)}

    # A write of the lead keeps its activity points.
    scored.records.update("lead", ada["id"], {"email": "ada@example.com"})
    assert score(scored, ada) == 37
    scored.records.update("activity", call["id"], {"subject": "no points in it"})
    assert len(changes(scored, "lead", ada["id"])) == 4  # nothing moved

    scored.records.update("activity", meeting["id"], {"lead": bob["id"]})  # moves over
    assert (score(scored, ada), score(scored, bob)) == (26, 11)
    scored.records.update("activity", call["id"], {"kind": "meeting"})
    assert score(scored, ada) == 36
    scored.records.delete("activity", call["id"])
    assert score(scored, ada) == 25
    scored.records.delete("lead", bob["id"])  # its activity goes with it
    assert scored.query("activity").count().value == 0


def test_the_cap_holds_and_is_a_reason(crm: Workspace) -> None:
    crm.plugins.enable("lead-scoring", {**SETTINGS, "cap": 30})
    lead = crm.records.create("lead", {"source": "referral", "email": "a@example.com"})
    crm.records.create("activity", {"lead": lead["id"], "kind": "meeting"})
    assert score(crm, lead) == 30
    assert reasons(changes(crm, "lead", lead["id"])[0])["capped at 30"] == -6
    # 20 + 11 from the activity: still over the cap without the email.
    crm.records.update("lead", lead["id"], {"email": None})
    assert score(crm, lead) == 30
    crm.records.update("lead", lead["id"], {"source": "web"})
    assert score(crm, lead) == 11
    history = changes(crm, "lead", lead["id"])
    assert [(c["previous"], c["score"]) for c in history] == [(30, 11), (25, 30), (None, 25)]


def test_settings_that_do_not_fit_are_refused_when_enabled(crm: Workspace) -> None:
    bad = {**SETTINGS,
           "rules": [{"when": 'source == "referral"', "points": 20},
                     {"when": "email !=", "points": 5},
                     {"when": "source > 5", "points": 1},
                     {"when": 'created_at > date("2020-01-01")', "points": 1}],
           "activities": {"entity": "activity", "field": "subject",
                          "types": [{"when": "kind == ", "points": 1}]}}
    with pytest.raises(DefinitionError) as refused:  # its schema holds; the entities do not
        crm.plugins.enable("lead-scoring", bad)
    assert set(refused.value.errors) == {"/rules/1/when", "/rules/2/when", "/rules/3/when",
                                         "/activities/field", "/activities/types/0/when"}
    assert "does not parse" in refused.value.errors["/rules/1/when"][0]
    assert "created_at" in refused.value.errors["/rules/3/when"][0]
    assert "lead-scoring" in str(refused.value)
    assert "lead-scoring" not in crm.plugins.enabled()

    crm.plugins.enable("lead-scoring", SETTINGS)
    with pytest.raises(DefinitionError) as changed:
        crm.plugins.enable("lead-scoring", {**SETTINGS, "entity": "prospect"})
    assert set(changed.value.errors) == {"/entity"}
    assert crm.plugins.settings("lead-scoring") == SETTINGS

    with pytest.raises(DefinitionError) as schema:
        crm.plugins.enable("lead-scoring", {"entity": "lead"})
    assert "score_field" in str(schema.value)


def test_entities_changed_after_enabling_stop_the_writes_they_concern(
        scored: Workspace) -> None:
    lead = scored.metadata.get("entity", "lead")
    lead["properties"] = {k: v for k, v in lead["properties"].items() if k != "industry"}
    scored.metadata.replace("entity", "lead", lead)
    scored.metadata.publish(confirm=True)
    with pytest.raises(DefinitionError) as refused:
        scored.records.create("lead", {"name": "Ada"})
    assert set(refused.value.errors) == {"/rules/2/when"}
    assert scored.query("lead").count().value == 0


def test_changed_settings_score_the_next_write_in_full(scored: Workspace) -> None:
    """The activities are counted on every write of the lead, so new points for them
    apply at once, and a capped score loses nothing."""
    lead = scored.records.create("lead", {"name": "Ada", "source": "referral"})
    for kind in ("call", "call", "meeting"):
        scored.records.create("activity", {"lead": lead["id"], "kind": kind})
    assert score(scored, lead) == 20 + 3 + 10
    scored.plugins.enable("lead-scoring", {
        **SETTINGS, "cap": 25,
        "activities": {**SETTINGS["activities"], "points": 5}})
    scored.records.update("lead", lead["id"], {"name": "Ada L."})
    assert score(scored, lead) == 25
    scored.plugins.enable("lead-scoring", {
        **SETTINGS, "activities": {**SETTINGS["activities"], "points": 5}})
    scored.records.update("lead", lead["id"], {"email": "ada@example.com"})
    assert score(scored, lead) == 20 + 5 + 15 + 10
    latest = changes(scored, "lead", lead["id"])[0]
    assert (latest["previous"], latest["score"]) == (25, 50)
    assert {r["label"]: r.get("count") for r in latest["reasons"]} == {
        "Referral <b>": None, "email != null": None, "activities": 3, "Meeting": 1}


def test_a_disabled_plugin_writes_no_score(scored: Workspace) -> None:
    ada = scored.records.create("lead", {"source": "referral"})
    scored.plugins.disable("lead-scoring")
    assert scored.records.create("lead", {"source": "referral"})["score"] is None
    scored.records.update("lead", ada["id"], {"email": "ada@example.com"})
    scored.records.create("activity", {"lead": ada["id"], "kind": "meeting"})
    assert score(scored, ada) == 20
    assert len(changes(scored, "lead", ada["id"])) == 1


def test_a_condition_that_fails_on_a_record_writes_nothing(crm: Workspace) -> None:
    founded = {"when": 'date(founded) > date("2000-01-01")', "points": 3,
               "label": "Young company"}
    early = crm.records.create("lead", {"name": "Early", "founded": "soon"})
    crm.plugins.enable("lead-scoring", {**SETTINGS, "rules": [*SETTINGS["rules"], founded]})
    with pytest.raises(PluginFailed) as failed:
        crm.records.create("lead", {"name": "Ada", "founded": "soon"})
    assert failed.value.plugin == "lead-scoring"
    assert "/rules/3" in str(failed.value) and "Young company" in str(failed.value)
    assert crm.query("lead").count().value == 1

    with pytest.raises(PluginFailed):  # re-scoring the lead fails: the activity too
        crm.records.create("activity", {"lead": early["id"], "kind": "call"})
    assert crm.query("activity").count().value == 0
    assert score(crm, early) is None and changes(crm, "lead", early["id"]) == []

    young = crm.records.create("lead", {"name": "Young", "founded": "2020-05-01"})
    assert young["score"] == 3


# --- screen and API ---------------------------------------------------------------------------


@pytest.fixture
def app(scored: Workspace) -> Iterator[Flask]:
    app = create_app({"DATABASE_URL": scored.url, "SECRET_KEY": "test-secret",
                      "TESTING": True})
    yield app
    app.extensions["blocks"].close()


def logged_in(app: Flask, username: str) -> FlaskClient:
    """A client logged in through the login form."""
    client = app.test_client()
    page = client.get("/login").get_data(True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    answer = client.post("/login", data={"username": username, "password": "correct horse",
                                         "csrf_token": token.group(1)})
    assert answer.status_code == 302
    return client


def test_the_record_view_shows_the_score_history(scored: Workspace, app: Flask) -> None:
    scored.accounts.create_user("root", password="correct horse", roles=["admin"])
    lead = scored.records.create("lead", {"name": "Ada", "source": "referral"})
    scored.records.create("activity", {"lead": lead["id"], "kind": "meeting"})
    page = logged_in(app, "root").get(f"/app/lead/{lead['id']}").get_data(True)
    panel = re.search(r'data-panel="score-history".*?</section>', page, re.S)
    assert panel is not None
    assert "<strong data-score>31</strong>" in panel.group(0)
    assert "Referral &lt;b&gt; +20" in panel.group(0) and "<b>" not in panel.group(0)
    assert "Meeting &times;1 +10" in panel.group(0)
    activity = scored.records.create("activity", {"kind": "call"})
    other = logged_in(app, "root").get(f"/app/activity/{activity['id']}").get_data(True)
    assert "score-history" not in other


def test_the_api_serves_the_history_to_whoever_may_read_the_record(
        scored: Workspace, app: Flask) -> None:
    accounts = scored.accounts
    tokens = {name: accounts.issue_token(accounts.create_user(name, roles=roles))
              for name, roles in {"root": ["admin"], "nobody": []}.items()}
    lead = scored.records.create("lead", {"name": "Ada", "source": "referral"})
    scored.records.update("lead", lead["id"], {"email": "ada@example.com"})
    path = f"/api/v1/plugins/lead-scoring/history/lead/{lead['id']}"

    def get(user: str, address: str = path) -> Any:
        return app.test_client().get(address,
                                     headers={"Authorization": f"Bearer {tokens[user]}"})

    answer = get("root")
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["entity"], body["id"], body["score"]) == ("lead", lead["id"], 25)
    assert [(c["previous"], c["score"]) for c in body["history"]] == [(20, 25), (None, 20)]
    assert body["history"][0]["reasons"][1] == {"where": "/rules/1",
                                                "label": "email != null", "points": 5}
    assert get("nobody").status_code in (403, 404)
    assert get("root", path.replace("/lead/", "/activity/")).status_code == 404
    assert get("root", path[:-3] + "zzz").status_code == 404
    assert app.test_client().get(path).status_code == 401
