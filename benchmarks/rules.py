"""Rule-language benchmarks: each figure a ratio to a baseline measured in the same run.

    ./run bench-rules                 # 200,000 in-memory records, 100,000 stored
    ./run bench-rules --records 20000

1. a compiled condition evaluated on in-memory records vs a hand-written Python lambda of
   the same condition: ratio lambda / ours (target >= 0.3);
2. the same conditions in ``cel-python`` (CEL, a peer expression language; installed
   for the benchmark only): ratio CEL / ours (target >= 5);
3. selecting the matching records through the SQL compiler (parse, check, compile and
   run) vs the same filter written by hand in SQLAlchemy, in the same SELECT: ratio
   hand / ours (target >= 0.9), on SQLite and, when reachable, PostgreSQL.

Nothing is asserted; the table only reports.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from blockscrm.engine import Workspace
from blockscrm.engine.rules import Env, parse_rule
from blockscrm.engine.rules.sql import SqlCompiler

DEAL = {
    "kind": "entity", "name": "deal", "label": {"en": "Deal"},
    "properties": {
        "title": {"type": "string"},
        "amount": {"type": "number", "x-index": True},
        "stage": {"type": "string", "enum": ["new", "proposal", "won", "lost"], "x-index": True},
        "probability": {"type": "integer"},
        "region": {"type": "string"},
    },
}

CONDITIONS: list[tuple[str, Callable[[dict[str, Any]], bool], str]] = [
    ('amount > 10000 and stage == "won"',
     lambda r: r["amount"] is not None and r["amount"] > 10000 and r["stage"] == "won",
     'amount > 10000.0 && stage == "won"'),
    ('stage in ["new", "proposal"] and probability >= 50 or region == "EMEA"',
     lambda r: (r["stage"] in ("new", "proposal") and r["probability"] is not None
                and r["probability"] >= 50) or r["region"] == "EMEA",
     'stage in ["new", "proposal"] && probability >= 50 || region == "EMEA"'),
    ("amount * probability / 100 > 5000",
     lambda r: r["amount"] is not None and r["probability"] is not None
     and r["amount"] * r["probability"] / 100 > 5000,
     "amount * double(probability) / 100.0 > 5000.0"),
]


def records(count: int, seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"title": f"Deal {i}", "amount": float(rng.randrange(100, 50_000)),
             "stage": rng.choice(["new", "proposal", "won", "lost"]),
             "probability": rng.randrange(0, 101),
             "region": rng.choice(["EMEA", "APAC", "AMER"])} for i in range(count)]


def best(run: Callable[[], Any], repeat: int = 3) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def row(figure: str, baseline: float, ours: float, ratio: float, target: str) -> None:
    print(f"{figure:<58} {baseline * 1000:>10.1f} ms {ours * 1000:>10.1f} ms "
          f"{ratio:>7.2f}  {target}")


def in_memory(ws: Workspace, data: list[dict[str, Any]]) -> None:
    import celpy
    from celpy import celtypes

    rules = ws.entity("deal").rules
    cel = celpy.Environment()
    cel_data = [{"amount": celtypes.DoubleType(r["amount"]),
                 "stage": celtypes.StringType(r["stage"]),
                 "probability": celtypes.IntType(r["probability"]),
                 "region": celtypes.StringType(r["region"])} for r in data]
    cel_sample = cel_data[: max(1, len(cel_data) // 20)]  # CEL is slow: time 5 %, scale up
    env = Env()
    for text, by_hand, cel_text in CONDITIONS:
        ours = rules.compile_python(parse_rule(text))
        assert [bool(ours(r, env)) for r in data[:2000]] == [by_hand(r) for r in data[:2000]]
        hand_time = best(lambda h=by_hand: [h(r) for r in data])
        our_time = best(lambda o=ours: [o(r, env) for r in data])
        row(f"python: {text[:50]}", hand_time, our_time, hand_time / our_time, ">= 0.3")
        program = cel.program(cel.compile(cel_text))
        cel_time = best(lambda p=program: [p.evaluate(r) for r in cel_sample], repeat=1)
        cel_time *= len(cel_data) / len(cel_sample)
        row("  cel-python, same condition (baseline: CEL)", cel_time, our_time,
            cel_time / our_time, ">= 5")


def in_database(ws: Workspace, label: str) -> None:
    entity = ws.entity("deal")
    table = entity.table
    hand_filters = [
        sa.and_(table.c.amount > 10000, table.c.stage == "won"),
        sa.or_(sa.and_(table.c.stage.in_(["new", "proposal"]), table.c.probability >= 50),
               table.c.region == "EMEA"),
        table.c.amount * table.c.probability / 100 > 5000,
    ]
    for (text, _, _), hand in zip(CONDITIONS, hand_filters, strict=True):
        def by_hand(h: Any = hand) -> int:
            with ws.reading() as conn:
                return len(conn.execute(sa.select(table).where(h)).all())

        def ours(t: str = text) -> int:
            # The engine's path for a filter: parse, type-check, compile to SQL; the SELECT
            # around it is the same as by hand (Query adds its order and keyset pages).
            rules = ws.known_catalog().entity("deal").rules
            condition = SqlCompiler(rules.scope, rules.functions, ws.dialect).condition(
                parse_rule(t))
            with ws.reading() as conn:
                return len(conn.execute(sa.select(table).where(condition)).all())

        assert by_hand() == ours()
        hand_time, our_time = best(by_hand), best(ours)
        row(f"sql {label}: {text[:46]}", hand_time, our_time, hand_time / our_time, ">= 0.9")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--postgres", default=os.environ.get(
        "BLOCKS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_rules"))
    args = parser.parse_args()
    print(f"{'figure':<58} {'baseline':>13} {'ours':>13} {'ratio':>7}  target")
    with tempfile.TemporaryDirectory() as folder:
        targets = [("sqlite", f"sqlite:///{folder}/rules.db")]
        try:
            sa.create_engine(args.postgres).connect().close()
            targets.append(("postgresql", args.postgres))
        except sa.exc.OperationalError:
            print("PostgreSQL unreachable: SQLite only", file=sys.stderr)
        for label, url in targets:
            ws = Workspace(url)
            if label == "postgresql":
                with ws.engine.begin() as conn:
                    conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
                ws.close()
                ws = Workspace(url)
            ws.metadata.create(DEAL)
            ws.metadata.publish()
            if label == "sqlite":
                in_memory(ws, records(args.records))
            print(f"loading {args.stored} deals into {label}…", file=sys.stderr)
            ws.records.bulk_insert("deal", records(args.stored, seed=9), batch_size=5000)
            in_database(ws, label)
            ws.close()


if __name__ == "__main__":
    main()
