"""Blocks CRM automation benchmarks: rules and their jobs, as ratios to a baseline measured
in the same run.

    ./run bench-auto                             # SQLite
    ./run bench-auto --db both                   # ... then PostgreSQL (database bench_auto)
    ./run bench-auto --records 2000 --turns 4 --samples 400

Figures 1 and 2 run real workers (RQ SimpleWorkers, started as processes) on a Redis
database of their own (``--redis-url``, default ``redis://127.0.0.1:6379/14``, flushed
before and after). Their rule: on ``created``, asynchronously, set a field (``set_fields``).

1. Record saved → asynchronous action done, with one ``blocks worker`` running: records
   are saved one at a time, every 50 ms, each from the moment its save commits to its
   run's ``finished_at``; p50 and p99. Baseline: a bare no-op RQ job, on a queue of its own
   that the same worker also listens to, from just before ``enqueue`` to the job's
   ``ended_at``. The sides take turns of equal size. No target; ratio = baseline p50 / p50.
2. Automation jobs per second vs bare no-op RQ jobs (target >= 0.5): N records bulk
   inserted with no worker running queue N runs, then one ``blocks worker --burst`` drains
   them; the baseline's N no-op jobs are drained by ``rq worker --burst`` (a SimpleWorker).
   A side's jobs/s counts, from RQ's timestamps, the jobs after the first over the seconds
   from the first one's end to the last one's: neither worker's start-up, nor the first
   job (which opens the workspace), is timed. The sides alternate in turns; ratio =
   automation jobs/s / no-op jobs/s.
3. ``records.create`` (3b: ``records.update``) through the engine, in-process, on an entity
   with 20 active rules (created, updated with and without named fields, transition and
   deleted triggers; sync and async) none of which matches the saved values, vs on an
   identical entity (the same fields and workflow) with none, alternating call by call;
   ratio = median time without rules / with 20 (target >= 0.5).

Nothing is asserted: progress lines go to stderr, the table to stdout. Every process the
benchmark starts is stopped by its PID, whatever happens.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from noop_job import noop
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from run import Figure, engine_version, log, seconds, table
from targets import Target, postgres_target, sqlite_target

from blockscrm.engine import Workspace
from blockscrm.engine.jobs import QUEUE
from blockscrm.engine.store import run_table

T = TypeVar("T")
HERE = Path(__file__).resolve().parent
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_auto"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
TEST_REDIS_DB = 15  # the test suite's: never flushed by a benchmark
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SECRET = "blocks-bench-auto"
NOOP_QUEUE = "bench-noop"
#: The stores of ``targets.py`` used: the workers' workspace (1, 2), the saves' (3).
JOBS_STORE, SAVES_STORE = "big", "small"
PACE = 0.05  # seconds between two saves (or two no-op jobs) of figure 1
WARMUP = 5  # calls of each side left out before timing
WAIT = 120.0  # the longest wait for a worker, in seconds
RESULT_TTL = 3600  # what the engine gives its own jobs, so both sides keep their timestamps
BLOCKS_WORKER = [sys.executable, "-m", "blockscrm.platform.cli", "worker"]

TICKET = {"kind": "entity", "name": "ticket", "label": {"en": "Ticket"},
          "properties": {"subject": {"type": "string"}, "score": {"type": "integer"}}}
TOUCH = {"kind": "automation", "name": "touch", "label": {"en": "Touch"}, "entity": "ticket",
         "trigger": {"on": "created"}, "mode": "async",
         "actions": [{"type": "set_fields", "values": {"score": 1}}]}
#: Figure 3's twins: the same fields and workflow, rules on ``ruled`` only.
BARE, RULED = "bare", "ruled"
NEVER = "amount > 1000000000"  # saved amounts stay far below it
#: Figure 3's 20 rules: (trigger, condition, mode); none matches what the benchmark saves.
RULES: list[tuple[dict[str, Any], str | None, str]] = [
    ({"on": "created"}, NEVER, "sync"),
    ({"on": "created"}, NEVER, "async"),
    ({"on": "created"}, 'priority == "high"', "sync"),
    ({"on": "created"}, 'priority == "high"', "async"),
    ({"on": "created"}, "score < 0", "sync"),
    ({"on": "created"}, 'name == "never"', "async"),
    ({"on": "updated", "fields": ["amount"]}, 'amount > previous("amount") * 1000', "sync"),
    ({"on": "updated", "fields": ["amount"]}, NEVER, "async"),
    ({"on": "updated", "fields": ["amount", "priority"]},
     f'priority == "high" and {NEVER}', "sync"),
    ({"on": "updated", "fields": ["priority"]}, 'priority == "high"', "sync"),
    ({"on": "updated", "fields": ["priority"]}, 'priority == "high"', "async"),
    ({"on": "updated", "fields": ["close_date"]}, None, "sync"),
    ({"on": "updated", "fields": ["notes"]}, None, "async"),
    ({"on": "updated"}, 'changed("priority") and priority == "high"', "sync"),
    ({"on": "updated"}, "score < 0", "async"),
    ({"on": "transition", "transition": "win"}, NEVER, "sync"),
    ({"on": "transition", "transition": "lose"}, None, "async"),
    ({"on": "transition"}, "score < 0", "sync"),
    ({"on": "deleted"}, None, "sync"),
    ({"on": "deleted"}, NEVER, "async"),
]


def lead(name: str) -> dict[str, Any]:
    return {"kind": "entity", "name": name, "label": {"en": name.title()}, "required": ["name"],
            "properties": {"name": {"type": "string", "maxLength": 200},
                           "amount": {"type": "number", "minimum": 0},
                           "priority": {"type": "string", "enum": ["low", "high"],
                                        "x-field": "select"},
                           "score": {"type": "integer"},
                           "close_date": {"type": "string", "format": "date"},
                           "notes": {"x-field": "long_text"}}}


def flow(entity: str) -> dict[str, Any]:
    return {"kind": "workflow", "name": f"{entity}_flow", "label": {"en": "Flow"},
            "entity": entity, "initial": "open",
            "states": [{"name": s, "label": {"en": s.title()}} for s in ("open", "won", "lost")],
            "transitions": [{"name": "win", "from": ["open"], "to": "won"},
                            {"name": "lose", "from": "*", "to": "lost"}]}


def rules(entity: str) -> list[dict[str, Any]]:
    documents = []
    for n, (trigger, condition, mode) in enumerate(RULES, 1):
        action = ({"type": "notify", "title": "gone"} if trigger["on"] == "deleted"
                  else {"type": "set_fields", "values": {"priority": "high"}})
        document = {"kind": "automation", "name": f"rule_{n:02d}", "label": {"en": f"{n}"},
                    "entity": entity, "trigger": trigger, "mode": mode, "actions": [action]}
        if condition is not None:
            document["condition"] = condition
        documents.append(document)
    return documents


def publish(ws: Workspace, *documents: dict[str, Any]) -> Workspace:
    for document in documents:
        ws.metadata.create(document)
    ws.metadata.publish()
    return ws


# --- processes ------------------------------------------------------------------------------


@dataclass
class Workers:
    """What worker processes run with: the environment ``blocks worker`` reads (and this
    folder on the path, for the no-op job), and the folder for their logs."""

    env: dict[str, str]
    folder: Path

    @classmethod
    def make(cls, database_url: str, redis_url: str, folder: Path) -> Workers:
        path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
        return cls({**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                    "BLOCKS_SECRET_KEY": SECRET, "BLOCKS_INSTANCE_PATH": str(folder),
                    "PYTHONPATH": path}, folder)

    @contextmanager
    def running(self, command: list[str], name: str) -> Iterator[subprocess.Popen[bytes]]:
        """A long-lived worker, stopped by its PID however the block ends."""
        path = self.folder / f"{name}.log"
        with path.open("ab") as out:
            process = subprocess.Popen(command, env=self.env, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        log(f"  started {name} (pid {process.pid})")
        try:
            yield process
        finally:
            stop(process)

    def burst(self, command: list[str], name: str) -> float:
        """Run a burst worker to its end (killed by its PID if it outlives WAIT); answers
        its wall-clock seconds, start-up included."""
        path = self.folder / f"{name}.log"
        start = time.perf_counter()
        with path.open("ab") as out:
            done = subprocess.run(command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=WAIT, check=False, start_new_session=True)
        if done.returncode != 0:
            raise RuntimeError(f"{name} exited with {done.returncode}:\n{tail(path)}")
        return time.perf_counter() - start

    def log_tail(self, name: str) -> str:
        return tail(self.folder / f"{name}.log")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (RQ's warm shutdown), then SIGKILL if it is still there after 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    log(f"  stopped pid {process.pid}")


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def poll(fetch: Callable[[], T], ready: Callable[[T], bool], what: str,
         worker: subprocess.Popen[bytes] | None = None) -> T:
    """``fetch()`` every 20 ms until ``ready`` says yes, for at most WAIT seconds, and no
    longer than ``worker`` lives."""
    deadline = time.monotonic() + WAIT
    while True:
        value = fetch()
        if ready(value):
            return value
        if worker is not None and worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode} before {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {WAIT:.0f} s")
        time.sleep(0.02)


def epoch(moment: dt.datetime) -> float:
    """Seconds since the epoch of a datetime, naive ones being UTC (as the engine's are)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


# --- 1. latency -----------------------------------------------------------------------------


class Stamp:
    """Called after a save commits: the wall-clock time it committed."""

    at = 0.0

    def __call__(self) -> None:
        self.at = time.time()


def paced(count: int) -> Iterator[int]:
    """0 … count - 1, one every PACE seconds."""
    start = time.monotonic()
    for i in range(count):
        delay = start + i * PACE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield i


def saved_latencies(ws: Workspace, count: int, worker: subprocess.Popen[bytes]
                    ) -> list[float]:
    """Seconds from each paced save's commit to its run's ``finished_at``. The save sits
    in an outer transaction whose first after-commit work is the stamp, so the stamp is
    taken at the commit, before the engine enqueues the job."""
    commits: dict[str, float] = {}
    for i in paced(count):
        stamp = Stamp()
        with ws.transaction():
            ws.after_commit(stamp)
            record = ws.records.create("ticket", {"subject": f"paced {i}"})
        commits[record["id"]] = stamp.at
    query = sa.select(run_table.c.record_id, run_table.c.status, run_table.c.finished_at
                      ).where(run_table.c.record_id.in_(list(commits)))

    def fetch() -> list[sa.Row[Any]]:
        with ws.reading() as conn:
            return list(conn.execute(query))

    rows = poll(fetch, lambda rs: len(rs) == count and all(
        r.status not in ("queued", "running") for r in rs), "the runs are done", worker)
    failed = [r for r in rows if r.status != "done"]
    if failed:
        raise RuntimeError(f"{len(failed)} runs ended {failed[0].status}")
    return [epoch(r.finished_at) - commits[r.record_id] for r in rows]


def noop_latencies(queue: Queue, count: int, worker: subprocess.Popen[bytes]
                   ) -> list[float]:
    """Seconds from just before each paced no-op job's ``enqueue`` to its ``ended_at``."""
    sent: dict[str, float] = {}
    for _ in paced(count):
        start = time.time()
        sent[queue.enqueue(noop, result_ttl=RESULT_TTL).id] = start
    jobs = poll(lambda: Job.fetch_many(list(sent), connection=queue.connection),
                lambda js: all(j is not None and j.ended_at is not None for j in js),
                "the no-op jobs are done", worker)
    return [epoch(j.ended_at) - sent[j.id] for j in jobs if j is not None and j.ended_at]


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` 0.99 is p99)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency(ws: Workspace, queues: dict[str, Queue], workers: Workers,
            args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Figure 1: one ``blocks worker`` on both queues; saves and no-op jobs in turns."""
    command = [*BLOCKS_WORKER, "--queue", QUEUE, "--queue", NOOP_QUEUE]
    per_turn = max(1, args.samples // args.turns)
    rule_side: list[float] = []
    noop_side: list[float] = []
    with workers.running(command, "worker-latency") as worker:
        saved_latencies(ws, WARMUP, worker)
        noop_latencies(queues[NOOP_QUEUE], WARMUP, worker)
        for turn in range(args.turns):
            rule_side += saved_latencies(ws, per_turn, worker)
            noop_side += noop_latencies(queues[NOOP_QUEUE], per_turn, worker)
            log(f"    turn {turn + 1}/{args.turns}: save → done p50 "
                f"{seconds(statistics.median(rule_side[-per_turn:]))}, no-op p50 "
                f"{seconds(statistics.median(noop_side[-per_turn:]))}")
    return rule_side, noop_side


# --- 2. throughput --------------------------------------------------------------------------


@dataclass
class Tally:
    """Jobs and seconds a side has drained over its turns."""

    jobs: int = 0
    seconds: float = 0.0
    turns: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0

    def add(self, jobs: int, seconds_: float) -> None:
        self.jobs, self.seconds = self.jobs + jobs, self.seconds + seconds_
        self.turns.append(jobs / seconds_)

    def cell(self) -> str:
        return f"{self.rate:,.0f} jobs/s ({min(self.turns):,.0f}-{max(self.turns):,.0f})"


def drained(queue: Queue, ids: list[str]) -> tuple[int, float]:
    """From RQ's timestamps: the jobs after the first, and the seconds from the first
    one's end to the last one's."""
    jobs = Job.fetch_many(ids, connection=queue.connection)
    ends = sorted(epoch(j.ended_at) for j in jobs if j is not None and j.ended_at
                  and j.get_status(refresh=False) == JobStatus.FINISHED)
    if len(ends) != len(ids) or len(ends) < 2:
        raise RuntimeError(f"{len(ends)} of {len(ids)} jobs finished")
    return len(ends) - 1, ends[-1] - ends[0]


def automation_turn(ws: Workspace, queue: Queue, workers: Workers, count: int
                    ) -> tuple[int, float]:
    """Queue ``count`` runs by a bulk insert, then drain them with a burst worker."""
    result = ws.records.bulk_insert("ticket", ({"subject": f"bulk {i}"} for i in range(count)),
                                    batch_size=1000)
    ids = queue.job_ids
    if result.inserted != count or len(ids) != count:
        raise RuntimeError(f"{result.inserted} records and {len(ids)} jobs, not {count}")
    wall = workers.burst([*BLOCKS_WORKER, "--burst"], "worker-burst")
    with ws.reading() as conn:
        left = conn.scalar(sa.select(sa.func.count()).select_from(run_table)
                           .where(run_table.c.status != "done"))
    if left:
        raise RuntimeError(f"{left} runs are not done:\n{workers.log_tail('worker-burst')}")
    log(f"      blocks worker --burst: {wall:.1f} s wall-clock")
    return drained(queue, ids)


def noop_turn(queue: Queue, workers: Workers, count: int, redis_url: str
              ) -> tuple[int, float]:
    """Queue ``count`` no-op jobs, then drain them with a burst RQ SimpleWorker."""
    ids = [queue.enqueue(noop, result_ttl=RESULT_TTL).id for _ in range(count)]
    command = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--worker-class",
               "rq.worker.SimpleWorker", "--url", redis_url, NOOP_QUEUE]
    wall = workers.burst(command, "rq-burst")
    log(f"      rq worker --burst: {wall:.1f} s wall-clock")
    return drained(queue, ids)


def throughput(ws: Workspace, queues: dict[str, Queue], workers: Workers,
               args: argparse.Namespace) -> tuple[Tally, Tally]:
    """Figure 2: the two sides drain ``--records`` jobs each, in turns."""
    rule_side, noop_side = Tally(), Tally()
    for turn in range(args.turns):
        rule_side.add(*automation_turn(ws, queues[QUEUE], workers, args.records))
        noop_side.add(*noop_turn(queues[NOOP_QUEUE], workers, args.records, args.redis_url))
        log(f"    turn {turn + 1}/{args.turns}: automation {rule_side.turns[-1]:,.0f} jobs/s,"
            f" no-op {noop_side.turns[-1]:,.0f} jobs/s")
    return rule_side, noop_side


# --- 3. saves with and without rules --------------------------------------------------------


def alternate(calls: dict[str, Callable[[int], Any]], count: int) -> dict[str, list[float]]:
    """Seconds of each side's calls, side by side call by call (which goes first swaps
    each time), after WARMUP untimed calls."""
    times: dict[str, list[float]] = {side: [] for side in calls}
    sides = list(calls)
    for i in range(WARMUP + count):
        for side in sides if i % 2 == 0 else sides[::-1]:
            start = time.perf_counter()
            calls[side](i)
            elapsed = time.perf_counter() - start
            if i >= WARMUP:
                times[side].append(elapsed)
    return times


def save_costs(ws: Workspace, count: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds of a create, then of an update, per entity."""
    active = {e: sum(a.enabled for a in ws.entity(e).automations) for e in (BARE, RULED)}
    if active != {BARE: 0, RULED: len(RULES)}:
        raise RuntimeError(f"active rules {active}, not {len(RULES)} on {RULED} only")
    ids: dict[str, list[str]] = {BARE: [], RULED: []}

    def create(entity: str) -> Callable[[int], Any]:
        return lambda i: ids[entity].append(ws.records.create(entity, {
            "name": f"Lead {i}", "amount": 100 + i, "score": 5, "notes": "Met at a fair."}
        )["id"])

    def update(entity: str) -> Callable[[int], Any]:
        return lambda i: ws.records.update(entity, ids[entity][i], {"amount": 200 + i})

    created = alternate({e: create(e) for e in ids}, count)
    updated = alternate({e: update(e) for e in ids}, count)
    with ws.reading() as conn:
        fired = conn.scalar(sa.select(sa.func.count()).select_from(run_table))
    if fired:
        raise RuntimeError(f"{fired} runs were logged: a rule matched, so figure 3 would "
                           "not time rules that do not match")
    return ({e: statistics.median(t) for e, t in created.items()},
            {e: statistics.median(t) for e, t in updated.items()})


# --- a database -----------------------------------------------------------------------------


@contextmanager
def guarded(figures: list[Figure], kind: str, code: str) -> Iterator[None]:
    """A figure that fails is reported as failed; the others still run."""
    try:
        yield
    except Exception as exc:
        log(traceback.format_exc())
        figures.append(Figure(kind, f"{code} failed: {type(exc).__name__}", "—",
                              str(exc).splitlines()[0][:60], None, "—", None))


def run_database(kind: str, target: Target, redis: Redis, args: argparse.Namespace
                 ) -> list[Figure]:
    figures: list[Figure] = []

    def add(*cells: Any) -> None:
        figures.append(Figure(kind, *cells))
        log("  => " + "  ".join(figures[-1].cells()[1:]))

    log(f"\n== {kind} ==")
    folder = Path(tempfile.mkdtemp(prefix="blocks-bench-auto-"))
    jobs_ws = publish(Workspace(target.urls[JOBS_STORE], secret=SECRET,
                                redis_url=args.redis_url), TICKET, TOUCH)
    saves_ws = publish(Workspace(target.urls[SAVES_STORE], secret=SECRET,
                                 redis_url=args.redis_url),
                       lead(BARE), lead(RULED), flow(BARE), flow(RULED), *rules(RULED))
    workers = Workers.make(jobs_ws.url, args.redis_url, folder)
    queues = {name: Queue(name, connection=redis) for name in (QUEUE, NOOP_QUEUE)}
    try:
        with guarded(figures, kind, "1"):
            redis.flushdb()
            log(f"  1. save → async action done, {args.samples} saves and no-op jobs, "
                f"one every {PACE * 1000:.0f} ms, in {args.turns} turns")
            rule_side, noop_side = latency(jobs_ws, queues, workers, args)
            p50, p50_noop = statistics.median(rule_side), statistics.median(noop_side)
            add("1 save → async action done (one worker)",
                f"no-op job p50 {seconds(p50_noop)}, p99 {seconds(percentile(noop_side, .99))}",
                f"p50 {seconds(p50)}, p99 {seconds(percentile(rule_side, .99))}",
                p50_noop / p50, "—", None)
        with guarded(figures, kind, "2"):
            redis.flushdb()
            log(f"  2. {args.records:,} jobs per turn drained by one burst worker, "
                f"{args.turns} turns")
            rule_tally, noop_tally = throughput(jobs_ws, queues, workers, args)
            ratio = rule_tally.rate / noop_tally.rate
            add(f"2 jobs/s, {args.records:,} a turn", f"no-op {noop_tally.cell()}",
                rule_tally.cell(), ratio, ">= 0.5", ratio >= 0.5)
        with guarded(figures, kind, "3"):
            log(f"  3. {args.saves} creates then updates on each entity, alternating")
            created, updated = save_costs(saves_ws, args.saves)
            for code, what, times in (("3", "create", created), ("3b", "update", updated)):
                ratio = times[BARE] / times[RULED]
                add(f"{code} {what}: {len(RULES)} rules vs none", f"none {seconds(times[BARE])}",
                    f"{len(RULES)} rules {seconds(times[RULED])}", ratio, ">= 0.5",
                    ratio >= 0.5)
    finally:
        redis.flushdb()
        jobs_ws.close()
        saves_ws.close()
        shutil.rmtree(folder, ignore_errors=True)
    return figures


# --- main -----------------------------------------------------------------------------------


LEGEND = """\
ratio: 1 = no-op job p50 / save → done p50 (for scale; no target); 2 = automation jobs/s /
       no-op jobs/s; 3 = median time without rules / with 20 (higher is better).
1: saves (and no-op jobs) one every {pace} ms, from the save's commit to its run's
   finished_at (the no-op: from just before enqueue to RQ's ended_at), one blocks worker
   listening to both queues; p99 is the nearest rank.
2: jobs/s from RQ's timestamps, the first job's end to the last one's, so worker start-up
   and the first job (which opens the workspace) are left out; in brackets, the slowest
   and fastest turn.
3: none of the 20 rules matches the saved values (checked: no run is logged)."""


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=1000,
                        help="jobs each side drains per turn, figure 2 (default 1,000)")
    parser.add_argument("--samples", type=int, default=200,
                        help="saves and no-op jobs timed, figure 1 (default 200 each)")
    parser.add_argument("--saves", type=int, default=500,
                        help="creates and updates per entity, figure 3 (default 500)")
    parser.add_argument("--turns", type=int, default=3, help="turns of figures 1, 2")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="a database of its own (created when missing)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL,
                        help="a Redis database of its own: it is flushed")
    parser.add_argument("--tmpdir", default=None, help="where the SQLite files go")
    args = parser.parse_args(argv)
    if min(args.records, args.samples, args.saves, args.turns) < 1 or args.records < 2:
        parser.error("--records must be at least 2, the other counts at least 1")
    redis_at = Redis.from_url(args.redis_url).connection_pool.connection_kwargs
    if redis_at.get("host") not in LOOPBACK or redis_at.get("db", 0) in (0, TEST_REDIS_DB):
        parser.error("--redis-url must be on loopback and name a database of its own "
                     f"(not 0, nor the tests' {TEST_REDIS_DB})")
    if args.db != "sqlite" and sa.make_url(args.postgres_url).host not in LOOPBACK | {None}:
        parser.error("--postgres-url must be on loopback")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # A SIGTERM unwinds like an error, so the workers are stopped and the data dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    redis = Redis.from_url(args.redis_url)
    redis.ping()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    figures: list[Figure] = []
    try:
        for kind in kinds:
            target = (sqlite_target(args.tmpdir) if kind == "sqlite"
                      else postgres_target(args.postgres_url))
            start = time.perf_counter()
            try:
                figures += run_database(kind, target, redis, args)
            finally:
                target.cleanup()
            log(f"  {kind} done in {time.perf_counter() - start:.0f} s")
    finally:
        redis.flushdb()
        redis.close()
    print(f"\nBlocks CRM automation benchmarks: {args.records:,} jobs a turn, {args.samples} "
          f"latency samples, {args.saves} saves, {args.turns} turns; "
          f"engine {engine_version()}\n")
    print(table(figures))
    print()
    print(LEGEND.format(pace=round(PACE * 1000)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
