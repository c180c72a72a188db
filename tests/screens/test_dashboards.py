"""Dashboards in a real browser: number, bar, pie, funnel and table cards drawn with
ECharts, each computed as the viewer (a rep who reads only their own deals sees smaller
figures), a card the viewer may not read, a click on a bar that opens the list behind
it, and a dashboard meant for other roles."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

from flask import Flask
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from blockscrm.engine import Workspace
from blockscrm.platform.app import create_app

from .conftest import log_in, logged_in_client, shoot, wait

DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deals"}, "required": ["title"],
        "properties": {
            "title": {"type": "string", "x-label": {"en": "Title"}},
            "amount": {"type": "number", "x-field": "currency", "x-currency": "USD",
                       "x-label": {"en": "Amount"}},
            "stage": {"type": "string", "enum": ["open", "won", "lost"], "x-field": "select",
                      "x-options": {"won": {"label": {"en": "Won"}, "color": "green"},
                                    "lost": {"label": {"en": "Lost"}, "color": "red"},
                                    "open": {"label": {"en": "Open"}}}},
            "close_date": {"type": "string", "format": "date"}}}
PIPELINE = {
    "kind": "workflow", "name": "pipeline", "label": {"en": "Pipeline"}, "entity": "deal",
    "initial": "new",
    "states": [{"name": "new", "label": {"en": "New"}},
               {"name": "qualified", "label": {"en": "Qualified"}},
               {"name": "won", "label": {"en": "Won"}, "category": "won"}],
    "transitions": [{"name": "qualify", "from": ["new"], "to": "qualified"},
                    {"name": "win", "from": ["qualified"], "to": "won"}]}
PAYROLL = {"kind": "entity", "name": "payroll", "label": {"en": "Payroll"},
           "properties": {"who": {"type": "string"}}}
REP = {"kind": "role", "name": "rep", "label": {"en": "Rep"},
       "permissions": {"deal": {"read": "own", "create": True, "update": "own"}}}
MANAGER = {"kind": "role", "name": "manager", "label": {"en": "Manager"},
           "permissions": {"deal": {"read": True}}}
TEAM = {"kind": "dashboard", "name": "team", "label": {"en": "Team"}, "roles": ["manager"],
        "cards": [{"type": "number", "entity": "deal"}]}
BOARD = {
    "kind": "dashboard", "name": "sales", "label": {"en": "Sales"},
    "cards": [
        {"type": "number", "entity": "deal", "title": {"en": "Deals"}},
        {"type": "bar", "entity": "deal", "title": {"en": "Amount by stage"},
         "group_by": "stage", "metric": "sum:amount", "filter": "amount > 0", "width": 2},
        {"type": "pie", "entity": "deal", "title": {"en": "By month"},
         "group_by": "close_date:month"},
        {"type": "funnel", "entity": "deal", "title": {"en": "Funnel"}},
        {"type": "table", "entity": "deal", "title": {"en": "Biggest"},
         "columns": ["title", "amount"], "sort": ["-amount"], "limit": 3, "width": 2},
        {"type": "number", "entity": "payroll", "title": {"en": "Payroll"}}]}


def _click_bar(browser: webdriver.Chrome, card: str, label: str) -> None:
    """A real click in the middle of a bar, found through the chart's own coordinates."""
    element = browser.find_element(By.CSS_SELECTOR, f"#{card} [data-chart]")
    x, y = browser.execute_script(
        "const entry = window.blocksCharts[arguments[0]];"
        "const i = entry.data.points.findIndex((p) => p.label === arguments[1]);"
        "return entry.chart.convertToPixel({seriesIndex: 0},"
        " [i, entry.data.points[i].value / 2]);", card, label)
    size = element.size
    ActionChains(browser).move_to_element_with_offset(
        element, round(x - size["width"] / 2), round(y - size["height"] / 2)).click().perform()


