"""Blocks CRM screen benchmarks: the server's time to render a screen, as a ratio to the
JSON API answering the same data in the same run.

    ./run bench-screens                          # SQLite
    ./run bench-screens --db postgresql          # PostgreSQL (database bench_screens)
    ./run bench-screens --db both --deals 20000

One app, one database: accounts, and deals, contacts and activities that reference them
(the account's three related lists). A user with a role that reads everything is logged
in twice, with a session cookie (the screens) and with a token (the API). Each request
goes through the whole WSGI stack in-process (Flask's test client: no sockets, so the
figure is the server's time, not the network's). Figures, each API time / screen time
(higher is better, target >= 0.5, that is a screen costs at most twice its data):

1. the deal list, page 1 of 50 rows (``GET /app/deal``) vs the API calls that fetch what it
   shows: ``GET /api/v1/records/deal?limit=50``, then the names of the accounts those deals
   reference (the list shows a name, not an id) in one ``GET /api/v1/records/account``;
   For scale, the list page is also timed against the deals call alone (no target).
2. an account's 360° view with its three related lists (``GET /app/account/<id>``) vs the
   API calls that fetch the same: the account, then the first page of each related list.

The sides are timed in turns (screen, API, screen, API …) and each figure is the ratio
of medians. Nothing is asserted: progress lines go to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from run import Figure, log, paired_medians, table
from targets import postgres_target

from blockscrm.engine import Workspace
from blockscrm.platform.app import create_app

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_screens"
PASSWORD = "bench-screens-password"
RELATED = ("deal", "contact", "activity")

ACCOUNT = {"kind": "entity", "name": "account", "label": {"en": "Accounts", "zh": "客户"},
           "required": ["name"], "x-title-field": "name",
           "properties": {"name": {"type": "string", "x-label": {"en": "Name", "zh": "名称"}},
                          "city": {"type": "string"}, "industry": {
                              "type": "string", "x-field": "select", "x-options": {
                                  "tech": {"label": {"en": "Tech"}, "color": "#2563eb"},
                                  "retail": {"label": {"en": "Retail"}, "color": "#f59e0b"}}}}}
DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deals", "zh": "交易"},
        "required": ["title"], "x-title-field": "title",
        "properties": {
            "title": {"type": "string", "x-label": {"en": "Title", "zh": "标题"}},
            "amount": {"type": "number", "x-field": "currency", "x-currency": "EUR"},
            "stage": {"type": "string", "x-field": "select", "x-options": {
                "new": {"label": {"en": "New"}, "color": "#9aa5b1"},
                "won": {"label": {"en": "Won"}, "color": "#047857"},
                "lost": {"label": {"en": "Lost"}, "color": "#b91c1c"}}},
            "close_date": {"type": "string", "format": "date"},
            "account": {"type": "string", "x-field": "reference", "x-ref": "account"},
            "probability": {"type": "integer"}}}
CONTACT = {"kind": "entity", "name": "contact", "label": {"en": "Contacts"},
           "required": ["name"], "x-title-field": "name",
           "properties": {"name": {"type": "string"}, "email": {"type": "string",
                                                                "format": "email"},
                          "account": {"type": "string", "x-field": "reference",
                                      "x-ref": "account"}}}
ACTIVITY = {"kind": "entity", "name": "activity", "label": {"en": "Activities"},
            "required": ["subject"], "x-title-field": "subject",
            "properties": {"subject": {"type": "string"},
                           "due": {"type": "string", "format": "date"},
                           "account": {"type": "string", "x-field": "reference",
                                       "x-ref": "account"}}}
VIEW = {"kind": "view", "name": "deals", "label": {"en": "Deals"}, "entity": "deal",
        "default": True, "columns": ["title", "amount", "stage", "close_date", "account"],
        "sort": ["-close_date"], "page_size": 50}
READER = {"kind": "role", "name": "reader", "label": {"en": "Reader"},
          "permissions": {"*": {"read": "all"}}}


def build(url: str, deals: int) -> tuple[Workspace, str]:
    """A workspace with the data; answers it and the busiest account's id."""
    ws = Workspace(url, secret="bench-screens")
    for document in (ACCOUNT, DEAL, CONTACT, ACTIVITY, VIEW, READER):
        ws.metadata.create(document)
    ws.metadata.publish()
    rng = random.Random(7)
    accounts = max(deals // 20, 10)
    ws.records.bulk_insert("account", ({"name": f"Account {i:05}", "city": "Lyon",
                                        "industry": rng.choice(["tech", "retail"])}
                                       for i in range(accounts)))
    ids = [r["id"] for r in ws.query("account").fields("name").limit(accounts).page().items]
    log(f"    {accounts:,} accounts, {deals:,} deals, {deals // 2:,} contacts and activities")
    ws.records.bulk_insert("deal", ({
        "title": f"Deal {i:06}", "amount": round(rng.uniform(100, 90_000), 2),
        "stage": rng.choice(["new", "won", "lost"]), "probability": rng.randint(0, 100),
        "close_date": f"2026-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}",
        "account": rng.choice(ids)} for i in range(deals)))
    ws.records.bulk_insert("contact", ({"name": f"Contact {i}", "email": f"c{i}@example.com",
                                        "account": rng.choice(ids)} for i in range(deals // 2)))
    ws.records.bulk_insert("activity", ({"subject": f"Call {i}", "due": "2026-06-01",
                                         "account": rng.choice(ids)}
                                        for i in range(deals // 2)))
    ws.accounts.create_user("reader", password=PASSWORD, roles=["reader"])
    return ws, ids[0]


def clients(url: str) -> tuple[Any, Any, dict[str, str], Any]:
    """The app, a client logged in by session (screens), the token header (API)."""
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-screens"})
    screen = app.test_client()
    login = screen.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert token is not None
    answer = screen.post("/login", data={"username": "reader", "password": PASSWORD,
                                         "csrf_token": token.group(1)})
    assert answer.status_code == 302, answer.status_code
    api = app.test_client()
    issued = api.post("/api/v1/auth/tokens", json={"username": "reader", "password": PASSWORD})
    assert issued.status_code == 201, issued.get_data(as_text=True)
    return app, screen, {"Authorization": f"Bearer {issued.get_json()['token']}"}, api


def get(client: Any, path: str, headers: dict[str, str] | None = None) -> bytes:
    response = client.get(path, headers=headers or {})
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}: "
                         f"{response.get_data(as_text=True)[:500]}")
    data: bytes = response.get_data()
    return data


def run_database(kind: str, url: str, deals: int) -> list[Figure]:
    log(f"{kind}: loading")
    ws, account = build(url, deals)
    app, screen, headers, api = clients(url)
    try:
        figures = []
        page = get(screen, "/app/deal")
        assert page.count(b'<tr data-id="') == 50, "the list does not show 50 rows"

        def api_list() -> None:
            deals = json.loads(get(api, "/api/v1/records/deal?limit=50&sort=-close_date",
                                   headers))["items"]
            ids = sorted({d["account"] for d in deals if d.get("account")})
            get(api, "/api/v1/records/account?" + urllib.parse.urlencode(
                {"filter": f"id in {json.dumps(ids)}", "fields": "name",
                 "limit": len(ids)}), headers)

        screen_time, api_time = paired_medians(lambda: get(screen, "/app/deal"), api_list)
        figures.append(Figure(kind, "list page of 50", f"API {api_time * 1e3:.2f} ms",
                              f"screen {screen_time * 1e3:.2f} ms", api_time / screen_time,
                              ">= 0.5", api_time / screen_time >= 0.5))
        screen_time, api_time = paired_medians(
            lambda: get(screen, "/app/deal"),
            lambda: get(api, "/api/v1/records/deal?limit=50&sort=-close_date", headers))
        figures.append(Figure(kind, "list page vs the deals call alone",
                              f"API {api_time * 1e3:.2f} ms",
                              f"screen {screen_time * 1e3:.2f} ms", api_time / screen_time,
                              "(scale)", None))
        view = get(screen, f"/app/account/{account}").decode()
        for entity in RELATED:
            assert f'data-related="{entity}.account"' in view, f"no related {entity} list"

        def api_record() -> None:
            get(api, f"/api/v1/records/account/{account}", headers)
            for entity in RELATED:
                get(api, f'/api/v1/records/{entity}?limit=10&filter=account == "{account}"',
                    headers)

        screen_time, api_time = paired_medians(
            lambda: get(screen, f"/app/account/{account}"), api_record)
        figures.append(Figure(kind, "record view + 3 related lists",
                              f"API {api_time * 1e3:.2f} ms",
                              f"screen {screen_time * 1e3:.2f} ms", api_time / screen_time,
                              ">= 0.5", api_time / screen_time >= 0.5))
        return figures
    finally:
        app.extensions["blocks"].close()
        ws.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args(argv)
    figures: list[Figure] = []
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="blocks-bench-screens-") as folder:
            figures += run_database("sqlite", f"sqlite:///{Path(folder) / 'w.db'}", args.deals)
    if args.db in ("postgresql", "both"):
        target = postgres_target(args.postgres_url)
        try:
            figures += run_database("postgresql", target.urls["big"], args.deals)
        finally:
            target.cleanup()
    print(table(figures))
    print("ratio = API time / screen time, medians of turns (higher is better).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
