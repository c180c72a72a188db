"""The kanban board in a real browser: columns per workflow state with counts and sums;
dragging a card takes the transition (allowed), snaps back with the reason (a guard, a
role), asks for a required field in a dialog; at 390 px the board scrolls sideways; an
entity with nothing to group by gets a page that says so."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from blockscrm.engine import Workspace
from blockscrm.platform.app import create_app

from .conftest import follow, log_in, logged_in_client, shoot, wait

DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deals"}, "required": ["title"],
        "properties": {
            "title": {"type": "string", "x-label": {"en": "Title"}},
            "amount": {"type": "number", "x-field": "currency", "x-currency": "USD",
                       "x-label": {"en": "Amount"}},
            "close_date": {"type": "string", "format": "date", "x-label": {"en": "Close date"}}}}
PIPELINE = {
    "kind": "workflow", "name": "pipeline", "label": {"en": "Pipeline"}, "entity": "deal",
    "initial": "new",
    "states": [{"name": "new", "label": {"en": "New"}, "order": 1},
               {"name": "qualified", "label": {"en": "Qualified"}, "order": 2},
               {"name": "won", "label": {"en": "Won"}, "category": "won", "color": "green",
                "order": 3},
               {"name": "lost", "label": {"en": "Lost"}, "category": "lost", "order": 4}],
    "transitions": [
        {"name": "qualify", "from": ["new"], "to": "qualified", "label": {"en": "Qualify"},
         "guard": "amount > 0", "guard_message": {"en": "a qualified deal has an amount"}},
        {"name": "win", "from": ["qualified"], "to": "won", "label": {"en": "Win"},
         "require": ["close_date"]},
        {"name": "lose", "from": "*", "to": "lost", "roles": ["manager"]}]}
VIEW = {"kind": "view", "name": "deals", "label": {"en": "Deals"}, "entity": "deal",
        "columns": ["title", "amount", "state"],
        "kanban": {"group_by": "state", "fields": ["amount", "close_date"], "sum": "amount"}}
NOTE = {"kind": "entity", "name": "note", "label": {"en": "Notes"},
        "properties": {"text": {"type": "string"}}}
REP = {"kind": "role", "name": "rep", "label": {"en": "Rep"},
       "permissions": {"deal": {"read": True, "create": True, "update": True},
                       "note": {"read": True}}}
MANAGER = {"kind": "role", "name": "manager", "label": {"en": "Manager"},
           "permissions": {"deal": {"read": True, "update": True}}}


def _header(browser: webdriver.Chrome, column: str) -> tuple[str, str]:
    section = browser.find_element(By.CSS_SELECTOR, f'.kanban-column[data-column="{column}"]')
    return (section.find_element(By.CSS_SELECTOR, "[data-count]").text,
            section.find_element(By.CSS_SELECTOR, "[data-sum]").text)


def _drag(browser: webdriver.Chrome, record_id: str, column: str) -> None:
    """A real drag (SortableJS in its pointer-event fallback mode), in small steps."""
    card = browser.find_element(By.CSS_SELECTOR, f'.kanban-card[data-id="{record_id}"] dl')
    target = browser.find_element(By.CSS_SELECTOR, f'.kanban-cards[data-column="{column}"]')
    chain = ActionChains(browser, duration=50).click_and_hold(card)
    for _ in range(3):
        chain.move_by_offset(8, 8)
    chain.move_to_element(target).move_by_offset(0, 4).move_by_offset(0, 4).release().perform()


def _in_column(browser: webdriver.Chrome, record_id: str) -> str:
    return str(browser.execute_script(
        "const c = document.querySelector(`.kanban-card[data-id='${arguments[0]}']`);"
        "return c && !c.classList.contains('busy') ? c.closest('ol').dataset.column : null;",
        record_id))


def _settled(browser: webdriver.Chrome, record_id: str, column: str) -> None:
    wait(browser).until(lambda b: _in_column(b, record_id) == column)


def test_drag_cards_across_the_board(site: tuple[str, Flask],
                                     browser: webdriver.Chrome) -> None:
    base, app = site
    ws = app.extensions["blocks"]
    for document in (DEAL, NOTE, REP, MANAGER, PIPELINE, VIEW):
        ws.metadata.create(document)
    ws.metadata.publish()
    ws.accounts.create_user("ann", password="correct horse", roles=["rep"])
    alpha: dict[str, Any] = ws.records.create("deal", {"title": "Alpha", "amount": 1200})
    beta: dict[str, Any] = ws.records.create("deal", {"title": "Beta", "amount": 0})
    ws.records.create("deal", {"title": "Gamma", "amount": 300})
    log_in(browser, base, "ann", path="/app/deal/kanban")
    columns = [h.text for h in browser.find_elements(By.CSS_SELECTOR, ".kanban-column h2")]
    assert columns == ["New", "Qualified", "Won", "Lost"]
    assert _header(browser, "new") == ("3", "$1,500.00")
    assert _header(browser, "qualified") == ("0", "$0.00")
    shoot(browser, "kanban")

    _drag(browser, alpha["id"], "qualified")  # allowed
    wait(browser).until(lambda b: _header(b, "qualified")[0] == "1")
    assert ws.records.get("deal", alpha["id"])["state"] == "qualified"
    assert _header(browser, "new") == ("2", "$300.00")
    assert _header(browser, "qualified") == ("1", "$1,200.00")

    _drag(browser, beta["id"], "qualified")  # the guard refuses: the card snaps back
    alert = browser.find_element(By.ID, "kanban-message")
    wait(browser).until(lambda b: alert.is_displayed())
    assert alert.text == "a qualified deal has an amount"
    _settled(browser, beta["id"], "new")
    assert ws.records.get("deal", beta["id"])["state"] == "new"
    shoot(browser, "kanban-refused")

    _drag(browser, beta["id"], "lost")  # only a manager may
    wait(browser).until(lambda b: "role" in alert.text)
    _settled(browser, beta["id"], "new")

    _drag(browser, alpha["id"], "won")  # needs a close date: the dialog asks for it
    dialog = browser.find_element(By.ID, "move-dialog")
    wait(browser).until(lambda b: dialog.is_displayed())
    assert dialog.find_element(By.TAG_NAME, "label").text == "Close date"
    shoot(browser, "kanban-dialog")
    browser.execute_script("arguments[0].value = '2026-03-01'",
                           dialog.find_element(By.NAME, "close_date"))
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser).until(lambda b: _header(b, "won")[0] == "1")
    stored = ws.records.get("deal", alpha["id"])
    assert (stored["state"], stored["close_date"]) == ("won", "2026-03-01")
    assert _header(browser, "qualified") == ("0", "$0.00")
    assert not alert.is_displayed()

    browser.set_window_size(390, 844)
    browser.refresh()
    board = browser.find_element(By.ID, "kanban")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    assert browser.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth",
                                  board)
    shoot(browser, "kanban-390px")

    follow(browser, browser.find_element(By.LINK_TEXT, "Gamma"))  # a card opens its record
    assert browser.current_url.startswith(f"{base}/app/deal/") and "kanban" not in \
        browser.current_url
    browser.get(f"{base}/app/note/kanban")  # nothing to group notes by
    assert "no kanban board" in browser.find_element(By.TAG_NAME, "main").text



TICKET = {"kind": "entity", "name": "ticket", "label": {"en": "Tickets"},
          "properties": {"subject": {"type": "string"},
                         "priority": {"type": "string", "enum": ["low", "high"],
                                      "x-field": "select"},
                         "hours": {"type": "number", "x-label": {"en": "Hours"}}}}


def test_move_answers(workspace: Workspace) -> None:
    """The move endpoint without a browser: a select grouping sets the field (version
    checked), and a transition needing fields answers 422 with what to ask for."""
    app = create_app({"DATABASE_URL": workspace.url, "SECRET_KEY": "test-secret"})
    ws = app.extensions["blocks"]
    try:
        for document in (DEAL, TICKET, MANAGER, PIPELINE):
            ws.metadata.create(document)
        ws.metadata.publish()
        ws.accounts.create_user("root", password="correct horse", roles=["admin"])
        ticket = ws.records.create("ticket", {"subject": "Printer", "priority": "low",
                                              "hours": 2})
        deal = ws.records.create("deal", {"title": "Alpha", "amount": 10})
        ws.records.transition("deal", deal["id"], "qualify")
        client = logged_in_client(app, "root")
        page = client.get("/app/ticket/kanban").get_data(as_text=True)
        assert "Printer" in page
        headers = {"X-CSRFToken": re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)}  # type: ignore

        moved = client.post(f"/app/ticket/{ticket['id']}/move", headers=headers,
                            data={"to": "high", "version": "1"})
        assert moved.status_code == 200
        assert moved.json["columns"]["high"]["count"] == 1
        assert moved.json["columns"]["low"]["count"] == 0
        assert ws.records.get("ticket", ticket["id"])["priority"] == "high"
        stale = client.post(f"/app/ticket/{ticket['id']}/move", headers=headers,
                            data={"to": "low", "version": "1"})
        assert stale.status_code == 409 and stale.json["error"]

        asked = client.post(f"/app/deal/{deal['id']}/move", headers=headers,
                            data={"to": "won"})
        assert asked.status_code == 422
        assert asked.json["missing"] == [{"name": "close_date", "label": "Close date",
                                          "input": "date"}]
        bad = client.post(f"/app/deal/{deal['id']}/move", headers=headers,
                          data={"to": "won", "close_date": "soon", "submitted": "1"})
        assert bad.status_code == 422 and "close_date" in bad.json["errors"]
        back = client.post(f"/app/deal/{deal['id']}/move", headers=headers,
                           data={"to": "new"})
        assert back.status_code == 409 and "cannot move" in back.json["error"]
        unguarded = client.post(f"/app/deal/{deal['id']}/move", data={"to": "won"})
        assert unguarded.status_code == 400  # no CSRF token
    finally:
        ws.close()


STAGED = {"kind": "entity", "name": "lead", "label": {"en": "Leads"},
          "properties": {"name": {"type": "string"},
                         "stage": {"type": "string", "x-field": "select", "x-options": {
                             "open": {"label": {"en": "Open"}, "color": "#2563eb"},
                             "won": {"label": {"en": "Won"}}}}}}


def test_a_select_with_options_only(workspace: Workspace) -> None:
    """A select defined by ``x-options`` alone has a column per option, and a card moves
    between them; a value outside the options (an option since removed) gets a column of
    its own, labelled by the value, so no record disappears from the board."""
    app = create_app({"DATABASE_URL": workspace.url, "SECRET_KEY": "test-secret"})
    ws = app.extensions["blocks"]
    try:
        ws.metadata.create(STAGED)
        ws.metadata.publish()
        ws.accounts.create_user("root", password="correct horse", roles=["admin"])
        lead = ws.records.create("lead", {"name": "Ada", "stage": "open"})
        stray = ws.records.create("lead", {"name": "Bea", "stage": "open"})
        table = ws.catalog().entity("lead").table
        with ws.transaction() as conn:  # a value the options no longer offer
            conn.execute(table.update().where(table.c.id == stray["id"]).values(stage="lost"))
        client = logged_in_client(app, "root")
        page = client.get("/app/lead/kanban").get_data(as_text=True)
        columns = re.findall(r'<h2 id="column-\d+">([^<]*)</h2>', page)
        assert columns == ["Open", "Won", "lost"]
        assert "Ada" in page and "Bea" in page
        assert 'style="--column: #2563eb"' in page
        assert 'data-column="lost" data-extra' in page
        headers = {"X-CSRFToken": re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)}  # type: ignore

        moved = client.post(f"/app/lead/{lead['id']}/move", headers=headers,
                            data={"to": "won", "version": "1"})
        assert moved.status_code == 200, moved.json
        assert ws.records.get("lead", lead["id"])["stage"] == "won"
        assert {k: v["count"] for k, v in moved.json["columns"].items()} == {
            "open": 0, "won": 1, "lost": 1}
        odd = client.post(f"/app/lead/{lead['id']}/move", headers=headers,
                          data={"to": "lost", "version": "²"})
        assert odd.status_code == 400 and "no column lost" in odd.json["error"]
        back = client.post(f"/app/lead/{stray['id']}/move", headers=headers,
                           data={"to": "open"})
        assert back.status_code == 200
        assert ws.records.get("lead", stray["id"])["stage"] == "open"
    finally:
        ws.close()
