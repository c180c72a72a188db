"""Fixtures for the REST API: an app on the ``workspace`` fixture's database (SQLite,
then PostgreSQL), and the one ``client`` every test makes its HTTP calls through."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from blockscrm.engine import Workspace
from blockscrm.platform.app import create_app

PROBLEM = "application/problem+json"


@pytest.fixture
def app(workspace: Workspace) -> Iterator[Flask]:
    app = create_app({"DATABASE_URL": workspace.url, "SECRET_KEY": "test-secret",
                      "TESTING": True})
    yield app
    app.extensions["blocks"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The HTTP client of every API test: an admin's API token on every call."""
    accounts = app.extensions["blocks"].accounts
    token = accounts.issue_token(accounts.create_user("root", roles=["admin"]))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """Check a response is problem details with ``status``; answer its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body: dict[str, Any] = response.get_json(force=True)
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    return body
