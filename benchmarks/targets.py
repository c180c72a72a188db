"""Where a benchmark run puts its data: three separate stores per database kind.

* ``big``: the engine's workspace with N rows,
* ``small``: a second workspace with 10,000 rows (figure 3's baseline),
* ``core``: the plain SQLAlchemy Core table of the baseline.

SQLite: three files in a temporary folder. PostgreSQL: three schemas (reached through
``search_path``) in the ``bench`` database, which is created when missing; the test
suite's ``test`` database is never touched.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from blockscrm.engine.workspace import configure_sqlite

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
STORES = ("big", "small", "core")
SCHEMA_PREFIX = "blocks_bench_"


@dataclass
class Target:
    kind: str
    urls: dict[str, str]
    folder: Path | None = None
    schemas: list[str] = field(default_factory=list)
    server_url: str | None = None

    def core_engine(self) -> sa.Engine:
        """An engine on the baseline's store, set up as the workspace sets up its own."""
        engine = sa.create_engine(self.urls["core"])
        if self.kind == "sqlite":
            # The pragmas and transactions the workspace uses, so the baseline pays what
            # the engine pays per commit.
            configure_sqlite(engine, always_immediate=True)
        return engine

    def cleanup(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        if self.schemas and self.server_url is not None:
            _drop_schemas(self.server_url, self.schemas)


def sqlite_target(parent: str | None = None) -> Target:
    folder = Path(tempfile.mkdtemp(prefix="blocks-bench-", dir=parent))
    return Target("sqlite", {s: f"sqlite:///{folder / (s + '.db')}" for s in STORES},
                  folder=folder)


def postgres_target(url: str) -> Target:
    """Three fresh schemas in the database ``url`` names (created when missing)."""
    base = sa.make_url(url)
    if base.database in (None, "", "test"):
        raise SystemExit("the benchmark needs its own database (default: bench), not "
                         f"{base.database!r}")
    _ensure_database(base)
    schemas = [SCHEMA_PREFIX + s for s in STORES]
    _drop_schemas(url, schemas)
    engine = sa.create_engine(base)
    try:
        with engine.begin() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    finally:
        engine.dispose()
    urls = {s: base.update_query_dict({"options": f"-csearch_path={SCHEMA_PREFIX}{s}"})
            .render_as_string(hide_password=False) for s in STORES}
    return Target("postgresql", urls, schemas=schemas, server_url=url)


def _ensure_database(url: sa.URL) -> None:
    probe = sa.create_engine(url)
    try:
        with probe.connect():
            return
    except sa.exc.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    finally:
        probe.dispose()
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                 {"n": url.database})
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    finally:
        admin.dispose()


def _drop_schemas(url: str, schemas: list[str]) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        engine.dispose()
