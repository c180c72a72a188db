"""Plugins through the engine's API: refused when incompatible, silent until a workspace
enables them, their settings checked, their hooks called on writes, and a failing hook
rolling its write back with the plugin named. A plugin here is a small class registered
on a plugin manager the way an entry point's module would be."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Blueprint
from markupsafe import Markup
from screens.conftest import logged_in_client

from blockscrm.engine import (
    ActionFailed,
    CardType,
    Conflict,
    DefinitionError,
    Panel,
    PluginFailed,
    PluginInfo,
    Schedule,
    ValidationError,
    Workspace,
    hookimpl,
)
from blockscrm.engine.actions import Action
from blockscrm.engine.automations import TriggerType
from blockscrm.engine.plugins import add_plugin, create_plugin_manager
from blockscrm.platform.app import create_app

TICKET = {"kind": "entity", "name": "ticket", "label": {"en": "Ticket"},
          "properties": {"subject": {"type": "string"}, "code": {"type": "string"},
                         "score": {"type": "integer"}}}


class Recorder:
    """A plugin that records what it is told and does what its test asks."""

    def __init__(self, name: str = "recorder", engine: str = ">=0.1") -> None:
        self.name, self.engine = name, engine
        self.calls: list[tuple[str, str]] = []
        self.fail_in: str | None = None
        self.ran = 0
        self.cron = "0 3 * * *"

    def _maybe_fail(self, hook: str) -> None:
        if self.fail_in == hook:
            raise RuntimeError("the plugin's own bug")

    @hookimpl
    def blocks_plugin_info(self) -> PluginInfo:
        return PluginInfo(self.name, "1.2.0", self.engine, settings={
            "type": "object", "properties": {"prefix": {"type": "string", "maxLength": 5}},
            "additionalProperties": False})

    @hookimpl
    def blocks_check_settings(self, ws: Workspace, settings: Mapping[str, Any]
                              ) -> list[tuple[str, str]]:
        if settings.get("prefix") == "NONE" and "ticket" in ws.catalog().entities:
            return [("/prefix", "a ticket needs a prefix")]
        return []

    @hookimpl
    def blocks_before_validate(self, ws: Workspace, values: Mapping[str, Any]
                               ) -> Mapping[str, Any] | None:
        self._maybe_fail("before_validate")
        prefix = ws.plugins.settings(self.name).get("prefix", "")
        return {"code": f"{prefix}{values.get('subject', '')}"[:20]}

    @hookimpl
    def blocks_before_save(self, conn: sa.Connection, action: str,
                           record: Mapping[str, Any]) -> None:
        self._maybe_fail("before_save")
        if record.get("subject") == "refuse me":
            raise ValidationError({"subject": ["the recorder refuses it"]})
        self.calls.append(("before_save", action))

    @hookimpl
    def blocks_after_commit(self, action: str, record: Mapping[str, Any]) -> None:
        self._maybe_fail("after_commit")
        self.calls.append(("after_commit", action))

    @hookimpl
    def blocks_actions(self) -> list[Action]:
        def explode(ctx: Any, params: Mapping[str, Any]) -> None:
            raise ZeroDivisionError("division by zero")

        return [Action("explode", {"type": "object"}, explode)]

    @hookimpl
    def blocks_triggers(self) -> list[TriggerType]:
        return [TriggerType("ping", {"type": "object",
                                     "properties": {"topic": {"type": "string"}}},
                            matches=lambda options, payload:
                            options.get("topic") in (None, payload.get("topic")))]

    @hookimpl
    def blocks_schedules(self) -> list[Schedule]:
        def run(ws: Workspace, now: dt.datetime) -> None:
            self.ran += 1

        return [Schedule("nightly", self.cron, run)]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def desk(workspace: Workspace, recorder: Recorder) -> Iterator[Workspace]:
    """A workspace (SQLite, then PostgreSQL) whose process has the recorder installed."""
    pm = create_plugin_manager(load_entry_points=False)
    assert add_plugin(pm, recorder) == "recorder"
    ws = Workspace(workspace.url, pm=pm, secret="test-secret")
    ws.metadata.create(TICKET)
    ws.metadata.publish()
    yield ws
    ws.close()


def test_an_incompatible_plugin_is_refused_with_its_reason(
        caplog: pytest.LogCaptureFixture) -> None:
    pm = create_plugin_manager(load_entry_points=False)
    with caplog.at_level(logging.ERROR):
        assert add_plugin(pm, Recorder("future", engine=">=99")) is None
    assert "supports the engine >=99" in pm.refused["future"]
    assert "future" in caplog.text
    assert pm.get_plugin("future") is None
    assert add_plugin(pm, Recorder("garbled", engine="at least two")) is None
    assert "not a version specifier" in pm.refused["garbled"]
    assert add_plugin(pm, object(), "anonymous") is None
    assert "does not say who it is" in pm.refused["anonymous"]


def test_a_plugin_is_silent_until_the_workspace_enables_it(desk: Workspace,
                                                            recorder: Recorder) -> None:
    assert [(p["name"], p["enabled"]) for p in desk.plugins.installed()] == [
        ("recorder", False)]
    quiet = desk.records.create("ticket", {"subject": "hello"})
    assert quiet["code"] is None and recorder.calls == []
    assert "explode" not in desk.actions and "ping" not in desk.triggers

    desk.plugins.enable("recorder", {"prefix": "T-"})
    loud = desk.records.create("ticket", {"subject": "hello"})
    assert loud["code"] == "T-hello"
    desk.records.update("ticket", loud["id"], {"subject": "bye"})
    desk.records.delete("ticket", loud["id"])
    assert recorder.calls == [("before_save", "create"), ("after_commit", "create"),
                              ("before_save", "update"), ("after_commit", "update"),
                              ("before_save", "delete"), ("after_commit", "delete")]
    assert "explode" in desk.actions and "ping" in desk.triggers

    desk.plugins.disable("recorder")
    assert desk.records.create("ticket", {"subject": "again"})["code"] is None
    assert len(recorder.calls) == 6
    assert "explode" not in desk.actions


def test_settings_are_checked_against_the_plugins_schema(desk: Workspace) -> None:
    with pytest.raises(DefinitionError) as refused:
        desk.plugins.enable("recorder", {"prefix": "much too long", "colour": 1})
    assert set(refused.value.errors) == {"/prefix", "/"}
    assert "recorder" in str(refused.value)
    with pytest.raises(DefinitionError) as misfit:  # the plugin's own check of them
        desk.plugins.enable("recorder", {"prefix": "NONE"})
    assert misfit.value.errors == {"/prefix": ["a ticket needs a prefix"]}
    assert desk.plugins.enabled() == frozenset()


def test_a_plugin_that_published_definitions_use_cannot_be_disabled(desk: Workspace) -> None:
    """Without it they would not compile, and the workspace could not read its metadata."""
    desk.plugins.enable("recorder")
    desk.metadata.create({"kind": "automation", "name": "boom", "label": {"en": "Boom"},
                          "entity": "ticket", "trigger": {"on": "ping"},
                          "actions": [{"type": "explode"}]})
    desk.metadata.publish()
    with pytest.raises(Conflict) as refused:
        desk.plugins.disable("recorder")
    assert "/automation/boom" in str(refused.value)
    assert desk.plugins.enabled() == {"recorder"}
    desk.metadata.delete("automation", "boom")
    desk.metadata.publish()
    desk.plugins.disable("recorder")
    assert desk.records.create("ticket", {"subject": "fine"})["code"] is None


@pytest.mark.parametrize("hook", ["before_validate", "before_save"])
def test_a_failing_hook_rolls_the_write_back_and_names_the_plugin(
        desk: Workspace, recorder: Recorder, hook: str) -> None:
    desk.plugins.enable("recorder")
    recorder.fail_in = hook
    with pytest.raises(PluginFailed) as failed:
        desk.records.create("ticket", {"subject": "lost?"})
    assert failed.value.plugin == "recorder"
    assert "recorder" in str(failed.value) and "the plugin's own bug" in str(failed.value)
    assert desk.query("ticket").count().value == 0  # nothing half-written


def test_a_plugin_refuses_a_write_on_purpose(desk: Workspace) -> None:
    desk.plugins.enable("recorder")
    with pytest.raises(ValidationError) as refused:
        desk.records.create("ticket", {"subject": "refuse me"})
    assert refused.value.errors == {"subject": ["the recorder refuses it"]}
    assert desk.query("ticket").count().value == 0


def test_a_failure_after_the_commit_is_logged_and_the_write_stands(
        desk: Workspace, recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    desk.plugins.enable("recorder")
    recorder.fail_in = "after_commit"
    with caplog.at_level(logging.ERROR):
        desk.records.create("ticket", {"subject": "kept"})
    assert desk.query("ticket").count().value == 1
    assert "recorder" in caplog.text


def test_a_plugins_action_that_fails_rolls_the_save_back(desk: Workspace) -> None:
    desk.plugins.enable("recorder")
    desk.metadata.create({"kind": "automation", "name": "boom", "label": {"en": "Boom"},
                          "entity": "ticket", "trigger": {"on": "created"}, "mode": "sync",
                          "actions": [{"type": "explode"}]})
    desk.metadata.publish()
    with pytest.raises(ActionFailed) as failed:
        desk.records.create("ticket", {"subject": "x"})
    assert "'recorder'" in str(failed.value) and "ZeroDivisionError" in str(failed.value)
    assert desk.query("ticket").count().value == 0


def test_a_plugins_trigger_fires_the_rules_listening(desk: Workspace) -> None:
    desk.plugins.enable("recorder")
    desk.metadata.create({"kind": "automation", "name": "on_ping", "label": {"en": "Ping"},
                          "entity": "ticket", "trigger": {"on": "ping", "topic": "score"},
                          "mode": "sync",
                          "actions": [{"type": "set_fields", "values": {"score": 7}},
                                      {"type": "notify", "user": "owner",
                                       "title": "ping on {{ payload.topic }}"}]})
    desk.metadata.publish()
    ann = desk.accounts.create_user("ann")
    ticket = desk.records.create("ticket", {"subject": "x", "owner_id": ann.id})
    assert desk.automations.trigger("ping", "ticket", ticket["id"], {"topic": "other"}) is False
    assert desk.automations.trigger("ping", "ticket", ticket["id"], {"topic": "score"}) is True
    assert desk.records.get("ticket", ticket["id"])["score"] == 7
    assert [n["title"] for n in desk.accounts.notifications(ann)["items"]] == ["ping on score"]


def test_a_rule_on_a_trigger_nobody_offers_is_refused(desk: Workspace) -> None:
    desk.metadata.create({"kind": "automation", "name": "on_ping", "label": {"en": "Ping"},
                          "entity": "ticket", "trigger": {"on": "ping"},
                          "actions": [{"type": "set_fields", "values": {"score": 7}}]})
    with pytest.raises(DefinitionError) as refused:
        desk.metadata.publish()
    assert "no trigger named 'ping'" in str(refused.value)


def test_schedules_run_once_per_due_time(desk: Workspace, recorder: Recorder) -> None:
    desk.plugins.enable("recorder")
    night = dt.datetime(2026, 1, 5, 2, 0)
    desk.automations.tick(night)  # plants the first due time: 03:00
    assert recorder.ran == 0
    desk.automations.tick(night + dt.timedelta(hours=1, minutes=1))
    desk.automations.tick(night + dt.timedelta(hours=1, minutes=2))
    assert recorder.ran == 1
    desk.automations.tick(night + dt.timedelta(days=1, hours=1, minutes=1))
    assert recorder.ran == 2
    recorder.cron = "30 5 * * *"  # a schedule whose time changed is planned anew
    desk.automations.tick(night + dt.timedelta(days=2))  # plans 05:30, not 03:00
    desk.automations.tick(night + dt.timedelta(days=2, hours=1, minutes=1))
    assert recorder.ran == 2
    desk.automations.tick(night + dt.timedelta(days=2, hours=3, minutes=31))
    assert recorder.ran == 3


def test_plugin_changes_reach_every_process(desk: Workspace, recorder: Recorder) -> None:
    """Another process on the same database sees the plugin enabled with the next
    metadata version (a publish of its own, in the history)."""
    pm = create_plugin_manager(load_entry_points=False)
    add_plugin(pm, recorder)
    other = Workspace(desk.url, pm=pm, secret="test-secret")
    try:
        assert other.plugins.enabled() == frozenset()
        desk.plugins.enable("recorder", {"prefix": "P"}, actor="ada")
        assert other.plugins.enabled() == {"recorder"}
        assert other.records.create("ticket", {"subject": "s"})["code"] == "Ps"
        latest = desk.metadata.publishes()[0]
        assert latest["published_by"] == "ada" and latest["definitions"] == []
    finally:
        other.close()


class Decorator:
    """A plugin for the screens and the API: a record panel, a dashboard card type and a
    route, each failing on demand."""

    fail = False

    @hookimpl
    def blocks_plugin_info(self) -> PluginInfo:
        return PluginInfo("decorator", "0.1", ">=0.1")

    @hookimpl
    def blocks_record_panels(self, entity: Any) -> list[Panel]:
        def render(ws: Workspace, entity: Any, record: Mapping[str, Any], user: Any) -> str:
            if self.fail:
                raise RuntimeError("panel bug")
            return str(Markup("<p data-said>Subject: {}</p>").format(record["subject"]))

        return [Panel("said", {"en": "What it says"}, render)]

    @hookimpl
    def blocks_dashboard_cards(self) -> list[CardType]:
        def render(ws: Workspace, card: Any, user: Any) -> str:
            if self.fail:
                raise RuntimeError("card bug")
            count = ws.query(card.entity, user=user).count().value
            return str(Markup("<p data-tickets>{} {}</p>").format(count, card.options["unit"]))

        return [CardType("tally", {"en": "Tally"}, render)]

    @hookimpl
    def blocks_api_routes(self) -> Any:
        routes = Blueprint("decorator", __name__)
        routes.add_url_rule("/hello", "hello", lambda: {"hello": "world"})
        return routes


def test_panels_cards_and_routes_on_the_screens(workspace: Workspace) -> None:
    plugin = Decorator()
    pm = create_plugin_manager(load_entry_points=False)
    add_plugin(pm, plugin)
    app = create_app({"DATABASE_URL": workspace.url, "SECRET_KEY": "test-secret",
                      "PLUGIN_MANAGER": pm})
    ws = app.extensions["blocks"]
    ws.accounts.create_user("ada", password="correct horse", roles=["admin"])
    ws.metadata.create(TICKET)
    ws.metadata.publish()
    ticket = ws.records.create("ticket", {"subject": "<b>bold</b>"})
    board = {"kind": "dashboard", "name": "desk", "label": {"en": "Desk"},
             "cards": [{"type": "plugin:tally", "entity": "ticket", "options": {"unit": "open"}}]}
    ws.metadata.create(board)
    with pytest.raises(DefinitionError) as refused:  # its plugin is not enabled here yet
        ws.metadata.publish()
    assert "no card type 'plugin:tally'" in str(refused.value)
    client = logged_in_client(app, "ada")
    record_page = f"/app/ticket/{ticket['id']}"
    assert "data-said" not in client.get(record_page).get_data(True)
    assert client.get("/api/v1/plugins/decorator/hello").status_code == 404

    ws.plugins.enable("decorator")
    ws.metadata.publish()
    page = client.get(record_page).get_data(True)
    assert "Subject: &lt;b&gt;bold&lt;/b&gt;" in page  # the plugin escaped the record's text
    assert '<p data-tickets>1 open</p>' in client.get("/app/dashboards/desk").get_data(True)
    assert client.get("/api/v1/plugins/decorator/hello").get_json() == {"hello": "world"}

    plugin.fail = True  # a failing panel or card is said in its place; the page stands
    page = client.get(record_page)
    assert page.status_code == 200 and "could not be drawn" in page.get_data(True)
    board_page = client.get("/app/dashboards/desk")
    assert board_page.status_code == 200 and "data-card-failed" in board_page.get_data(True)
    app.extensions["blocks"].close()


def test_a_bulk_insert_calls_the_hooks_a_create_does(desk: Workspace, recorder: Recorder) -> None:
    """An import is held to the same plugins as a form: values filled, a refused row
    reported with the others kept, and each row told after its batch commits."""
    desk.plugins.enable("recorder", {"prefix": "B-"})
    result = desk.records.bulk_insert("ticket", [{"subject": "one"}, {"subject": "refuse me"},
                                                 {"subject": "two"}])
    assert result.inserted == 2
    assert result.errors == {1: {"subject": ["the recorder refuses it"]}}
    codes = sorted(r["code"] for r in desk.query("ticket").page().items)
    assert codes == ["B-one", "B-two"]
    assert recorder.calls.count(("after_commit", "create")) == 2
