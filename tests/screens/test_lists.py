"""The list screen: a filter built with the builder, a saved view opened again, sort by
column, bulk update / transition / delete checked per record, CSV export of what the
filter selects (and 403 without the export permission), and the filter at 390 px.

The browser tests drive headless Chromium; the rest use Flask's test client.
"""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from blockscrm.engine import User, Workspace
from blockscrm.platform.app import create_app

from .conftest import absent, csrf_token, follow, log_in, shoot, submit

DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deals", "zh": "交易"},
        "required": ["title"], "x-title-field": "title",
        "properties": {
            "title": {"type": "string", "x-label": {"en": "Title", "zh": "标题"}},
            "amount": {"type": "number", "minimum": 0, "x-field": "currency",
                       "x-currency": "USD", "x-label": {"en": "Amount", "zh": "金额"}},
            "stage": {"type": "string", "enum": ["new", "won", "lost"], "x-field": "select",
                      "x-label": {"en": "Stage"},
                      "x-options": {"new": {"label": {"en": "New"}},
                                    "won": {"label": {"en": "Won"}, "color": "green"},
                                    "lost": {"label": {"en": "Lost"}, "color": "red"}}},
            "close_date": {"type": "string", "format": "date",
                           "x-label": {"en": "Close date"}}}}
PIPELINE = {"kind": "workflow", "name": "pipeline", "label": {"en": "Pipeline"},
            "entity": "deal", "initial": "open",
            "states": [{"name": "open", "label": {"en": "Open"}},
                       {"name": "closed", "label": {"en": "Closed"}}],
            "transitions": [{"name": "close", "from": ["open"], "to": "closed",
                             "label": {"en": "Close"}, "guard": "amount > 0",
                             "guard_message": {"en": "a closed deal has an amount"}}]}
VIEW = {"kind": "view", "name": "all_deals", "label": {"en": "All deals"}, "entity": "deal",
        "default": True, "columns": ["title", "amount", "stage", "state"], "sort": ["title"],
        "page_size": 20}
REP = {"kind": "role", "name": "rep", "label": {"en": "Rep"},
       "permissions": {"deal": {"read": True, "create": True, "update": "own",
                                "delete": "own", "export": True}}}
VIEWER = {"kind": "role", "name": "viewer", "label": {"en": "Viewer"},
          "permissions": {"deal": {"read": True}}}
DEALS = [("Alpha", 20, "won"), ("Bravo", 80, "won"), ("Charlie", 120, "won"),
         ("Delta", 300, "lost"), ("Echo", 60, "new"), ("Foxtrot", 0, "new")]


def set_up(ws: Workspace) -> dict[str, User]:
    """Deals, a workflow and a view; ann and bob (reps, each updating only their own
    deals) and vic (who may read but not export). Bravo belongs to bob."""
    for document in (DEAL, PIPELINE, VIEW, REP, VIEWER):
        ws.metadata.create(document)
    ws.metadata.publish()
    users = {name: ws.accounts.create_user(name, password="correct horse", roles=[role])
             for name, role in (("ann", "rep"), ("bob", "rep"), ("vic", "viewer"))}
    for title, amount, stage in DEALS:
        owner = users["bob"] if title == "Bravo" else users["ann"]
        ws.records.create("deal", {"title": title, "amount": amount, "stage": stage,
                                   "close_date": "2025-03-01"}, user=owner)
    return users


def titles(browser: webdriver.Chrome) -> list[str]:
    """The titles of the listed records (the first column's link)."""
    return [a.text for a in browser.find_elements(
        By.CSS_SELECTOR, "table.records tbody tr td:first-child > a")]


def add_condition(browser: webdriver.Chrome, field: str, operator: str,
                  value: str | None = None) -> WebElement:
    """Add a row to the filter builder and fill it in."""
    browser.find_element(By.ID, "add-condition").click()
    row = browser.find_elements(By.CSS_SELECTOR, "#filter-rows .filter-row")[-1]
    Select(row.find_element(By.CSS_SELECTOR, "select[name$=f]")).select_by_visible_text(field)
    Select(row.find_element(By.CSS_SELECTOR, "select[name$=o]")).select_by_visible_text(
        operator)
    if value is not None:
        box = row.find_element(By.CSS_SELECTOR, ".value input, .value select")
        if box.tag_name == "select":
            Select(box).select_by_visible_text(value)
        else:
            box.send_keys(value)
    return row


def open_filter(browser: webdriver.Chrome) -> None:
    panel = browser.find_element(By.ID, "filter-panel")
    if panel.get_attribute("open") is None:
        panel.find_element(By.TAG_NAME, "summary").click()


