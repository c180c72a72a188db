"""Every error the API answers is problem details, whatever raised it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import abort
from flask.testing import FlaskClient

from blockscrm.engine import AuthenticationFailed, PermissionDenied, TooManyAttempts, Workspace

from .conftest import assert_problem


def test_an_unknown_address_and_a_wrong_method(client: FlaskClient) -> None:
    assert_problem(client.get("/api/v1/nothing"), 404)
    wrong = client.put("/api/v1/meta/plan")
    assert_problem(wrong, 405)
    assert "GET" in wrong.headers["Allow"]


def _add_route(client: FlaskClient, view: Callable[..., Any]) -> None:
    client.application.add_url_rule("/api/v1/test-error", "test_error", view)


def test_a_forbidden_action_is_a_403(client: FlaskClient) -> None:
    def forbidden() -> None:
        raise PermissionDenied("deal records are not yours to delete")

    _add_route(client, forbidden)
    body = assert_problem(client.get("/api/v1/test-error"), 403)
    assert body["detail"] == "deal records are not yours to delete"


def test_an_unauthenticated_call_is_a_401(client: FlaskClient) -> None:
    def unknown_token() -> None:
        raise AuthenticationFailed("the token is not valid")

    _add_route(client, unknown_token)
    response = client.get("/api/v1/test-error")
    assert assert_problem(response, 401)["detail"] == "the token is not valid"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_werkzeug_errors_keep_their_status(client: FlaskClient) -> None:
    _add_route(client, lambda: abort(401))
    assert_problem(client.get("/api/v1/test-error"), 401)


def test_too_many_logins_say_when_to_retry(client: FlaskClient) -> None:
    def throttled() -> None:
        raise TooManyAttempts(30)

    _add_route(client, throttled)
    response = client.get("/api/v1/test-error")
    assert_problem(response, 429)
    assert response.headers["Retry-After"] == "30"


def test_an_unexpected_error_is_logged_and_answered_as_a_500(
        client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> None:
        raise RuntimeError("the disk is on fire")

    _add_route(client, broken)
    with caplog.at_level(logging.ERROR):
        body = assert_problem(client.get("/api/v1/test-error"), 500)
    assert "fire" not in body.get("detail", "")  # internals stay in the log
    assert any("the disk is on fire" in str(r.exc_info[1]) for r in caplog.records
               if r.exc_info)


@pytest.mark.parametrize("path", [
    "/api/v1/records/deal/a%00b", "/api/v1/records/deal/a%00b/history",
    "/api/v1/meta/entity/a%00b", "/api/v1/records/deal/" + "x" * 40,
])
def test_an_identifier_no_record_can_have_is_not_found(client: FlaskClient, sales: Workspace,
                                                       path: str) -> None:
    """A NUL reached PostgreSQL (a 500) where SQLite answered 404."""
    assert_problem(client.get(path), 404)
    assert_problem(client.delete("/api/v1/meta/entity/a%00b"), 404)


def test_a_nul_in_a_search_or_filter_is_a_bad_query(client: FlaskClient,
                                                   sales: Workspace) -> None:
    assert_problem(client.get("/api/v1/records/deal?q=a%00b"), 400)
    assert_problem(client.get('/api/v1/records/deal?filter=title%20%3D%3D%20%22a%00%22'), 400)


@pytest.mark.parametrize("username", ["u" * 65, "a\u0000b", "a\udbbfb", {"a": 1}])
def test_a_username_no_user_can_have_is_refused_as_any_wrong_login(
        client: FlaskClient, username: Any) -> None:
    body = json.dumps({"username": username, "password": "whatever"}, ensure_ascii=True)
    response = client.post("/api/v1/auth/tokens", data=body,
                           headers={"Content-Type": "application/json"})
    assert_problem(response, 401)
