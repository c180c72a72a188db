"""Blocks CRM API benchmarks: the REST API's throughput as ratios to a hand-written twin
measured in the same run.

    ./run bench-api                              # 100,000 deals on SQLite
    ./run bench-api --db postgresql              # ... on PostgreSQL (database bench_api)
    ./run bench-api --db both --rows 100000 --duration 15

Two apps serve the same database and the same ``ent_deal`` table (the 15-field ``deal`` of
``workload.py``), each under gunicorn with 2 workers on 127.0.0.1: the platform
(``blockscrm.platform.wsgi:app``) and its twin (``api_twin.py``, plain Flask + SQLAlchemy
Core, which checks the same bearer token but validates nothing and checks no permission).
The caller holds a role that may read and create every deal. Figures, each the platform's
requests per second / the twin's:

1. ``GET /api/v1/records/deal/<id>``, both sides cycling through the same 1,000 ids
   (target >= 0.6);
2. ``GET /api/v1/records/deal?filter=stage == "won"&sort=-close_date&limit=20`` on N deals,
   served by the ``(stage, close_date)`` index; the twin runs the same SELECT, written by
   hand (target >= 0.6);
3. ``POST /api/v1/records/deal`` of one 15-field deal; the twin does one INSERT, without
   validation or audit trail (target >= 0.5).

The load comes from wrk (``apt-get install wrk``), on loopback. Each figure warms both
sides up, then times them in turns (platform, twin, platform, twin ...) of equal length,
so both see the same machine load; a side's figure is its requests over its seconds.
Nothing is asserted: progress lines go to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from run import engine_version, load_engine, log, new_workspace
from targets import Target, postgres_target, sqlite_target
from workload import account_values, deal_values

from blockscrm.engine import Workspace

HERE = Path(__file__).resolve().parent
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_api"
SECRET = "blocks-bench-api"
ACCOUNTS = 1_000
READ_IDS = 1_000
WORKERS = 2
RECORDS = "/api/v1/records/deal"
LIST_QUERY = {"filter": 'stage == "won"', "sort": "-close_date", "limit": "20"}
ROLE = {"kind": "role", "name": "sales", "label": {"en": "Sales"},
        "permissions": {"*": {"create": True, "read": "all", "update": "all"}}}
PLATFORM_APP = "blockscrm.platform.wsgi:app"
TWIN_APP = "api_twin:app"
SERVER_START = 60.0  # seconds a server may take to answer its first request
#: wrk's report at the end of a run, one line a script's ``done`` writes.
DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# --- the data -------------------------------------------------------------------------------


@dataclass
class Fixture:
    """What the load needs from the loaded workspace."""

    token: str
    ids: list[str]
    body: dict[str, Any]


def load(url: str, rows: int, seed: int, batch: int) -> Fixture:
    """The deal entity with ``rows`` deals, a ``sales`` user and their API token."""
    ws = new_workspace(url)
    try:
        ws.metadata.create(ROLE)
        ws.metadata.publish()
        accounts = ws.records.bulk_insert("account", account_values(ACCOUNTS)).ids
        load_engine(ws, deal_values(seed, rows, accounts), rows, batch, "deals")
        if ws.dialect == "postgresql":
            with ws.transaction() as conn:
                conn.exec_driver_sql("ANALYZE")  # what autovacuum would do after a load
        user = ws.accounts.create_user("bench", roles=["sales"])
        return Fixture(ws.accounts.issue_token(user, "bench"), spread_ids(ws, READ_IDS),
                       new_deal(seed + 1, accounts))
    finally:
        ws.close()


def spread_ids(ws: Workspace, count: int) -> list[str]:
    """``count`` ids spread evenly over the table, so reads do not hit one hot page."""
    table = ws.entity("deal").table
    with ws.reading() as conn:
        ids = conn.scalars(sa.select(table.c.id).order_by(table.c.id)).all()
    return list(ids[::max(1, len(ids) // count)][:count])


def new_deal(seed: int, accounts: list[str]) -> dict[str, Any]:
    """The body every create sends: a deal with every field, its account included."""
    for values in deal_values(seed, 100, accounts):
        if values["account"] and values["close_date"] and values["tags"]:
            return values
    raise RuntimeError("no generated deal has every field")


# --- the servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]


@contextmanager
def gunicorn(app: str, env: dict[str, str], folder: Path, worker_class: str
             ) -> Iterator[Server]:
    """A gunicorn with 2 workers serving ``app`` on loopback, stopped (by its PID, its
    workers with it) however the block ends."""
    port = free_port()
    errors = folder / f"{app.split(':')[0].replace('.', '_')}.log"
    command = [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS),
               "--worker-class", worker_class, "--bind", f"127.0.0.1:{port}",
               "--pythonpath", str(HERE), "--graceful-timeout", "5",
               "--error-logfile", str(errors), app]
    with errors.open("w") as log_file:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    log(f"  started {app} (pid {process.pid}) on port {port}")
    try:
        yield Server(f"http://127.0.0.1:{port}", process)
    finally:
        stop(process)
        if process.returncode not in (0, -signal.SIGTERM):
            log(f"  {app} exited with {process.returncode}; the end of its log:\n"
                + "\n".join(errors.read_text().splitlines()[-20:]))


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the gunicorn master (it stops its workers), SIGKILL to its process
    group (the one it was started in) if it is still there after 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    log(f"  stopped pid {process.pid}")


# --- HTTP -----------------------------------------------------------------------------------


def call(base: str, path: str, token: str, body: dict[str, Any] | None = None,
         timeout: float = 10.0) -> tuple[int, Any]:
    """One request (a POST when there is a body); answers its status and JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")[:300]