def flashes(browser: webdriver.Chrome) -> list[str]:
    return [p.text for p in browser.find_elements(By.CSS_SELECTOR, "main .flash")]


def test_filter_save_and_sort(site: tuple[str, Flask], browser: webdriver.Chrome) -> None:
    base, app = site
    set_up(app.extensions["blocks"])
    log_in(browser, base, "ann")
    assert titles(browser) == ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "thead th")]
    assert headers == ["Title", "Amount", "Stage", "State"]
    open_filter(browser)
    add_condition(browser, "Amount", ">", "50")
    add_condition(browser, "Stage", "is one of", "Won")
    shoot(browser, "list-filter-builder")
    follow(browser, browser.find_element(By.ID, "apply-filter"))
    tree = json.loads(parse_qs(urlsplit(browser.current_url).query)["filter"][0])
    assert tree == {"and": [{">": [{"var": "amount"}, 50]},
                            {"in": [{"var": "stage"}, ["won"]]}]}
    assert titles(browser) == ["Bravo", "Charlie"]
    chips = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "[data-chip]")]
    remove = "\N{MULTIPLICATION SIGN}"
    assert chips == [f"Amount > 50{remove}", f"Stage is one of Won{remove}"]
    # the builder shows the active filter's rows again, so it can be changed
    rows = browser.find_elements(By.CSS_SELECTOR, "#filter-rows .filter-row")
    assert len(rows) == 2
    shoot(browser, "list-filtered")

    browser.find_element(By.CSS_SELECTOR, "#save-panel summary").click()
    browser.find_element(By.ID, "view-name").send_keys("Big wins")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#save-panel button[type=submit]"))
    assert "saved=" in browser.current_url
    assert any("Big wins" in text for text in flashes(browser))
    browser.get(f"{base}/app/deal")
    assert len(titles(browser)) == 6
    follow(browser, browser.find_element(By.CSS_SELECTOR, ".views a[data-saved]"))
    assert titles(browser) == ["Bravo", "Charlie"]
    assert browser.find_element(By.CSS_SELECTOR, ".views a[aria-current]").text == "Big wins"

    follow(browser, browser.find_element(By.LINK_TEXT, "Amount"))  # ascending
    assert titles(browser) == ["Bravo", "Charlie"]
    assert browser.find_element(By.CSS_SELECTOR, "th[aria-sort]").get_attribute(
        "aria-sort") == "ascending"
    follow(browser, browser.find_element(By.LINK_TEXT, "Amount"))  # descending
    assert titles(browser) == ["Charlie", "Bravo"]
    assert "saved=" in browser.current_url  # the sort keeps the saved view
    shoot(browser, "list-saved-view-sorted")

    # dropping a chip drops its condition
    follow(browser, browser.find_element(By.CSS_SELECTOR, "[data-chip] a[aria-label*=Stage]"))
    assert titles(browser) == ["Delta", "Charlie", "Bravo", "Echo"]


def select_rows(browser: webdriver.Chrome, *names: str) -> None:
    for row in browser.find_elements(By.CSS_SELECTOR, "table.records tbody tr"):
        if row.find_element(By.TAG_NAME, "a").text in names:
            row.find_element(By.CSS_SELECTOR, "input.pick").click()


def test_bulk_actions(site: tuple[str, Flask], browser: webdriver.Chrome) -> None:
    base, app = site
    ws = app.extensions["blocks"]
    set_up(ws)
    log_in(browser, base, "ann", path='/app/deal?filter=stage == "won"')
    assert titles(browser) == ["Alpha", "Bravo", "Charlie"]
    browser.find_element(By.ID, "select-all").click()
    assert browser.find_element(By.ID, "selected-count").text == "3 selected"
    Select(browser.find_element(By.ID, "bulk-field")).select_by_visible_text("Amount")
    browser.find_element(By.ID, "bulk-value-amount").send_keys("500")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "button[value=update]"))
    messages = flashes(browser)
    assert messages[0] == "Amount set on 2 of 3 records."
    assert messages[1].startswith("Bravo: ")  # bob's deal: not ann's to update
    assert 'stage == "won"' in browser.find_element(By.ID, "filter-text").get_attribute("value")
    shoot(browser, "list-bulk-update")
    amounts = {r["title"]: r["amount"] for r in ws.query("deal").page().items}
    assert amounts == {"Alpha": 500, "Bravo": 80, "Charlie": 500, "Delta": 300, "Echo": 60,
                       "Foxtrot": 0}

    browser.get(f"{base}/app/deal")
    select_rows(browser, "Echo", "Foxtrot")
    Select(browser.find_element(By.ID, "bulk-transition")).select_by_visible_text("Close")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "button[value=transition]"))
    assert flashes(browser) == ["“Close” taken on 1 of 2 records.",
                                "Foxtrot: a closed deal has an amount"]

    select_rows(browser, "Delta", "Echo")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "button[value=delete]"))
    doomed = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#doomed li")]
    assert doomed == ["Delta", "Echo"]
    shoot(browser, "list-bulk-delete-confirm")
    follow(browser, browser.find_element(By.ID, "confirm-delete"))
    assert flashes(browser) == ["Deleted 2 of 2 records."]
    assert titles(browser) == ["Alpha", "Bravo", "Charlie", "Foxtrot"]


