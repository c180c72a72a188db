"""The engine's demo: define a small sales CRM, load sample deals, query and change it.

Run with ``./run demo`` (``--db URL`` for another database; default a fresh SQLite file
``demo.db`` in the current folder). Until the platform serves screens, this is what a
workspace does, told through the engine's Python API.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from blockscrm.engine import Conflict, ValidationError, Workspace

ACCOUNT = {
    "kind": "entity", "name": "account", "label": {"en": "Account", "zh": "客户"},
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 120, "x-label": {"en": "Name", "zh": "名称"}},
        "city": {"type": "string", "x-index": True, "x-label": {"en": "City", "zh": "城市"}},
        "industry": {"x-field": "select", "enum": ["retail", "software", "health"]},
    },
}
DEAL = {
    "kind": "entity", "name": "deal", "label": {"en": "Deal", "zh": "交易"},
    "required": ["title", "account"],
    "properties": {
        "title": {"type": "string", "maxLength": 200, "x-label": {"en": "Title", "zh": "标题"}},
        "account": {"x-field": "reference", "x-ref": "account", "x-on-delete": "cascade"},
        "amount": {"x-field": "currency", "minimum": 0, "x-currency": "EUR"},
        "stage": {"x-field": "select", "enum": ["new", "proposal", "won", "lost"],
                  "default": "new", "x-index": True,
                  "x-options": {"won": {"label": {"en": "Won", "zh": "赢单"},
                                        "color": "green"},
                                "lost": {"label": {"en": "Lost", "zh": "丢单"},
                                         "color": "red"}}},
        "close_date": {"type": "string", "format": "date"},
        "email": {"type": "string", "format": "email", "x-unique": True},
        "tags": {"x-field": "tags"},
    },
}


def heading(text: str) -> None:
    print(f"\n== {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (default: sqlite:///demo.db, made anew)")
    args = parser.parse_args()
    if args.db is None:
        Path("demo.db").unlink(missing_ok=True)
    ws = Workspace(args.db or "sqlite:///demo.db")

    heading("Define two entities as drafts and look at the plan")
    ws.metadata.create(ACCOUNT)
    ws.metadata.create(DEAL)
    print(ws.metadata.plan())
    ws.metadata.publish(actor="admin")

    heading("Load sample data in bulk (one bad row is reported, the rest kept)")
    rng = random.Random(7)
    cities = ["Paris", "Lyon", "Shanghai", "Berlin"]
    accounts = ws.records.bulk_insert("account", [
        {"name": f"Customer {i}", "city": rng.choice(cities),
         "industry": rng.choice(["retail", "software", "health"])} for i in range(20)])
    rows = [{"title": f"Deal {i}", "account": rng.choice(accounts.ids),
             "amount": rng.randrange(500, 50_000), "close_date": f"2025-{rng.randint(1, 12):02}-15",
             "stage": rng.choice(["new", "proposal", "won", "lost"]),
             "email": f"buyer{i}@example.com",
             "tags": rng.sample(["vip", "renewal", "upsell", "partner"], rng.randint(0, 2))}
            for i in range(200)]
    rows[17]["amount"] = -5
    result = ws.records.bulk_insert("deal", rows, actor="import")
    print(f"inserted {result.inserted} deals; refused: {result.errors}")

    heading("Query: won deals over 20,000 from Paris, biggest first")
    query = (ws.query("deal")
             .filter({"and": [{"==": [{"var": "stage"}, "won"]},
                              {">": [{"var": "amount"}, 20000]},
                              {"==": [{"var": "account.city"}, "Paris"]}]})
             .sort("-amount").fields("title", "amount", "close_date").limit(5))
    page = query.page()
    for record in page.items:
        print(f"  {record['title']:<10} {record['amount']:>8}  {record['close_date']}")
    print(f"  … {query.count().value} in all; next page cursor: {page.next_cursor}")

    heading("Report: won amount by month")
    for row in ws.query("deal").filter({"==": [{"var": "stage"}, "won"]}).aggregate(
            "close_date:month", {"deals": "count", "amount": "sum:amount"}):
        print(f"  {row['close_date:month']}  {row['deals']:>3} deals  {row['amount']:>9}")

    heading("A bad write names every bad field, and writes nothing")
    try:
        ws.records.create("deal", {"title": "", "amount": -1, "account": "nope",
                                   "email": "buyer1@example.com", "stage": "maybe"})
    except ValidationError as error:
        for field, messages in error.errors.items():
            print(f"  {field}: {'; '.join(messages)}")

    heading("Optimistic concurrency and the audit trail")
    deal = ws.records.get("deal", result.ids[0])
    ws.records.update("deal", deal["id"], {"stage": "won"}, version=deal["version"],
                      actor="ann")
    try:
        ws.records.update("deal", deal["id"], {"stage": "lost"}, version=deal["version"],
                          actor="bob")
    except Conflict as error:
        print(f"  bob is refused: {error}")
    for entry in ws.records.history("deal", deal["id"]):
        print(f"  v{entry['version']} {entry['action']} by {entry['actor']}: "
              f"{sorted(entry['changes'])}")

    heading("Change the schema: make amount an integer, drop tags (data archived)")
    document = ws.metadata.get("entity", "deal")
    document["properties"]["amount"] = {"type": "integer", "minimum": 0}
    del document["properties"]["tags"]
    ws.metadata.replace("entity", "deal", document)
    plan = ws.metadata.plan()
    print(plan)
    ws.metadata.publish(confirm=True, actor="admin")
    print(f"  published; deal is at version {ws.metadata.get('entity', 'deal')['version']}")
    ws.close()


if __name__ == "__main__":
    main()
