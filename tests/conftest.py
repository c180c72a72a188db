"""Fixtures: a workspace on each database the engine supports, reset between tests.

SQLite always runs. PostgreSQL runs against ``BLOCKS_TEST_POSTGRES_URL`` (default: the
local server's ``test`` database); when it cannot be reached the PostgreSQL cases are
skipped, except in CI (``CI=true``), where they fail.

Each test starts from a new workspace's database, without building one from nothing
(creating the engine's tables was most of a short test's time): SQLite gets a copy of a
file made once per run; PostgreSQL keeps the engine's tables and empties them
(:class:`PostgresReset`).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient

from blockscrm.engine import Workspace
from blockscrm.engine import accounts as engine_accounts
from blockscrm.engine.store import Base
from blockscrm.platform.app import create_app

POSTGRES_URL = os.environ.get("BLOCKS_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BLOCKS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Workspaces in tests run their jobs inline unless a test asks for Redis (test_jobs.py).
os.environ.pop("REDIS_URL", None)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes() -> Iterator[None]:
    """Argon2id at its lowest cost in this process: still a real argon2id hash, but in
    0.1 ms instead of the 100 ms each hash and each login check took (40 s of the suite).
    No test measures the cost; processes the tests start (gunicorn, the CLI) keep it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_accounts, "_HASHER",
                      PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        yield


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file as a new workspace leaves it, made once: each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "workspace.db"
    Workspace(f"sqlite:///{path}", secret="test-secret").close()  # closing folds the WAL in
    return path


def sqlite_url(template: Path, folder: Path) -> str:
    path = folder / "workspace.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


#: Everything the public schema holds, by name: relations (tables, indexes, sequences,
#: views) with their number of columns, free-standing types, functions.
SCHEMA_SHAPE = sa.text("""
    SELECT 'relation', c.relname, c.relkind::text,
           (SELECT count(*) FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
    FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'type', t.typname, t.typtype::text, 0 FROM pg_type t
    WHERE t.typnamespace = 'public'::regnamespace AND t.typrelid = 0 AND t.typelem = 0
    UNION ALL
    SELECT 'function', p.proname, p.prokind::text, p.pronargs FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace
    ORDER BY 1, 2, 3""")
TABLES = sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
RESTART_SEQUENCES = sa.text(
    "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false)"
    " FROM pg_sequences WHERE schemaname = 'public'")


class PostgresReset:
    """Brings the test database back to a new workspace's state, before each test.

    Dropping the schema and having the workspace create its tables again took ~100 ms a
    test. Instead the tables a new workspace creates stay: those a test added (its
    entities') are dropped, the workspace's own are emptied and their sequences
    restarted. Anything else a test left (a changed engine table, a view, a type) makes
    the schema's shape differ from the one recorded here, and then the schema is dropped
    as before.

    The database is vacuumed too: CI's PostgreSQL runs without autovacuum, and every
    table a test creates and drops leaves dead rows in the system catalogs, which every
    later statement reads through (after a few runs a catalog lookup took 60 times as
    long). ``VACUUM FULL`` once a run clears what earlier runs left; a plain ``VACUUM``
    every :attr:`VACUUM_EVERY` tests keeps this run's from piling up.
    """

    VACUUM_EVERY = 50

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        self.quote = self.engine.dialect.identifier_preparer.quote
        with self.engine.begin() as conn:
            self._drop_schema(conn)
        self._vacuum("VACUUM FULL")
        Workspace(url, secret="test-secret").close()
        with self.engine.connect() as conn:
            self.shape = conn.execute(SCHEMA_SHAPE).all()
            self.tables = set(conn.scalars(TABLES))
        # Children first, so that no foreign key stands in the way.
        order = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name in self.tables]
        order[:0] = sorted(self.tables - set(order))
        self.empty = "; ".join(f"DELETE FROM {self.quote(name)}" for name in order)
        self.resets = 0

    def __call__(self) -> None:
        self.resets += 1
        if self.resets % self.VACUUM_EVERY == 0:
            self._vacuum("VACUUM")
        with self.engine.begin() as conn:
            added = set(conn.scalars(TABLES)) - self.tables
            if added:
                names = ", ".join(self.quote(name) for name in sorted(added))
                conn.exec_driver_sql(f"DROP TABLE {names} CASCADE")
            if conn.execute(SCHEMA_SHAPE).all() != self.shape:
                self._drop_schema(conn)  # the test's workspace creates the tables
                return
            conn.exec_driver_sql(self.empty)
            conn.execute(RESTART_SEQUENCES)

    def _vacuum(self, statement: str) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(statement)

    @staticmethod
    def _drop_schema(conn: sa.Connection) -> None:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")


@pytest.fixture(scope="session")
def postgres_reset() -> Iterator[PostgresReset]:
    try:
        reset = PostgresReset(POSTGRES_URL)
    except sa.exc.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    yield reset
    reset.engine.dispose()


def database_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A new workspace's database of ``kind``, for this test."""
    if kind == "sqlite":
        return sqlite_url(request.getfixturevalue("sqlite_template"), tmp_path)
    reset: PostgresReset = request.getfixturevalue("postgres_reset")
    reset()
    return POSTGRES_URL


@pytest.fixture(params=DATABASES)
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """An empty workspace on SQLite, then on PostgreSQL."""
    ws = Workspace(database_url(request.param, tmp_path, request), secret="test-secret")
    yield ws
    ws.close()


@pytest.fixture
def sqlite_workspace(sqlite_template: Path, tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(sqlite_url(sqlite_template, tmp_path), secret="test-secret")
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


class Receiver(BaseHTTPRequestHandler):
    """What a real HTTP server on 127.0.0.1 was sent (``calls``: headers and body), and the
    status it answers (``status``)."""

    calls: list[tuple[dict[str, str], bytes]]
    status: int

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls.append((dict(self.headers), body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    """A real HTTP server on 127.0.0.1 keeping what it is sent: its URL and handler."""
    handler = type("Receiver", (Receiver,), {"calls": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()
    thread.join()


# --- the app and an API client on the workspace ------------------------------------------


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
