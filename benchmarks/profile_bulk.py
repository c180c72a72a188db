"""Where ``records.bulk_insert`` spends its time: cProfile on SQLite, top entries printed.

    ./run bench --profile 20000
"""

from __future__ import annotations

import cProfile
import io
import pstats
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from workload import ACCOUNT, DEAL, account_values, deal_values

from blockscrm.engine import Workspace
from blockscrm.engine.records import schema_errors


def _without_profiler(ws: Workspace, values: list[dict[str, Any]], batch: int) -> None:
    """Time bulk_insert and its record-schema check alone, with no profiler (whose
    per-call cost inflates the many small calls)."""
    rows = len(values)
    present = [{k: v for k, v in row.items() if v is not None and v != "" and v != []}
               for row in values]
    deal = ws.entity("deal")
    start = time.perf_counter()
    for row in present:
        schema_errors(deal, row)
    validation = time.perf_counter() - start
    start = time.perf_counter()
    ws.records.bulk_insert("deal", values, batch_size=batch)
    total = time.perf_counter() - start
    print(f"without a profiler: bulk_insert {total:.2f} s ({total / rows * 1e6:.0f} µs a row); "
          f"the record schema's check alone {validation:.2f} s "
          f"({validation / rows * 1e6:.0f} µs a row, {validation / total:.0%} of it)")


def profile_bulk_insert(rows: int, *, seed: int, batch: int, tmpdir: str | None = None,
                        top: int = 40) -> None:
    folder = Path(tempfile.mkdtemp(prefix="blocks-profile-", dir=tmpdir))
    ws = Workspace(f"sqlite:///{folder / 'profile.db'}", secret="blocks-bench")
    try:
        ws.metadata.create(ACCOUNT)
        ws.metadata.create(DEAL)
        ws.metadata.publish()
        accounts = ws.records.bulk_insert("account", account_values(1000)).ids
        values = list(deal_values(seed, rows, accounts))  # generated outside the profile
        ws.records.bulk_insert("deal", deal_values(seed + 1, batch, accounts))  # warm-up
        _without_profiler(ws, values, batch)
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        result = ws.records.bulk_insert("deal", values, batch_size=batch)
        profiler.disable()
        elapsed = time.perf_counter() - start
        print(f"bulk_insert of {result.inserted:,} rows on SQLite: {elapsed:.2f} s under "
              f"cProfile ({elapsed / rows * 1e6:.0f} µs a row, profiler overhead included)")
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order)
            stats.print_stats(top)
            print(f"\n--- top {top} by {order} ---")
            print(out.getvalue().split("\n\n", 2)[-1].rstrip())
    finally:
        ws.close()
        shutil.rmtree(folder, ignore_errors=True)