def wait_ready(server: Server, path: str, token: str) -> None:
    """Poll until the server answers ``path`` with 200, for at most SERVER_START seconds
    (and no longer than it lives)."""
    deadline = time.monotonic() + SERVER_START
    while True:
        try:
            status, answer = call(server.base, path, token, timeout=SERVER_START)
            if status == 200:
                return
            raise RuntimeError(f"{server.base}{path} answered {status}: {answer}")
        except (ConnectionError, urllib.error.URLError):
            if server.process.poll() is not None:
                raise RuntimeError(f"the server exited with {server.process.returncode}"
                                   ) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def list_path() -> str:
    return RECORDS + "?" + urllib.parse.urlencode(LIST_QUERY, quote_via=urllib.parse.quote)


def same_answers(bases: dict[str, str], fixture: Fixture) -> None:
    """Both sides answer the benchmark's requests alike: the same record, the same 20 ids
    in the same order, and a 201 for a create."""
    read = {side: call(base, f"{RECORDS}/{fixture.ids[0]}", fixture.token)
            for side, base in bases.items()}
    listed = {side: call(base, list_path(), fixture.token) for side, base in bases.items()}
    created = {side: call(base, RECORDS, fixture.token, fixture.body)
               for side, base in bases.items()}
    platform, twin = read["platform"][1], read["twin"][1]
    if platform != twin:
        raise RuntimeError(f"the read differs:\n  platform {platform}\n  twin     {twin}")
    ids = {side: [r["id"] for r in answer[1]["items"]] for side, answer in listed.items()}
    if ids["platform"] != ids["twin"] or len(ids["twin"]) != int(LIST_QUERY["limit"]):
        raise RuntimeError(f"the lists differ: {ids}")
    if {status for status, _ in created.values()} != {201}:
        raise RuntimeError(f"a create failed: {created}")
    log("  both sides answer alike (read, list of 20, create)")


# --- load -----------------------------------------------------------------------------------


@dataclass
class Load:
    """One figure's requests, as a wrk script."""

    code: str
    name: str
    target: float
    path: str
    lua: str


def loads(fixture: Fixture) -> list[Load]:
    auth = f'wrk.headers["Authorization"] = "Bearer {fixture.token}"\n'
    ids = ", ".join(f'"{i}"' for i in fixture.ids)
    read = (f"local ids = {{{ids}}}\nlocal n = 0\n"
            "request = function()\n  n = n % #ids + 1\n"
            f'  return wrk.format("GET", "{RECORDS}/" .. ids[n])\nend\n')
    create = ('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
              f"wrk.body = [==[{json.dumps(fixture.body)}]==]\n")
    return [
        Load("1", f"GET one record ({len(fixture.ids):,} ids in turn)", 0.6, RECORDS,
             auth + read),
        Load("2", "GET list: stage == won, sort -close_date, limit 20", 0.6, list_path(),
             auth),
        Load("3", "POST create (twin: INSERT, no validation)", 0.5, RECORDS, auth + create),
    ]


@dataclass
class Tally:
    """Requests and seconds a side has done; ``errors`` counts failed requests."""

    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    turns: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk(base: str, load: Load, script: Path, seconds: float, connections: int) -> Tally:
    """One wrk run of ``seconds`` on one side (one thread, ``connections`` connections)."""
    command = ["wrk", "--threads", "1", "--connections", str(connections),
               "--duration", f"{seconds:g}s", "--timeout", "10s", "--script", str(script),
               base + load.path]
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          timeout=seconds + 60)
    report = [line for line in done.stdout.splitlines() if line.startswith("WRK ")]
    if not report:
        raise RuntimeError(f"wrk gave no report:\n{done.stdout}\n{done.stderr}")
    requests, micros, *errors = map(int, report[-1].split()[1:])
    return Tally(requests, micros / 1e6, sum(errors), [requests / (micros / 1e6)])


def measure(bases: dict[str, str], load: Load, folder: Path, args: argparse.Namespace
            ) -> dict[str, Tally]:
    """Warm both sides up, then time them in turns; answers each side's totals."""
    script = folder / f"load{load.code}.lua"
    script.write_text(load.lua + DONE_LUA)
    for base in bases.values():
        wrk(base, load, script, args.warmup, args.connections)
    totals = {side: Tally() for side in bases}
    turn = args.duration / args.turns
    for n in range(args.turns):
        for side, base in bases.items():
            got = wrk(base, load, script, turn, args.connections)
            tally = totals[side]
            tally.requests += got.requests
            tally.seconds += got.seconds
            tally.errors += got.errors
            tally.turns += got.turns
        log(f"    turn {n + 1}/{args.turns}: " + ", ".join(
            f"{side} {totals[side].turns[-1]:,.0f} req/s" for side in bases))
    return totals


