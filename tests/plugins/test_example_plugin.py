"""The example plugin (``examples/blocks-example-plugin``), installed as a third party
installs it and found through its entry point, used end to end on SQLite and PostgreSQL:
its field type stored and validated, its rule function in filters, its action in an
automation, its API route, its record panel and the list's stars, its failing hook
rolling a write back, and silence once a workspace disables it."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from screens.conftest import csrf_token, logged_in_client  # tests/screens, as a package

from blockscrm.engine import DefinitionError, PluginFailed, Workspace
from blockscrm.engine.rules import Env, parse_rule
from blockscrm.platform.cli import main

BOOK = {"kind": "entity", "name": "book", "label": {"en": "Book"}, "required": ["title"],
        "x-title-field": "title",
        "properties": {"title": {"type": "string", "x-label": {"en": "Title"}},
                       "rating": {"type": "integer", "x-field": "rating",
                                  "x-label": {"en": "Rating"}},
                       "note": {"type": "string"}}}
MEMO = {"kind": "entity", "name": "memo", "label": {"en": "Memo"},
        "properties": {"title": {"type": "string"}}}
SUMMARY = "/api/v1/plugins/example/summary/"


@pytest.fixture
def cli(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The ``blocks`` command line on the test's database."""
    monkeypatch.setenv("DATABASE_URL", workspace.url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return CliRunner()


def enable(cli: CliRunner, ws: Workspace) -> None:
    """Enable the plugin as the README says, and see the workspace take it up (reading its
    state loads the plugin's field types, functions and actions)."""
    done = cli.invoke(main, ["plugin", "enable", "example", "--settings",
                             json.dumps({"greeting": "Hi"})])
    assert done.exit_code == 0, done.output
    assert ws.plugins.enabled() == {"example"}


@pytest.fixture
def library(workspace: Workspace, cli: CliRunner) -> Workspace:
    """The plugin enabled, and ``book`` (with a rating) published."""
    enable(cli, workspace)
    workspace.metadata.create(BOOK)
    workspace.metadata.publish()
    return workspace


def test_the_plugin_is_listed_disabled_then_enabled_with_checked_settings(
        workspace: Workspace, cli: CliRunner) -> None:
    listed = cli.invoke(main, ["plugin", "list"])
    assert re.search(r"^example\s+0\.1\.0\s+disabled\s+engine >=0\.1,<1$", listed.output,
                     re.MULTILINE), listed.output
    refused = cli.invoke(main, ["plugin", "enable", "example", "--settings",
                                '{"greeting": ""}'])
    assert refused.exit_code != 0 and "example" in refused.output
    assert workspace.plugins.enabled() == frozenset()

    enable(cli, workspace)
    assert workspace.plugins.settings("example") == {"greeting": "Hi"}
    assert re.search(r"^example\s+0\.1\.0\s+enabled", cli.invoke(main, ["plugin", "list"]).output,
                     re.MULTILINE)


def test_a_rating_is_validated_and_stored(library: Workspace, client: FlaskClient) -> None:
    refused = client.post("/api/v1/records/book", json={"title": "Dune", "rating": 6})
    assert refused.status_code == 422
    assert set(refused.get_json()["errors"]) == {"rating"}
    assert library.query("book").count().value == 0

    stored = client.post("/api/v1/records/book", json={"title": "Dune", "rating": 4})
    assert stored.status_code == 201
    assert library.records.get("book", stored.get_json()["id"])["rating"] == 4


@pytest.mark.parametrize("condition", [
    'stars(rating) == "★★★★☆"',
    'starts_with(stars(rating), "★★★")',
    'stars(rating) != "★☆☆☆☆"',
    'is_empty(stars(rating))',
    'stars(rating - 1) == "☆☆☆☆☆"',
    'stars(rating / 2) == "★★☆☆☆"',
])
def test_stars_filters_alike_in_sql_and_in_python(library: Workspace, condition: str) -> None:
    """The filter's SQL (run by SQLite, then PostgreSQL) selects exactly the records the
    Python implementation says hold, empty and half ratings included."""
    for rating in (1, 2, 3, 4, 5, None):
        library.records.create("book", {"title": f"rated {rating}", "rating": rating})
    book = library.catalog().entity("book")
    holds = book.rules.compile_python(parse_rule(condition))
    records = library.query("book").page().items
    expected = {r["title"] for r in records if holds(r, Env()) is True}
    selected = {r["title"] for r in library.query("book").filter(condition).page().items}
    assert selected == expected
    assert selected  # each condition selects something


def test_the_stamp_action_sets_the_greeting_in_an_automation(library: Workspace) -> None:
    library.metadata.create({"kind": "automation", "name": "greet", "label": {"en": "Greet"},
                             "entity": "book", "trigger": {"on": "created"}, "mode": "sync",
                             "actions": [{"type": "stamp", "field": "note"}]})
    library.metadata.publish()
    book = library.records.create("book", {"title": "Emma", "rating": 5})
    assert library.records.get("book", book["id"])["note"] == "Hi"

    library.metadata.create({"kind": "automation", "name": "wrong", "label": {"en": "Wrong"},
                             "entity": "book", "trigger": {"on": "created"},
                             "actions": [{"type": "stamp", "field": "rating"}]})
    with pytest.raises(DefinitionError) as refused:
        library.metadata.publish()
    assert "no text field 'rating'" in str(refused.value)


def test_the_summary_route_answers_what_the_caller_may_read(library: Workspace,
                                                            client: FlaskClient) -> None:
    for rating in (2, 5, 5, None):
        library.records.create("book", {"title": "t", "rating": rating})
    answer = client.get(SUMMARY + "book")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"entity": "book", "count": 4, "average": {"rating": 4.0}}
    assert client.get(SUMMARY + "nothing").status_code == 404