def test_a_dashboard_as_two_viewers(site: tuple[str, Flask],
                                    browser: webdriver.Chrome) -> None:
    base, app = site
    ws = app.extensions["blocks"]
    for document in (DEAL, PAYROLL, REP, MANAGER, PIPELINE, BOARD, TEAM):
        ws.metadata.create(document)
    ws.metadata.publish()
    ws.accounts.create_user("boss", password="correct horse", roles=["admin"])
    ann = ws.accounts.create_user("ann", password="correct horse", roles=["rep"])
    for i, stage in enumerate(["won", "won", "lost", "open", "won"]):
        ws.records.create("deal", {"title": f"House {i}", "amount": 100 * (i + 1),
                                   "stage": stage, "close_date": f"2026-0{i % 2 + 1}-10"})
    mine = ws.records.create("deal", {"title": "Mine", "amount": 50, "stage": "won",
                                      "close_date": "2026-01-20"}, user=ann)
    ws.records.transition("deal", mine["id"], "qualify", user=ann)

    log_in(browser, base, "boss", path="/app/dashboards/sales")
    assert browser.find_element(By.CSS_SELECTOR, "#card-0 .figure").text == "6"
    for card in ("card-1", "card-2", "card-3"):
        wait(browser).until(lambda b, c=card: b.find_elements(
            By.CSS_SELECTOR, f"#{c} [data-chart] canvas"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#card-4 tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == [
        "House 4", "House 3", "House 2"]
    assert browser.find_element(By.CSS_SELECTOR, "#card-5 .figure").text == "0"
    funnel = browser.execute_script(
        "return window.blocksCharts['card-3'].data.points.map((p) => [p.label, p.value])")
    assert funnel == [["New", 5], ["Qualified", 1], ["Won", 0]]
    shoot(browser, "dashboard")

    _click_bar(browser, "card-1", "Won")
    wait(browser).until(lambda b: "/app/deal?" in b.current_url)
    query = parse_qs(urlparse(browser.current_url).query)
    assert query["filter"] == ['amount > 0 and stage == "won"']

    browser.delete_all_cookies()
    log_in(browser, base, "ann", path="/app/dashboards/sales")
    assert browser.find_element(By.CSS_SELECTOR, "#card-0 .figure").text == "1"
    assert browser.find_element(By.CSS_SELECTOR, "#card-5").text.endswith(
        "Not available to you.")
    pie = browser.execute_script(
        "return window.blocksCharts['card-2'].data.points.map((p) => [p.label, p.url])")
    assert len(pie) == 1 and pie[0][0] == "2026-01"
    assert parse_qs(urlparse(pie[0][1]).query)["filter"] == [
        'close_date >= date("2026-01-01") and close_date < date("2026-02-01")']
    browser.set_window_size(390, 844)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    widths = browser.execute_script(
        "return [...document.querySelectorAll('.dash-card')].map((c) => c.offsetWidth)")
    assert len(set(widths)) == 1  # stacked, one column
    shoot(browser, "dashboard-390px")
    links = browser.find_elements(By.CSS_SELECTOR, "nav a.nav-dashboard")
    assert [a.get_attribute("href") for a in links] == [f"{base}/app/dashboards/sales"]
    browser.get(f"{base}/app/dashboards/team")
    assert "not meant for your roles" in browser.find_element(By.TAG_NAME, "main").text


CALENDAR = {
    "kind": "dashboard", "name": "calendar", "label": {"en": "Calendar"},
    "cards": [{"type": "bar", "entity": "deal", "title": {"en": "By month"},
               "group_by": "close_date:month"},
              {"type": "bar", "entity": "deal", "title": {"en": "By day"},
               "group_by": "close_date:day"},
              {"type": "pie", "entity": "deal", "title": {"en": "By year"},
               "group_by": "close_date:year"}]}


def test_dates_at_the_ends_of_the_calendar(workspace: Workspace) -> None:
    """A record closing on 9999-12-31 is in the last day, month and year there are: its
    bars link to the list from the bucket's first day on (there is no day after it)."""
    app = create_app({"DATABASE_URL": workspace.url, "SECRET_KEY": "test-secret"})
    ws = app.extensions["blocks"]
    try:
        for document in (DEAL, CALENDAR):
            ws.metadata.create(document)
        ws.metadata.publish()
        ws.accounts.create_user("boss", password="correct horse", roles=["admin"])
        ws.records.create("deal", {"title": "Forever", "close_date": "9999-12-31"})
        ws.records.create("deal", {"title": "Early", "close_date": "0001-01-01"})
        client = logged_in_client(app, "boss")
        answer = client.get("/app/dashboards/calendar")
        assert answer.status_code == 200
        page = answer.get_data(as_text=True)
        filters = {}
        for card in ("card-0", "card-1", "card-2"):
            found = re.search(rf'id="{card}-data">(.*?)</script>', page, re.S)
            assert found is not None, card
            points = json.loads(found.group(1))["points"]
            filters[card] = {p["label"]: parse_qs(urlparse(p["url"]).query)["filter"][0]
                             for p in points}
        assert filters["card-0"] == {
            "9999-12": 'close_date >= date("9999-12-01")',
            "0001-01": 'close_date >= date("0001-01-01") and close_date < date("0001-02-01")'}
        assert filters["card-1"]["9999-12-31"] == 'close_date >= date("9999-12-31")'
        assert filters["card-2"]["9999"] == 'close_date >= date("9999-01-01")'
        listed = client.get("/app/deal", query_string={"filter": filters["card-0"]["9999-12"]})
        assert listed.status_code == 200
        assert "Forever" in listed.text and "Early" not in listed.text
    finally:
        ws.close()
