"""Authentication and access over HTTP: tokens, the login form and its session, CSRF,
throttling, and the engine's grants as the API answers them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from blockscrm.engine import Workspace

from .conftest import assert_problem

ACCOUNT = {"kind": "entity", "name": "account", "label": {"en": "Account"},
           "required": ["name"], "properties": {"name": {"type": "string"}}}
DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deal"}, "required": ["title"],
        "properties": {"title": {"type": "string"}, "amount": {"type": "number"},
                       "notes": {"x-field": "long_text"},
                       "probability": {"type": "integer"}}}
REP = {"kind": "role", "name": "rep", "label": {"en": "Rep"},
       "permissions": {"deal": {"create": True, "read": "own", "update": "own",
                                "fields": {"notes": "hidden",
                                           "probability": "read_only"}}}}


@pytest.fixture
def ws(app: Flask) -> Workspace:
    workspace: Workspace = app.extensions["blocks"]
    for document in (ACCOUNT, DEAL, REP):
        workspace.metadata.create(document)
    workspace.metadata.publish()
    workspace.accounts.create_user("ann", password="correct horse", roles=["rep"])
    workspace.accounts.create_user("bob", password="correct horse", roles=["rep"])
    return workspace


def token_for(client: FlaskClient, username: str, password: str = "correct horse") -> str:
    response = client.post("/api/v1/auth/tokens",
                           json={"username": username, "password": password})
    assert response.status_code == 201, response.get_data(as_text=True)
    token: str = response.get_json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_for_a_password_and_its_revocation(app: Flask, ws: Workspace) -> None:
    anonymous = app.test_client()
    assert_problem(anonymous.get("/api/v1/records/deal"), 401)
    wrong = anonymous.post("/api/v1/auth/tokens", json={"username": "ann", "password": "x"})
    assert_problem(wrong, 401)
    token = token_for(anonymous, "ann")
    me = anonymous.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200 and me.get_json()["roles"] == ["rep"]
    assert anonymous.get("/api/v1/records/deal", headers=bearer(token)).status_code == 200
    revoked = anonymous.delete("/api/v1/auth/tokens/current", headers=bearer(token))
    assert revoked.status_code == 204
    assert_problem(anonymous.get("/api/v1/records/deal", headers=bearer(token)), 401)
    assert_problem(anonymous.get("/api/v1/records/deal", headers=bearer("blk_forged")), 401)


def test_failed_logins_are_slowed_down(app: Flask, ws: Workspace) -> None:
    client = app.test_client()
    for _ in range(5):
        client.post("/api/v1/auth/tokens", json={"username": "bob", "password": "guess"})
    throttled = client.post("/api/v1/auth/tokens",
                            json={"username": "bob", "password": "correct horse"})
    assert_problem(throttled, 429)
    assert int(throttled.headers["Retry-After"]) >= 1


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_the_login_form_starts_a_session_and_every_write_needs_the_csrf_token(
        app: Flask, ws: Workspace) -> None:
    browser = app.test_client()
    form = browser.get("/login")
    assert form.status_code == 200
    token = csrf_token(form.get_data(as_text=True))
    refused = browser.post("/login", data={"username": "ann", "password": "correct horse"})
    assert refused.status_code == 400  # no CSRF token
    bad = browser.post("/login", data={"username": "ann", "password": "nope",
                                       "csrf_token": token})
    assert bad.status_code == 401 and "Wrong username or password" in bad.get_data(True)
    good = browser.post("/login", data={"username": "ann", "password": "correct horse",
                                        "csrf_token": token})
    assert good.status_code == 302
    assert browser.get("/api/v1/records/deal").status_code == 200  # the session cookie
    assert browser.post("/api/v1/records/deal", json={"title": "x"}).status_code == 400
    session_token = csrf_token(browser.get("/app/").get_data(as_text=True))
    created = browser.post("/api/v1/records/deal", json={"title": "x"},
                           headers={"X-CSRFToken": session_token})
    assert created.status_code == 201
    ws.accounts.set_active("ann", False)  # deactivated: the session stops at once
    assert_problem(browser.get("/api/v1/records/deal"), 401)


def test_the_api_answers_what_the_role_grants(app: Flask, ws: Workspace) -> None:
    client = app.test_client()
    ann, bob = token_for(client, "ann"), token_for(client, "bob")
    created = client.post("/api/v1/records/deal", json={"title": "Ann's", "amount": 5},
                          headers=bearer(ann))
    assert created.status_code == 201
    deal: dict[str, Any] = created.get_json()
    assert "notes" not in deal and deal["owner_id"] == ws.accounts.user("ann").id
    assert_problem(client.post("/api/v1/records/deal", json={"title": "x", "probability": 1},
                               headers=bearer(ann)), 403)
    assert_problem(client.patch(f"/api/v1/records/deal/{deal['id']}",
                                json={"probability": 3}, headers=bearer(ann)), 403)
    assert client.get("/api/v1/records/deal?count=true", headers=bearer(bob)).get_json()[
        "count"] == 0
    assert_problem(client.get(f"/api/v1/records/deal/{deal['id']}", headers=bearer(bob)), 404)
    assert_problem(client.delete(f"/api/v1/records/deal/{deal['id']}", headers=bearer(ann)),
                   403)
    assert_problem(client.get("/api/v1/records/deal?filter=notes%20%3D%3D%20%22x%22",
                              headers=bearer(ann)), 400)
    assert_problem(client.get("/api/v1/records/account", headers=bearer(ann)), 403)
    assert client.get("/api/v1/meta/entity", headers=bearer(ann)).status_code == 200
    assert_problem(client.post("/api/v1/meta/entity", json={**ACCOUNT, "name": "x"},
                               headers=bearer(ann)), 403)


def test_sharing_one_record_over_http(app: Flask, ws: Workspace) -> None:
    client = app.test_client()
    ann, bob = token_for(client, "ann"), token_for(client, "bob")
    deal = client.post("/api/v1/records/deal", json={"title": "Ann's"},
                       headers=bearer(ann)).get_json()
    path = f"/api/v1/records/deal/{deal['id']}"
    assert_problem(client.get(path, headers=bearer(bob)), 404)
    assert_problem(client.post(f"{path}/shares", json={"user": "bob"}, headers=bearer(bob)),
                   404)  # not his to share
    assert_problem(client.post(f"{path}/shares", json={"user": "bob", "team": "x"},
                               headers=bearer(ann)), 422)
    assert_problem(client.post(f"{path}/shares", json={"user": "nobody"},
                               headers=bearer(ann)), 404)
    shared = client.post(f"{path}/shares", json={"user": "bob"}, headers=bearer(ann))
    assert shared.status_code == 201 and shared.get_json()["access"] == "read"
    assert client.get(path, headers=bearer(bob)).status_code == 200
    assert_problem(client.patch(path, json={"title": "bob's"}, headers=bearer(bob)), 403)
    gone = client.delete(f"{path}/shares?user=bob", headers=bearer(ann))
    assert gone.status_code == 204
    assert_problem(client.get(path, headers=bearer(bob)), 404)