def cookie_get(url: str, cookies: list[dict[str, Any]]) -> tuple[int, str, str]:
    """GET ``url`` with the browser's cookies: status, content type, body."""
    header = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    request = urllib.request.Request(url, headers={"Cookie": header})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_csv_export(site: tuple[str, Flask], browser: webdriver.Chrome) -> None:
    base, app = site
    set_up(app.extensions["blocks"])
    log_in(browser, base, "ann", path="/app/deal?filter=amount >= 60&sort=-amount")
    href = browser.find_element(By.ID, "export").get_attribute("href")
    assert "filter=" in href and "sort=-amount" in href
    status, kind, body = cookie_get(href, browser.get_cookies())
    assert status == 200 and kind.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))
    assert rows == [["Title", "Amount", "Stage", "State"],
                    ["Delta", "300", "Lost", "Open"], ["Charlie", "120", "Won", "Open"],
                    ["Bravo", "80", "Won", "Open"], ["Echo", "60", "New", "Open"]]
    browser.delete_all_cookies()
    log_in(browser, base, "vic")
    assert absent(browser, "#export")
    status, _, body = cookie_get(f"{base}/app/deal/export.csv", browser.get_cookies())
    assert status == 403 and "may not export" in body


def test_filter_at_390px(site: tuple[str, Flask], browser: webdriver.Chrome) -> None:
    base, app = site
    set_up(app.extensions["blocks"])
    browser.set_window_size(390, 844)
    log_in(browser, base, "ann")
    open_filter(browser)
    row = add_condition(browser, "Stage", "is one of", "Lost")
    assert row.size["width"] <= 390
    shoot(browser, "list-filter-390px")
    follow(browser, browser.find_element(By.ID, "apply-filter"))
    assert titles(browser) == ["Delta"]
    card = browser.find_element(By.CSS_SELECTOR, "table.records tbody tr")
    assert card.size["width"] <= 390
    assert not browser.find_element(By.CSS_SELECTOR, "thead").is_displayed()
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    shoot(browser, "list-filtered-390px")


# --- Flask's test client ---------------------------------------------------------------------


@pytest.fixture
def client(workspace: Workspace) -> Iterator[FlaskClient]:
    app = create_app({"DATABASE_URL": workspace.url, "SECRET_KEY": "test-secret"})
    client = app.test_client()
    client.users = set_up(app.extensions["blocks"])  # type: ignore[attr-defined]
    yield client
    app.extensions["blocks"].close()


def as_user(client: FlaskClient, name: str) -> FlaskClient:
    with client.session_transaction() as session:
        session["user_id"] = client.users[name].id  # type: ignore[attr-defined]
    return client


def row_titles(page: str) -> list[str]:
    return re.findall(r'<tr data-id="[^"]+"><td[^>]*>.*?<a href="[^"]+">([^<]+)</a>', page)


def test_filter_parameter(client: FlaskClient) -> None:
    as_user(client, "ann")
    text = client.get("/app/deal", query_string={"filter": 'stage == "won" and amount > 50'})
    assert text.status_code == 200
    assert row_titles(text.get_data(as_text=True)) == ["Bravo", "Charlie"]
    tree = client.get("/app/deal", query_string={"filter": json.dumps(
        {"in": [{"var": "stage"}, ["lost", "new"]]})})
    assert row_titles(tree.get_data(as_text=True)) == ["Delta", "Echo", "Foxtrot"]
    none = client.get("/app/deal", query_string={"filter": ""})
    assert len(row_titles(none.get_data(as_text=True))) == 6

    bad = client.get("/app/deal", query_string={"filter": "amount >"})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "Filter: line 1, column 9: expected a value" in page
    assert 'value="amount &gt;"' in page  # the user's text kept for fixing
    unknown = client.get("/app/deal", query_string={"filter": '{"==": [{"var": "nope"}, 1]}'})
    assert unknown.status_code == 400 and "nope" in unknown.get_data(as_text=True)
    broken = client.get("/app/deal", query_string={"filter": "{not json"})
    assert broken.status_code == 400 and "not valid JSON" in broken.get_data(as_text=True)
    cursor = client.get("/app/deal", query_string={"cursor": "forged.cursor"})
    assert cursor.status_code == 400 and "cursor" in cursor.get_data(as_text=True)


