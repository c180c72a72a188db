"""Fixtures: a workspace on each database the engine supports, reset between tests.

SQLite always runs. PostgreSQL runs against ``BLOCKS_TEST_POSTGRES_URL`` (default: the
local server's ``test`` database); when it cannot be reached the PostgreSQL cases are
skipped, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from blockscrm.engine import Workspace

POSTGRES_URL = os.environ.get("BLOCKS_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BLOCKS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Workspaces in tests run their jobs inline unless a test asks for Redis (test_jobs.py).
os.environ.pop("REDIS_URL", None)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
DATABASES = ["sqlite", "postgresql"]


def _reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    try:
        _reset_postgres(POSTGRES_URL)
    except sa.exc.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    return POSTGRES_URL


def database_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'workspace.db'}"
    url: str = request.getfixturevalue("postgres_url")
    _reset_postgres(url)
    return url


@pytest.fixture(params=DATABASES)
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """An empty workspace on SQLite, then on PostgreSQL."""
    ws = Workspace(database_url(request.param, tmp_path, request), secret="test-secret")
    yield ws
    ws.close()


@pytest.fixture
def sqlite_workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(f"sqlite:///{tmp_path / 'workspace.db'}", secret="test-secret")
    yield ws
    ws.close()


ACCOUNT = {
    "kind": "entity", "name": "account", "label": {"en": "Account", "zh": "客户"},
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 100, "x-label": {"en": "Name", "zh": "名称"}},
        "city": {"type": "string", "x-index": True},
        "tier": {"type": "string", "enum": ["gold", "silver"], "x-field": "select"},
    },
}

DEAL = {
    "kind": "entity", "name": "deal", "label": {"en": "Deal", "zh": "交易"},
    "type": "object", "required": ["title"],
    "properties": {
        "title": {"type": "string", "maxLength": 200, "x-label": {"en": "Title", "zh": "标题"}},
        "amount": {"type": "number", "minimum": 0, "x-field": "currency",
                   "x-currency": "EUR"},
        "stage": {"type": "string", "enum": ["new", "won", "lost"], "x-field": "select",
                  "default": "new",
                  "x-options": {"won": {"label": {"en": "Won"}, "color": "green"}}},
        "account": {"type": "string", "x-field": "reference", "x-ref": "account"},
        "close_date": {"type": "string", "format": "date"},
        "email": {"type": "string", "format": "email", "x-unique": True},
        "probability": {"type": "integer", "minimum": 0, "maximum": 100},
        "tags": {"x-field": "tags"},
        "notes": {"x-field": "long_text"},
    },
}


@pytest.fixture
def sales(workspace: Workspace) -> Workspace:
    """A workspace with ``account`` and ``deal`` published."""
    workspace.metadata.create(ACCOUNT)
    workspace.metadata.create(DEAL)
    workspace.metadata.publish()
    return workspace
