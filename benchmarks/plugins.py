"""What plugins cost a write: single creates and updates, as ratios to a baseline measured
in the same run.

    ./run bench-plugins                      # SQLite then PostgreSQL (database: bench)
    ./run bench-plugins --db sqlite --writes 2000

Three workspaces on the same database kind, each with the ``deal`` entity of
``workload.py`` (its ``account`` reference left empty):

* ``builtins``: a plugin manager with the engine's built-ins only (the baseline);
* ``installed``: every installed plugin (the first-party ones, the example), none
  enabled: what a workspace pays for plugins it does not use;
* ``enabled``: the same, with the example plugin enabled (its ``blocks_before_save``
  hook runs on every write).

Each figure is a median over interleaved rounds, as baseline time / time (1.0: no cost;
target >= 0.9 for ``installed``). Nothing is asserted: the table only reports.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

from targets import DEFAULT_POSTGRES_URL, Target, postgres_target, sqlite_target
from workload import ACCOUNT, DEAL, deal_values

from blockscrm.engine import Workspace
from blockscrm.engine.plugins import create_plugin_manager

ROUNDS = 9


def _workspace(url: str, *, entry_points: bool, enable: str | None = None) -> Workspace:
    ws = Workspace(url, pm=create_plugin_manager(load_entry_points=entry_points),
                   secret="blocks-bench")
    ws.metadata.create(ACCOUNT)
    ws.metadata.create(DEAL)
    ws.metadata.publish()
    if enable:
        ws.plugins.enable(enable, {"greeting": "Hi"})
    return ws


def _writes(ws: Workspace, count: int, seed: int) -> Callable[[], None]:
    """``count`` creates, then an update of each, every one its own transaction."""
    rows = list(deal_values(seed, count, []))  # no accounts: the reference stays empty

    def run() -> None:
        ids = [ws.records.create("deal", values)["id"] for values in rows]
        for record_id in ids:
            ws.records.update("deal", record_id, {"probability": 50})

    return run


def measure(target: Target, writes: int) -> dict[str, float]:
    spaces = {"builtins": _workspace(target.urls["big"], entry_points=False),
              "installed": _workspace(target.urls["small"], entry_points=True),
              "enabled": _workspace(target.urls["core"], entry_points=True,
                                    enable="example")}
    times: dict[str, list[float]] = {name: [] for name in spaces}
    try:
        for round_ in range(ROUNDS):
            for name, ws in spaces.items():  # interleaved: the machine's drift hits all
                run = _writes(ws, writes // ROUNDS, seed=round_)
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
            print(f"  {target.kind}: round {round_ + 1}/{ROUNDS}", file=sys.stderr)
    finally:
        for ws in spaces.values():
            ws.close()
    base = statistics.median(times["builtins"])
    return {name: base / statistics.median(t) for name, t in times.items()
            if name != "builtins"} | {"per write, builtins (ms)": base * 1000 / (
                2 * (writes // ROUNDS))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--writes", type=int, default=900,
                        help="creates per workspace (each then updated once)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print("| figure | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    results = []
    for kind in kinds:
        target = sqlite_target() if kind == "sqlite" else postgres_target(args.postgres_url)
        try:
            results.append(measure(target, args.writes))
        finally:
            target.cleanup()
    labels = {"installed": "writes with plugins installed, none enabled (builtins / this)",
              "enabled": "writes with the example plugin enabled (builtins / this)",
              "per write, builtins (ms)": "one write, built-ins only (ms, for scale)"}
    for key, text in labels.items():
        print(f"| {text} | " + " | ".join(f"{r[key]:.2f}" for r in results) + " |")


if __name__ == "__main__":
    main()