# --- reporting ------------------------------------------------------------------------------


@dataclass
class Figure:
    db: str
    rows: int
    load: Load
    platform: Tally
    twin: Tally

    @property
    def ratio(self) -> float:
        return self.platform.rate / self.twin.rate if self.twin.rate else 0.0

    def cells(self) -> list[str]:
        def rate(tally: Tally) -> str:
            spread = f"{min(tally.turns):,.0f}-{max(tally.turns):,.0f}"
            failed = f", {tally.errors:,} failed" if tally.errors else ""
            return f"{tally.rate:,.0f} ({spread}{failed})"

        met = "yes" if self.ratio >= self.load.target else "NO"
        return [self.db, f"{self.rows:,}", f"{self.load.code} {self.load.name}",
                rate(self.platform), rate(self.twin), f"{self.ratio:.2f}",
                f">= {self.load.target}", met]


HEADER = ["db", "rows", "figure", "platform req/s (turns)", "twin req/s (turns)", "ratio",
          "target", "met"]


def table(figures: list[Figure]) -> str:
    rows = [HEADER] + [f.cells() for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def method(args: argparse.Namespace) -> str:
    """How the figures were measured, printed under the table."""
    turn = args.duration / args.turns
    return (
        f"Both apps: gunicorn, {WORKERS} {args.worker_class} workers each, on 127.0.0.1, "
        "the same database and table.\n"
        f"Load: wrk, 1 thread, {args.connections} connections; per figure and side a "
        f"{args.warmup:g} s warm-up, then {args.turns} turns of {turn:g} s,\n"
        "platform and twin alternating; req/s = requests / seconds over the turns "
        "(in brackets: slowest-fastest turn).\n"
        "ratio = platform req/s / twin req/s (higher is better). The twin checks the "
        "token (SHA-256 in blocks_tokens)\n"
        "but validates nothing, checks no permission, keeps no audit trail and signs no "
        "cursor.")


# --- main -----------------------------------------------------------------------------------


def run_database(kind: str, target: Target, args: argparse.Namespace) -> list[Figure]:
    url = target.urls["big"]
    log(f"\n== {kind}: {args.rows:,} deals ==")
    start = time.perf_counter()
    fixture = load(url, args.rows, args.seed, args.batch_size)
    log(f"  loaded in {time.perf_counter() - start:.0f} s")
    folder = Path(tempfile.mkdtemp(prefix="blocks-bench-api-"))
    env = {"DATABASE_URL": url, "BLOCKS_SECRET_KEY": SECRET,
           "BLOCKS_INSTANCE_PATH": str(folder)}
    try:
        with ExitStack() as servers:
            started = {side: servers.enter_context(gunicorn(app, env, folder,
                                                            args.worker_class))
                       for side, app in (("platform", PLATFORM_APP), ("twin", TWIN_APP))}
            for server in started.values():
                wait_ready(server, f"{RECORDS}/{fixture.ids[0]}", fixture.token)
            bases = {side: server.base for side, server in started.items()}
            same_answers(bases, fixture)
            figures = []
            for load_ in loads(fixture):
                log(f"  {load_.code}. {load_.name}")
                totals = measure(bases, load_, folder, args)
                figures.append(Figure(kind, args.rows, load_, totals["platform"],
                                      totals["twin"]))
                log("  => " + "  ".join(figures[-1].cells()[3:]))
            return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000, help="N (default 100,000)")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--duration", type=float, default=15.0,
                        help="seconds each side is timed per figure (default 15)")
    parser.add_argument("--turns", type=int, default=5,
                        help="turns the duration is split into (default 5)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of warm-up per side and figure (default 2)")
    parser.add_argument("--connections", type=int, default=4,
                        help="wrk's open connections (default 4, two per worker)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn's (default sync)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="a database of its own (created when missing)")
    parser.add_argument("--tmpdir", default=None, help="where the SQLite files go")
    args = parser.parse_args(argv)
    if args.rows < READ_IDS:
        parser.error(f"--rows must be at least {READ_IDS:,}")
    if args.duration <= 0 or args.turns < 1 or args.warmup < 1:
        parser.error("--duration must be positive, --turns and --warmup at least 1")
    if shutil.which("wrk") is None:
        parser.error("the load generator wrk is missing: apt-get install -y wrk")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # A SIGTERM unwinds like an error, so the servers are stopped and the data dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    figures: list[Figure] = []
    for kind in kinds:
        target = (sqlite_target(args.tmpdir) if kind == "sqlite"
                  else postgres_target(args.postgres_url))
        start = time.perf_counter()
        try:
            figures += run_database(kind, target, args)
        finally:
            target.cleanup()
        log(f"  {kind} done in {time.perf_counter() - start:.0f} s")
    print(f"\nBlocks CRM API benchmarks: N = {args.rows:,} deals (15 fields), seed "
          f"{args.seed}; engine {engine_version()}\n")
    print(table(figures))
    print()
    print(method(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
