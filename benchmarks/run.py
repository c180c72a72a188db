"""Blocks CRM benchmarks: the engine's cost as ratios to a baseline measured in the same run.

    ./run bench                          # 1,000,000 rows, SQLite then PostgreSQL
    ./run bench --rows 100000 --db sqlite
    ./run bench --profile 20000          # cProfile of bulk_insert on 20,000 rows (SQLite)

Figures (all on a 15-field ``deal`` entity, see ``workload.py``):

1. bulk insert of N rows through ``records.bulk_insert`` vs SQLAlchemy Core executemany
   of the same rows into an identical plain table, in batches of the same size, one
   transaction per batch: ratio core / engine (target >= 0.5);
2. single create (validation, audit) vs one Core insert, each in its own transaction,
   interleaved and averaged: ratio core / engine (target >= 0.3);
3. ``stage == won``, sort ``-close_date``, limit 50 (first page, then the page after it
   by cursor), at N rows vs at 10,000 rows: ratio time(N) / time(10k) (target <= 2);
4. a page deep in the list of all deals sorted by ``-close_date`` (4b: in the default
   order, by id): page 10,000 of 50 (the middle of a million rows; below a million rows,
   the page in the middle, N / 100), reached by walking keyset cursors, vs page 1:
   ratio time(deep) / time(page 1) (target <= 1.5);
5. publishing "add a field" on the N-row table, in seconds (target about one second),
   beside a bare ``ALTER TABLE ... ADD COLUMN`` on the plain table: an integer field,
   (5b) a text field, which full-text search covers, (5c) a select with a default.

Nothing is asserted: timings vary by machine, so the table only reports them. Progress
lines go to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from targets import DEFAULT_POSTGRES_URL, Target, postgres_target, sqlite_target
from workload import ACCOUNT, DEAL, account_values, core_row, core_rows, deal_values

from blockscrm.engine import Query, QueryError, Workspace
from blockscrm.engine.entities import Entity

SMALL_ROWS = 10_000
ACCOUNTS = 1_000
PAGE = 50
DEEP_PAGE = 10_000
WALK_PAGE = 1_000  # the walk takes big steps: a cursor holds only the last row's keys
SECRET = "blocks-bench"
#: Figure 5's fields: (code, what, name, property, the plain table's column).
ADDED_FIELDS = [
    ("5", "add an integer field", "seats", {"type": "integer", "minimum": 0}, "BIGINT"),
    ("5b", "add a text field", "region", {"type": "string", "maxLength": 50},
     "VARCHAR(50)"),
    ("5c", "add a select with default", "segment",
     {"type": "string", "enum": ["smb", "mid", "ent"], "x-field": "select",
      "default": "smb"}, "VARCHAR(100) DEFAULT 'smb'"),
]


# --- reporting ------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Progress:
    """Prints ``done/total`` about every 5 % (and at the end), with an estimate of the rest."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.start = time.perf_counter()
        self.step = max(total // 20, 1)
        self.next = self.step

    def update(self, done: int) -> None:
        if done < self.next and done < self.total:
            return
        self.next = (done // self.step + 1) * self.step
        elapsed = time.perf_counter() - self.start
        left = elapsed / done * (self.total - done) if done else 0.0
        log(f"    {self.label}: {done:,}/{self.total:,} rows ({done / self.total:.0%}), "
            f"{elapsed:.1f} s, ~{left:.0f} s left")


def seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.0f} µs"


@dataclass
class Figure:
    db: str
    name: str
    baseline: str
    engine: str
    ratio: float | None
    target: str
    met: bool | None

    def cells(self) -> list[str]:
        ratio = "—" if self.ratio is None else f"{self.ratio:.2f}"
        met = "—" if self.met is None else ("yes" if self.met else "NO")
        return [self.db, self.name, self.baseline, self.engine, ratio, self.target, met]


HEADER = ["db", "figure", "baseline", "engine", "ratio", "target", "met"]


def table(figures: list[Figure]) -> str:
    rows = [HEADER] + [f.cells() for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


LEGEND = """\
ratio: 1, 2 = baseline time / engine time (higher is better);
       3 = time at N rows / time at 10,000 rows; 4 = time of the deep page / page 1;
       5 = engine / baseline, for scale only (the target is the engine's own seconds,
       and "~1 s" counts as met up to 1.5 s).
Each query time is the median of repeated runs after a warm-up; the two sides of a
figure are timed in turn (figure 1: ten batches each), so both see the same load."""


# --- timing ---------------------------------------------------------------------------------


def paired_medians(first: Callable[[], Any], second: Callable[[], Any], *, warmup: int = 2,
                   min_reps: int = 5, max_reps: int = 31, budget: float = 6.0
                   ) -> tuple[float, float]:
    """Median seconds of two calls timed in turn, so both see the same machine load."""
    for _ in range(warmup):
        first()
        second()
    times: tuple[list[float], list[float]] = ([], [])
    start = time.perf_counter()
    while len(times[0]) < max_reps and (len(times[0]) < min_reps
                                        or time.perf_counter() - start < budget):
        for fn, into in ((first, times[0]), (second, times[1])):
            t0 = time.perf_counter()
            fn()
            into.append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def generation_time(rows: int, accounts: list[str], seed: int) -> float:
    """Seconds to generate ``rows`` rows alone (both loads include it), from a sample."""
    sample = min(rows, 100_000)
    t0 = time.perf_counter()
    for _ in core_rows(deal_values(seed, sample, accounts)):
        pass
    return (time.perf_counter() - t0) * rows / sample


# --- loading --------------------------------------------------------------------------------


def plain_table(ws: Workspace, ent: Entity, core: sa.Engine) -> sa.Table:
    """A plain table identical to the entity's: the same columns and types, and the same
    indexes, replayed from the definitions the engine left in its database (so indexes
    the engine makes outside the SQLAlchemy table, like PostgreSQL's full-text GIN index,
    are there too)."""
    metadata = sa.MetaData()
    plain = sa.Table("plain_deal", metadata, *[
        sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in ent.table.columns])
    metadata.create_all(core)
    with ws.reading() as conn:
        if ws.dialect == "postgresql":
            ddl = conn.scalars(sa.text(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index "
                "WHERE indrelid = CAST(:t AS regclass) AND NOT indisprimary"),
                {"t": ent.table.name}).all()
        else:
            ddl = conn.scalars(sa.text(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t "
                "AND sql IS NOT NULL"), {"t": ent.table.name}).all()
    on_table = re.compile(r'\bON\s+(?:"?\w+"?\.)?"?' + re.escape(ent.table.name) + r'"?')
    with core.begin() as conn:
        for statement in ddl:
            conn.exec_driver_sql(on_table.sub("ON plain_deal", statement, count=1))
    log(f"  plain table with {len(ddl)} indexes besides the primary key")
    return plain


def load_both(ws: Workspace, core: sa.Engine, plain: sa.Table, total: int, batch: int,
              seed: int, accounts: list[str]) -> tuple[float, float]:
    """Figure 1: the same rows through Core executemany into the plain table and through
    ``records.bulk_insert`` into the workspace, ``batch`` rows a transaction on both sides.

    The two take turns, ten batches at a time, so both see the same machine load (and the
    engine's answered id lists stay small); answers (Core seconds, engine seconds).
    """
    progress = Progress("core and engine", total)
    core_input = core_rows(deal_values(seed, total, accounts))
    engine_input = deal_values(seed, total, accounts)
    part = 10 * batch
    core_time = engine_time = 0.0
    done = 0
    while done < total:
        size = min(part, total - done)
        start = time.perf_counter()
        left = size
        while left:
            chunk = list(islice(core_input, min(batch, left)))
            with core.begin() as conn:
                conn.execute(plain.insert(), chunk)
            left -= len(chunk)
        core_time += time.perf_counter() - start
        start = time.perf_counter()
        _bulk_insert(ws, islice(engine_input, size), batch)
        engine_time += time.perf_counter() - start
        done += size
        progress.update(done)
    return core_time, engine_time


def load_engine(ws: Workspace, values: Iterator[dict[str, Any]], total: int, batch: int,
                label: str) -> None:
    """``records.bulk_insert`` in calls of up to 50,000 rows, with progress lines."""
    progress = Progress(label, total)
    part = min(50_000, max(batch, total // 20 // batch * batch))
    done = 0
    while done < total:
        size = min(part, total - done)
        _bulk_insert(ws, islice(values, size), batch)
        done += size
        progress.update(done)


def _bulk_insert(ws: Workspace, values: Iterator[dict[str, Any]], batch: int) -> None:
    result = ws.records.bulk_insert("deal", values, batch_size=batch)
    if result.errors:
        first = next(iter(result.errors.items()))
        raise RuntimeError(f"{len(result.errors)} rows refused, e.g. {first}")


def new_workspace(url: str) -> Workspace:
    ws = Workspace(url, secret=SECRET)
    ws.metadata.create(ACCOUNT)
    ws.metadata.create(DEAL)
    ws.metadata.publish()
    return ws


# --- figures --------------------------------------------------------------------------------


def won_by_close_date(ws: Workspace) -> Query:
    query: Query = ws.query("deal")
    return query.filter({"==": [{"var": "stage"}, "won"]}).sort("-close_date").limit(PAGE)


def all_by_close_date(ws: Workspace) -> Query:
    query: Query = ws.query("deal")
    return query.sort("-close_date").limit(PAGE)


def all_by_id(ws: Workspace) -> Query:
    query: Query = ws.query("deal")
    return query.limit(PAGE)


def single_creates(ws: Workspace, core: sa.Engine, plain: sa.Table, count: int,
                   accounts: list[str], seed: int) -> tuple[float, float]:
    """Average seconds of one Core insert and of one ``records.create``, interleaved."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    warmup = 20
    core_total = engine_total = 0.0
    for n, values in enumerate(deal_values(seed, warmup + count, accounts)):
        t0 = time.perf_counter()
        with core.begin() as conn:
            conn.execute(plain.insert(), core_row(values, now))
        t1 = time.perf_counter()
        ws.records.create("deal", values)
        t2 = time.perf_counter()
        if n >= warmup:
            core_total += t1 - t0
            engine_total += t2 - t1
    return core_total / count, engine_total / count


def walk(query: Query, rows: int, budget: float) -> tuple[str | None, int]:
    """The cursor after the first ``rows`` rows of ``query``, reached by walking its keyset
    pages (1,000 rows a step, then 50); answers it and how many rows it skips."""
    big = query.limit(WALK_PAGE)
    cursor: str | None = None
    done = 0
    start = time.perf_counter()
    progress = Progress("walking cursors", rows)
    while done < rows:
        step = big if rows - done >= WALK_PAGE else query
        try:
            page = step.page(cursor)
        except QueryError:  # should cursors ever be bound to the page size: walk by 50s
            if big is query:
                raise
            big = query
            continue
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        done += len(page.items)
        progress.update(done)
        if time.perf_counter() - start > budget:
            log(f"    the walk stopped after {budget:.0f} s, at row {done:,}")
            break
    return cursor, done // PAGE * PAGE


def run_database(kind: str, target: Target, args: argparse.Namespace) -> list[Figure]:
    n, batch = args.rows, args.batch_size
    small_n = min(SMALL_ROWS, n)
    figures: list[Figure] = []

    def add(*cells: Any) -> None:
        figure = Figure(kind, *cells)
        figures.append(figure)
        log("  => " + "  ".join(figure.cells()[1:]))

    @contextmanager
    def guard(code: str) -> Iterator[None]:
        """A figure that fails is reported as failed; the others still run."""
        try:
            yield
        except Exception as exc:
            log(traceback.format_exc())
            add(f"{code} failed: {type(exc).__name__}", "—", str(exc)[:60], None, "—", None)

    log(f"\n== {kind}: {n:,} rows, batches of {batch:,} ==")
    big = new_workspace(target.urls["big"])
    small = new_workspace(target.urls["small"])
    core = target.core_engine()
    try:
        accounts = big.records.bulk_insert("account", account_values(ACCOUNTS)).ids
        small_accounts = small.records.bulk_insert("account", account_values(ACCOUNTS)).ids
        plain = plain_table(big, big.entity("deal"), core)

        # 1. bulk insert --------------------------------------------------------------------
        log(f"  generating rows alone takes ~{generation_time(n, accounts, args.seed):.1f} s"
            " (included in both loads)")
        log("  1. loading the plain table (Core executemany) and the workspace "
            "(records.bulk_insert), taking turns")
        core_load, engine_load = load_both(big, core, plain, n, batch, args.seed, accounts)
        add(f"1 bulk insert {n:,} rows",
            f"core {seconds(core_load)} ({n / core_load:,.0f}/s)",
            f"{seconds(engine_load)} ({n / engine_load:,.0f}/s)",
            core_load / engine_load, ">= 0.5", core_load / engine_load >= 0.5)

        log(f"  loading the {small_n:,}-row workspace for figure 3")
        load_engine(small, deal_values(args.seed, small_n, small_accounts), small_n, batch,
                    "small")
        if kind == "postgresql":
            log("  ANALYZE (what autovacuum would do after a load)")
            with core.begin() as conn:
                conn.exec_driver_sql("ANALYZE")

        # 2. single create ------------------------------------------------------------------
        with guard("2"):
            log(f"  2. {args.creates} single creates, engine and Core interleaved")
            core_one, engine_one = single_creates(big, core, plain, args.creates, accounts,
                                                  args.seed + 1)
            ratio = core_one / engine_one
            add(f"2 single create (mean of {args.creates})", f"core {seconds(core_one)}",
                seconds(engine_one), ratio, ">= 0.3", ratio >= 0.3)

        # 3. filter + sort + limit at N vs 10k ----------------------------------------------
        with guard("3"):
            log("  3. stage == won, sort -close_date, limit 50")
            q_small, q_big = won_by_close_date(small), won_by_close_date(big)
            t_small, t_big = paired_medians(q_small.page, q_big.page)
            label = f"3 stage=won sort -close_date p1: {n:,} vs {small_n:,}"
            add(label, f"{small_n:,} rows {seconds(t_small)}", f"{seconds(t_big)}",
                t_big / t_small, "<= 2", t_big / t_small <= 2)
            c_small, c_big = q_small.page().next_cursor, q_big.page().next_cursor
            if c_small and c_big:
                t_small, t_big = paired_medians(lambda: q_small.page(c_small),
                                                lambda: q_big.page(c_big))
                add("3b same, page 2 by cursor", f"{small_n:,} rows {seconds(t_small)}",
                    seconds(t_big), t_big / t_small, "<= 2", t_big / t_small <= 2)

        # 4. deep page vs page 1 ------------------------------------------------------------
        # Page 10,000 is the middle of a million rows; smaller N go to their middle too.
        want = max(2, min(DEEP_PAGE, n // (2 * PAGE)))
        for code, what, q_list in (("4", "sort -close_date", all_by_close_date(big)),
                                   ("4b", "no sort (by id)", all_by_id(big))):
            with guard(code):
                log(f"  {code}. all deals, {what}: walking to page {want:,}")
                cursor, skipped = walk(q_list, (want - 1) * PAGE, args.walk_budget)
                depth = skipped // PAGE + 1
                t_first, t_deep = paired_medians(q_list.page,
                                                 lambda q=q_list, c=cursor: q.page(c))
                add(f"{code} all, {what}: page {depth:,} vs 1", f"page 1 {seconds(t_first)}",
                    f"page {depth:,} {seconds(t_deep)}", t_deep / t_first, "<= 1.5",
                    t_deep / t_first <= 1.5)

        # 5. publish "add a field" ---------------------------------------------------------
        for code, what, field, spec, ddl in ADDED_FIELDS:
            with guard(code):
                log(f"  {code}. publish: {what} ({field})")
                document = big.metadata.get("entity", "deal")
                document["properties"][field] = spec
                big.metadata.replace("entity", "deal", document)
                t0 = time.perf_counter()
                big.metadata.publish()
                t_publish = time.perf_counter() - t0
                t0 = time.perf_counter()
                with core.begin() as conn:
                    conn.exec_driver_sql(f"ALTER TABLE plain_deal ADD COLUMN {field} {ddl}")
                t_alter = time.perf_counter() - t0
                add(f"{code} publish: {what}", f"ALTER ADD COLUMN {seconds(t_alter)}",
                    seconds(t_publish), t_publish / t_alter, "~1 s", t_publish <= 1.5)
    finally:
        big.close()
        small.close()
        core.dispose()
    return figures


def engine_version() -> str:
    """The commit the engine was measured at, marked when its files had changes."""
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "engine"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(unknown commit)"
    return commit + (" with uncommitted changes" if dirty else "")


# --- main -----------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="N (default 1,000,000)")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--creates", type=int, default=500, help="single creates (figure 2)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--walk-budget", type=float, default=900.0,
                        help="seconds the cursor walk of figure 4 may take")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="a database of its own (created when missing)")
    parser.add_argument("--tmpdir", default=None, help="where the SQLite files go")
    parser.add_argument("--keep", action="store_true",
                        help="keep the SQLite files and PostgreSQL schemas afterwards")
    parser.add_argument("--profile", type=int, metavar="ROWS", default=None,
                        help="only profile bulk_insert of ROWS rows on SQLite (cProfile)")
    args = parser.parse_args(argv)
    if args.rows < PAGE * 2:
        parser.error(f"--rows must be at least {PAGE * 2}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.profile:
        from profile_bulk import profile_bulk_insert

        profile_bulk_insert(args.profile, seed=args.seed, batch=args.batch_size,
                            tmpdir=args.tmpdir)
        return 0
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    figures: list[Figure] = []
    for kind in kinds:
        target = (sqlite_target(args.tmpdir) if kind == "sqlite"
                  else postgres_target(args.postgres_url))
        start = time.perf_counter()
        try:
            figures += run_database(kind, target, args)
        finally:
            if args.keep:
                log(f"  kept: {target.folder or ', '.join(target.schemas)}")
            else:
                target.cleanup()
        log(f"  {kind} done in {time.perf_counter() - start:.0f} s")
    print(f"\nBlocks CRM benchmarks: N = {args.rows:,} rows, 15-field entity, "
          f"batches of {args.batch_size:,}, seed {args.seed}; engine {engine_version()}\n")
    print(table(figures))
    print()
    print(LEGEND)
    return 0


if __name__ == "__main__":
    sys.exit(main())
