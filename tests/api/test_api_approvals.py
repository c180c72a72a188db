"""Approvals over HTTP: the contract's routes and statuses (201, 409, 422, 423, 403)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import assert_problem

QUOTE = {"kind": "entity", "name": "quote", "label": {"en": "Quote"},
         "properties": {"title": {"type": "string"}, "discount": {"type": "number"}}}
DISCOUNT = {"kind": "approval", "name": "discount", "label": {"en": "Discount"},
            "entity": "quote", "entry": "discount > 20",
            "steps": [{"name": "manager", "approvers": [{"user": "mia"}]}]}


def bearer(app: Flask, username: str) -> dict[str, str]:
    ws = app.extensions["blocks"]
    user = ws.accounts.create_user(username, roles=["admin"])
    return {"Authorization": f"Bearer {ws.accounts.issue_token(user)}"}


@pytest.fixture
def quote(app: Flask, client: FlaskClient) -> dict[str, Any]:
    for kind, document in (("entity", QUOTE), ("approval", DISCOUNT)):
        assert client.post(f"/api/v1/meta/{kind}", json=document).status_code == 201
    assert client.post("/api/v1/meta/publish", json={}).status_code == 200
    record: dict[str, Any] = client.post("/api/v1/records/quote",
                                         json={"title": "Q", "discount": 30}).get_json()
    return record


def test_submit_lock_inbox_and_decide(app: Flask, client: FlaskClient,
                                      quote: dict[str, Any]) -> None:
    mia = bearer(app, "mia")
    base = f"/api/v1/records/quote/{quote['id']}"
    submitted = client.post(f"{base}/approvals", json={"comment": "please"})
    assert submitted.status_code == 201 and submitted.get_json()["status"] == "pending"
    request_id = submitted.get_json()["id"]
    assert submitted.headers["Location"].endswith(f"/api/v1/approvals/{request_id}")
    assert_problem(client.post(f"{base}/approvals"), 409)
    locked = assert_problem(client.patch(base, json={"discount": 90}), 423)
    assert "waits on approval 'discount'" in locked["detail"]
    inbox = app.test_client().get("/api/v1/approvals?mine=pending", headers=mia)
    assert [r["id"] for r in inbox.get_json()["items"]] == [request_id]
    assert client.get("/api/v1/approvals?mine=pending").get_json()["items"] == []
    assert_problem(client.get("/api/v1/approvals"), 400)
    assert_problem(client.post(f"/api/v1/approvals/{request_id}/approve"), 403)
    done = app.test_client().post(f"/api/v1/approvals/{request_id}/approve", headers=mia,
                                  json={"comment": "ok"})
    assert done.status_code == 200 and done.get_json()["status"] == "approved"
    assert client.patch(base, json={"discount": 90}).status_code == 200
    assert_problem(client.post(f"/api/v1/approvals/{request_id}/fly"), 400)
    assert_problem(client.post(f"/api/v1/approvals/{request_id}/recall"), 409)
    history = client.get(f"{base}/history").get_json()["items"]
    assert [h["decision"] for h in history if h["action"] == "approval"] == [
        "submitted", "step_approved", "approved"]


def test_an_entry_that_does_not_hold_is_a_422(client: FlaskClient,
                                              quote: dict[str, Any]) -> None:
    small = client.post("/api/v1/records/quote", json={"title": "S", "discount": 5})
    assert_problem(client.post(f"/api/v1/records/quote/{small.get_json()['id']}/approvals"),
                   422)


def test_delegating_over_http(app: Flask, client: FlaskClient, quote: dict[str, Any]) -> None:
    mia = bearer(app, "mia")
    bearer(app, "bo")
    made = app.test_client().post("/api/v1/approvals/delegations", headers=mia, json={
        "to": "bo", "starts": "2000-01-01T00:00:00Z", "ends": "2999-01-01T00:00:00Z"})
    assert made.status_code == 201
    assert_problem(app.test_client().post("/api/v1/approvals/delegations", headers=mia,
                                          json={"to": "bo", "starts": "x", "ends": "y"}), 422)


def test_regression_an_id_past_64_bits_is_not_found(client: FlaskClient) -> None:
    # found by schemathesis: a recall of such an id was a database error (500)
    huge = 2**111
    for decision in ("approve", "reject", "recall"):
        assert_problem(client.post(f"/api/v1/approvals/{huge}/{decision}", json={}), 404)
    assert_problem(client.get(f"/api/v1/approvals/{huge}"), 404)
