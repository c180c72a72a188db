"""The hand-written twin of the platform's three record routes, the baseline of ``api.py``.

What a developer would write for one entity without Blocks CRM: plain Flask and SQLAlchemy
Core on the same database and the same ``ent_deal`` table, serving

* ``GET /api/v1/records/deal/<id>``: one row by primary key;
* ``GET /api/v1/records/deal``: the one list the benchmark asks for, hand-coded (stage
  ``won``, newest close date first, ties by id, ``limit`` rows); it parses no filter;
* ``POST /api/v1/records/deal``: one INSERT of the JSON body with the system columns
  filled in. It validates nothing, checks no permission and writes no audit trail.

It pays for authentication as the platform does: the bearer token's SHA-256 looked up in
``blocks_tokens`` (the way ``engine/accounts.py`` stores tokens) on every request.

    DATABASE_URL=sqlite:///crm.db gunicorn -w 2 --pythonpath benchmarks api_twin:app
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import os
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, jsonify, request
from workload import core_row

#: An execution option marking a write, so SQLite takes its write lock at BEGIN.
WRITE = "twin_write"
TOKEN_USER = sa.text(
    "SELECT t.user_id FROM blocks_tokens t JOIN blocks_users u ON u.id = t.user_id "
    "WHERE t.digest = :digest AND t.revoked_at IS NULL AND u.active")


def sqlite_setup(engine: sa.Engine) -> None:
    """The pragmas and transactions the workspace uses on SQLite (WAL, synchronous NORMAL,
    ``BEGIN IMMEDIATE`` for writes), so each commit costs the twin what it costs the
    platform."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        for pragma in ("journal_mode=WAL", "busy_timeout=10000", "synchronous=NORMAL"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get(WRITE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def plain(value: Any) -> Any:
    """A column value as JSON, in the platform's shapes (ISO dates, numbers as numbers)."""
    if isinstance(value, dt.datetime):
        return value.isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def as_json(row: Any) -> dict[str, Any]:
    return {key: plain(value) for key, value in row.items()}


def create_app() -> Flask:
    """The twin on ``DATABASE_URL``, with ``ent_deal`` read from the database."""
    engine = sa.create_engine(os.environ["DATABASE_URL"])
    if engine.dialect.name == "sqlite":
        sqlite_setup(engine)
    deals = sa.Table("ent_deal", sa.MetaData(), autoload_with=engine)
    app = Flask(__name__)

    @app.before_request
    def authenticate() -> tuple[Response, int] | None:
        header = request.headers.get("Authorization", "")
        digest = hashlib.sha256(header.removeprefix("Bearer ").strip().encode()).hexdigest()
        with engine.connect() as conn:
            user_id = conn.execute(TOKEN_USER, {"digest": digest}).scalar()
        if not header.startswith("Bearer ") or user_id is None:
            return jsonify(title="the token is unknown or revoked"), 401
        return None

    @app.get("/api/v1/records/deal/<record_id>")
    def get_deal(record_id: str) -> Any:
        with engine.connect() as conn:
            row = conn.execute(sa.select(deals).where(deals.c.id == record_id)
                               ).mappings().first()
        if row is None:
            return jsonify(title="not found"), 404
        return jsonify(as_json(row))

    @app.get("/api/v1/records/deal")
    def list_deals() -> Any:
        limit = min(int(request.args.get("limit", 50)), 1000)
        query = (sa.select(deals).where(deals.c.stage == "won")
                 .order_by(deals.c.close_date.desc().nulls_first(), deals.c.id.desc())
                 .limit(limit))
        with engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return jsonify(items=[as_json(r) for r in rows])

    @app.post("/api/v1/records/deal")
    def create_deal() -> Any:
        row = core_row(request.get_json(), dt.datetime.now(dt.UTC).replace(tzinfo=None))
        with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            conn.execute(deals.insert(), row)
        response = jsonify(as_json(row))
        response.status_code = 201
        response.headers["Location"] = f"/api/v1/records/deal/{row['id']}"
        return response

    return app


app = create_app()