def test_builder_parameters(client: FlaskClient) -> None:
    as_user(client, "ann")
    answer = client.get("/app/deal", query_string={
        "b": "1", "join": "or", "r0f": "amount", "r0o": "lt", "r0v": "30",
        "r1f": "close_date", "r1o": "after", "r1v": "2026-01-01",
        "r2f": "stage", "r2o": "not_in", "r2v": ["won", "new"], "sort": "-amount"})
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["sort"] == ["-amount"]
    assert json.loads(query["filter"][0]) == {"or": [
        {"<": [{"var": "amount"}, 30]},
        {">": [{"var": "close_date"}, {"date": ["2026-01-01"]}]},
        {"!": [{"in": [{"var": "stage"}, ["won", "new"]]}]}]}
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert row_titles(page) == ["Delta", "Alpha", "Foxtrot"]

    wrong = client.get("/app/deal", query_string={
        "b": "1", "r0f": "amount", "r0o": "gt", "r0v": "lots"})
    assert wrong.status_code == 400
    assert "Amount: enter a number" in wrong.get_data(as_text=True)
    spec = re.search(r'id="filter-spec">(.*?)</script>', wrong.get_data(as_text=True))
    assert spec and json.loads(spec.group(1))["rows"] == [
        {"field": "amount", "op": "gt", "value": ["lots"]}]  # kept for fixing


def test_saved_view_and_export(client: FlaskClient) -> None:
    as_user(client, "ann")
    token = csrf_token(client, "/app/deal")
    empty = client.post("/app/deal/views", data={"csrf_token": token, "name": " ",
                                                 "filter": "", "sort": "-amount"})
    assert empty.status_code == 422 and "Name: must not be empty" in empty.get_data(
        as_text=True)
    refused = client.post("/app/deal/views", data={"csrf_token": token, "name": "Bad",
                                                   "filter": "amount >"})
    assert refused.status_code == 400 and "expected a value" in refused.get_data(as_text=True)
    saved = client.post("/app/deal/views", data={
        "csrf_token": token, "name": "Lost ones", "shared": "on", "sort": "-amount",
        "filter": json.dumps({"==": [{"var": "stage"}, "lost"]}),
        "columns": "title,state"})
    assert saved.status_code == 302
    location = saved.headers["Location"]
    as_user(client, "vic")  # shared: vic sees it too, with his own permissions
    page = client.get(location).get_data(as_text=True)
    assert row_titles(page) == ["Delta"]
    assert "Lost ones" in page and "Delete view" not in page
    assert client.get("/app/deal/export.csv").status_code == 403
    as_user(client, "ann")
    view_id = int(parse_qs(urlsplit(location).query)["saved"][0])
    csv_text = client.get(f"/app/deal/export.csv?saved={view_id}").get_data(as_text=True)
    assert csv_text == "\ufeffTitle,State\r\nDelta,Open\r\n"
    gone = client.post(f"/app/deal/views/{view_id}/delete", data={"csrf_token": token})
    assert gone.status_code == 302
    assert client.get(location).status_code == 404


def test_bulk_needs_a_selection_and_stays_on_the_list(client: FlaskClient) -> None:
    as_user(client, "ann")
    token = csrf_token(client, "/app/deal")
    nothing = client.post("/app/deal/bulk", data={"csrf_token": token, "action": "delete",
                                                  "back": "https://evil.example/"})
    assert nothing.status_code == 302 and nothing.headers["Location"] == "/app/deal"
    no_token = client.post("/app/deal/bulk", data={"action": "delete", "ids": ["x"]})
    assert no_token.status_code == 400


def test_next_page_keeps_the_filter_search_and_sort(client: FlaskClient) -> None:
    ws = client.application.extensions["blocks"]
    ws.records.bulk_insert("deal", [{"title": f"Big {i:02}", "amount": 1000 + i}
                                    for i in range(25)])
    as_user(client, "ann")
    first = client.get("/app/deal", query_string={
        "filter": "amount >= 1000", "q": "big", "sort": "-amount"}).get_data(as_text=True)
    assert row_titles(first) == [f"Big {i:02}" for i in range(24, 4, -1)]  # 20 a page
    found = re.search(r'<a rel="next" href="([^"]+)"', first)
    assert found
    link = found.group(1).replace("&amp;", "&")
    assert all(part in link for part in ("filter=", "q=big", "sort=-amount", "cursor="))
    second = client.get(link).get_data(as_text=True)
    assert row_titles(second) == [f"Big {i:02}" for i in range(4, -1, -1)]
    assert "First page" in second and 'rel="next"' not in second