def test_the_panel_list_and_form_show_and_take_stars(library: Workspace, app: Flask) -> None:
    library.accounts.create_user("ann", password="correct horse", roles=["admin"],
                                 display_name="<b>Ann</b>")
    client = logged_in_client(app, "ann")
    book = library.records.create("book", {"title": "Dune", "rating": 4})

    page = client.get(f"/app/book/{book['id']}").get_data(as_text=True)
    panel = re.search(r'<section[^>]*data-panel="stars".*?</section>', page, re.DOTALL)
    assert panel is not None, page
    assert "★★★★☆" in panel.group(0) and "Hi, &lt;b&gt;Ann&lt;/b&gt;!" in panel.group(0)
    assert "★★★★☆" in client.get("/app/book").get_data(as_text=True)

    form = client.get("/app/book/new").get_data(as_text=True)
    assert re.search(r'<input[^>]*type="number"[^>]*name="rating"|'
                     r'<input[^>]*name="rating"[^>]*type="number"', form), form
    posted = client.post("/app/book/new", data={
        "title": "Emma", "rating": "5", "csrf_token": csrf_token(client, "/app/book/new")})
    assert posted.status_code == 302, posted.get_data(as_text=True)
    assert [r["rating"] for r in library.query("book").filter('title == "Emma"').page().items
            ] == [5]


def test_a_failing_hook_rolls_the_write_back_and_names_the_plugin(
        library: Workspace, client: FlaskClient) -> None:
    failed = client.post("/api/v1/records/book", json={"title": "explode", "rating": 3})
    assert failed.status_code == 500
    assert "example" in json.dumps(failed.get_json())
    with pytest.raises(PluginFailed) as raised:
        library.records.create("book", {"title": "explode"})
    assert raised.value.plugin == "example"
    assert library.query("book").count().value == 0  # nothing written


def test_a_disabled_plugin_is_silent(workspace: Workspace, cli: CliRunner,
                                     client: FlaskClient) -> None:
    # On an entity without a rating: a published field of the plugin's type would need
    # the plugin to stay enabled.
    enable(cli, workspace)
    workspace.metadata.create(MEMO)
    workspace.metadata.publish()
    assert client.get(SUMMARY + "memo").get_json() == {"entity": "memo", "count": 0,
                                                    "average": {}}
    with pytest.raises(PluginFailed):
        workspace.records.create("memo", {"title": "explode"})

    done = cli.invoke(main, ["plugin", "disable", "example"])
    assert done.exit_code == 0, done.output
    assert workspace.plugins.enabled() == frozenset()
    assert client.get(SUMMARY + "memo").status_code == 404
    assert workspace.records.create("memo", {"title": "explode"})["title"] == "explode"
    assert "stamp" not in workspace.actions and "stars" not in workspace.rule_functions
    with pytest.raises(DefinitionError) as unknown:
        workspace.metadata.create(BOOK)
    assert unknown.value.errors == {"/properties/rating/x-field": ["unknown field type"]}
