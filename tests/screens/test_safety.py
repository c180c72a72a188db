"""Safety on every screen, through HTTP (no browser needed): values escaped, rich text
sanitised, every state-changing request refused without its CSRF token, and pages that
show only what the access rules allow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from blockscrm.engine import Workspace
from blockscrm.platform.app import create_app

from .conftest import csrf_token, logged_in_client

EVIL = '<script>alert("x")</script>'
DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deals"}, "required": ["title"],
        "x-title-field": "title",
        "properties": {"title": {"type": "string"},
                       "stage": {"type": "string", "x-field": "select", "x-options": {
                           "new": {"label": {"en": EVIL}}, "won": {}}},
                       "notes": {"type": "string", "x-field": "rich_text"},
                       "amount": {"type": "number"}}}
FLOW = {"kind": "workflow", "name": "pipeline", "label": {"en": "Pipeline"}, "entity": "deal",
        "initial": "open", "states": [{"name": "open", "label": {"en": EVIL}},
                                      {"name": "done"}],
        "transitions": [{"name": "close", "from": ["open"], "to": "done"}]}
BOARD = {"kind": "dashboard", "name": "board", "label": {"en": "Board"},
         "cards": [{"type": "table", "entity": "deal", "columns": ["title", "stage"]},
                   {"type": "bar", "entity": "deal", "group_by": "stage"}]}
SECRET = {"kind": "entity", "name": "payroll", "label": {"en": "Payroll"},
          "properties": {"who": {"type": "string"}}}
SEES_DEALS = {"kind": "role", "name": "rep", "label": {"en": "Rep"},
              "permissions": {"deal": {"read": "own", "create": True, "update": "own"}}}


@pytest.fixture
def app(workspace: Workspace) -> Iterator[Flask]:
    app = create_app({"DATABASE_URL": workspace.url, "SECRET_KEY": "test-secret"})
    ws = app.extensions["blocks"]
    for document in (DEAL, FLOW, BOARD, SECRET, SEES_DEALS):
        ws.metadata.create(document)
    ws.metadata.publish()
    yield app
    app.extensions["blocks"].close()


def logged_in(app: Flask, username: str, roles: list[str]) -> FlaskClient:
    """A new user with ``roles``, logged in through the form."""
    app.extensions["blocks"].accounts.create_user(username, password="correct horse",
                                                  roles=roles)
    return logged_in_client(app, username)


def page(client: FlaskClient, path: str, status: int = 200) -> str:
    answer = client.get(path)
    assert answer.status_code == status, (path, answer.status_code)
    return answer.get_data(as_text=True)


def test_values_are_escaped_and_rich_text_sanitised(app: Flask) -> None:
    ws = app.extensions["blocks"]
    admin = logged_in(app, "ada", ["admin"])
    deal = ws.records.create("deal", {
        "title": EVIL, "stage": "new", "amount": 5,
        "notes": '<p onclick="steal()">Hi <b>there</b><img src=x onerror="alert(1)">'
                 '<a href="javascript:alert(1)">link</a><script>alert(2)</script></p>'})
    ws.notes.add("deal", deal["id"], EVIL)
    pages = ["/app/deal", f"/app/deal/{deal['id']}", "/app/search?q=alert",
             "/app/deal/kanban", "/app/dashboards/board", f"/app/deal/{deal['id']}/edit",
             f"/app/deal?filter={EVIL}"]
    for path in pages:
        html = page(admin, path, 400 if "filter" in path else 200)
        assert "<script>alert" not in html, path
        # tags and handlers only ever appear escaped (&lt;…, &#34;), never live
        assert "<img src=x" not in html and 'onerror="' not in html, path
        assert 'onclick="steal' not in html, path
    shown = page(admin, f"/app/deal/{deal['id']}")
    assert "&lt;script&gt;alert(" in shown  # the title, the option, the state, the note
    assert "<b>there</b>" in shown  # rich text keeps its formatting
    assert "javascript:" not in shown


def test_every_state_changing_screen_request_needs_its_csrf_token(app: Flask) -> None:
    ws = app.extensions["blocks"]
    client = logged_in(app, "ada", ["admin"])
    deal = ws.records.create("deal", {"title": "Plain"})
    values: dict[str, Any] = {"entity": "deal", "record_id": deal["id"], "name": "close",
                              "request_id": 1, "decision": "approve", "view_id": 1,
                              "field": "title"}
    posts = [rule for rule in app.url_map.iter_rules()
             if rule.rule.startswith("/app/") and "POST" in (rule.methods or ())]
    assert len(posts) >= 12
    for rule in posts:
        path = rule.build(values, append_unknown=False)[1]
        answer = client.post(path, data={"title": "Changed"})
        assert answer.status_code == 400, (rule.rule, answer.status_code)
    assert ws.records.get("deal", deal["id"])["title"] == "Plain"
    assert ws.records.get("deal", deal["id"])["version"] == 1


def test_pages_show_only_what_the_role_may_see(app: Flask) -> None:
    ws = app.extensions["blocks"]
    rep = logged_in(app, "rae", ["rep"])
    other = ws.accounts.create_user("oli", roles=["rep"])
    mine = ws.records.create("deal", {"title": "Mine", "owner_id": ws.accounts.user("rae").id})
    theirs = ws.records.create("deal", {"title": "Theirs", "owner_id": other.id})
    ws.records.create("payroll", {"who": "Everyone's salary"})
    listing = page(rep, "/app/deal")
    assert "Mine" in listing and "Theirs" not in listing
    assert "Payroll" not in listing  # not in her navigation
    assert "Theirs" not in page(rep, "/app/search?q=theirs")
    assert "Theirs" not in page(rep, "/app/deal/kanban")
    page(rep, f"/app/deal/{theirs['id']}", 404)
    page(rep, f"/app/deal/{theirs['id']}/edit", 404)
    page(rep, f"/app/deal/{mine['id']}")
    for path in ("/app/payroll", "/app/payroll/new", "/app/payroll/kanban",
                 "/app/deal/export.csv"):
        assert rep.get(path).status_code == 403, path
    token = csrf_token(rep, f"/app/deal/{mine['id']}")
    answer = rep.post(f"/app/deal/{theirs['id']}/transition/close",
                      data={"csrf_token": token})
    assert answer.status_code in (302, 404)
    assert ws.records.get("deal", theirs["id"])["state"] == "open"


@pytest.mark.parametrize("target", ["//evil.example/app/", "/\\evil.example", "/\t/evil.example",
                                    "https://evil.example/app/", "/app/\\\\evil"])
def test_login_never_sends_the_user_off_site(app: Flask, target: str) -> None:
    app.extensions["blocks"].accounts.create_user("ada", password="correct horse")
    client = app.test_client()
    answer = client.post("/login", query_string={"next": target},
                         data={"username": "ada", "password": "correct horse",
                               "csrf_token": csrf_token(client, "/login")})
    assert answer.status_code == 302 and answer.headers["Location"] == "/app/"


@pytest.mark.parametrize("path", ["/app/deal?saved=%C2%B2", "/app/deal?saved=99999999999999999999",
                                  "/app/deal?cursor=%00", "/app/deal?sort=%00",
                                  "/app/search?q=%00", "/app/deal?filter=%00"])
def test_odd_list_addresses_get_an_answer_not_a_crash(app: Flask, path: str) -> None:
    client = logged_in(app, "ada", ["admin"])
    assert client.get(path).status_code in (200, 400, 404)


def test_odd_values_are_shown_not_crashed_on(app: Flask) -> None:
    ws = app.extensions["blocks"]
    ws.accounts.create_user("ann", password="correct horse", roles=["admin"])
    ws.accounts.set_preferences("ann", time_zone="Asia/Shanghai")
    client = logged_in_client(app, "ann")
    record = ws.records.create("deal", {"title": "Open-ended"})
    with ws.transaction() as conn:  # a sentinel date as far as the calendar goes
        conn.exec_driver_sql(f"UPDATE ent_deal SET created_at = '9999-12-31 23:00:00' "
                             f"WHERE id = '{record['id']}'")
    assert "9999-12-31" in page(client, f"/app/deal/{record['id']}")
    token = csrf_token(client, "/app/preferences")
    answer = client.post("/app/preferences", data={"csrf_token": token,
                                                   "time_zone": "a" * 5000})
    assert answer.status_code == 422
