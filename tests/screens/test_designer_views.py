"""The designer's view and dashboard editors in a real browser: a view's columns chosen and
ordered by drag and by keyboard, its filter, sort keys, page size and kanban board; a
dashboard's cards of every kind, moved and widened by drag and by keyboard, each previewed
with the published records; each saved as the draft the engine holds, a 422 shown on the
element it concerns, and once published, the list, the board and the dashboard follow."""

from __future__ import annotations

import json

from flask import Flask
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from blockscrm.engine import Workspace

from .conftest import log_in, shoot, wait
from .test_designer_entities import _click, _drag, _type

DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deals"}, "required": ["title"],
        "properties": {
            "title": {"type": "string", "x-label": {"en": "Title"}},
            "amount": {"type": "number", "x-field": "currency", "x-currency": "USD",
                       "x-label": {"en": "Amount"}},
            "stage": {"type": "string", "enum": ["open", "won", "lost"], "x-field": "select",
                      "x-label": {"en": "Stage"},
                      "x-options": {"won": {"label": {"en": "Won"}, "color": "green"},
                                    "lost": {"label": {"en": "Lost"}, "color": "red"},
                                    "open": {"label": {"en": "Open"}}}},
            "close_date": {"type": "string", "format": "date", "x-label": {"en": "Close date"}}}}
PIPELINE = {
    "kind": "workflow", "name": "pipeline", "label": {"en": "Pipeline"}, "entity": "deal",
    "initial": "new",
    "states": [{"name": "new", "label": {"en": "New"}},
               {"name": "qualified", "label": {"en": "Qualified"}},
               {"name": "won", "label": {"en": "Won"}, "category": "won"}],
    "transitions": [{"name": "qualify", "from": ["new"], "to": "qualified"}]}


def _set_up(ws: Workspace) -> None:
    """Deals worth 100 to 500 (the last one qualified), and an admin to design."""
    for document in (DEAL, PIPELINE):
        ws.metadata.create(document)
    ws.metadata.publish()
    ws.accounts.create_user("ada", password="correct horse", roles=["admin"])
    for i, stage in enumerate(["won", "open", "lost", "won", "open"]):
        record = ws.records.create("deal", {"title": f"House {i}", "amount": 100 * (i + 1),
                                            "stage": stage,
                                            "close_date": f"2026-0{i % 2 + 1}-10"})
    ws.records.transition("deal", record["id"], "qualify")


def _key(browser: webdriver.Chrome, key: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, f'[data-key="{key}"]')


def _press(browser: webdriver.Chrome, key: str) -> None:
    """Press a button from the keyboard, as someone without a mouse would."""
    _key(browser, key).send_keys(Keys.ENTER)


def _choose(browser: webdriver.Chrome, key: str, value: str) -> None:
    Select(_key(browser, key)).select_by_value(value)


def _names(browser: webdriver.Chrome, picker: str) -> list[str]:
    return [item.get_attribute("data-name") for item in browser.find_elements(
        By.CSS_SELECTOR, f'[data-picker="{picker}"] .picked > li')]


def _texts(browser: webdriver.Chrome, css: str) -> list[str]:
    """The texts of what ``css`` matches, read at once (a preview may be redrawn between
    two reads)."""
    found: list[str] = browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent.trim())",
        css)
    return found


def _focused(browser: webdriver.Chrome) -> str | None:
    return browser.switch_to.active_element.get_attribute("data-key")


def _save(browser: webdriver.Chrome) -> str:
    """Save the draft and answer what the status line says once the answer came."""
    status = browser.find_element(By.CSS_SELECTOR, "[data-status]")
    browser.find_element(By.CSS_SELECTOR, "[data-save]").click()
    wait(browser).until(lambda b: status.text not in ("", "Saving…")
                        and b.find_element(By.CSS_SELECTOR, "[data-save]").is_enabled())
    return status.text


def _condition_text(browser: webdriver.Chrome, key: str, text: str) -> None:
    """Write a condition in the builder's text tab; it is read back as rows."""
    _click(browser, _key(browser, f"{key}:tab-text"))
    area = _key(browser, f"{key}:text")
    _type(area, text)
    wait(browser).until(lambda b: b.find_elements(
        By.CSS_SELECTOR, f'[data-condition="{key}"] .condition-row'))


def _publish(browser: webdriver.Chrome, base: str) -> None:
    browser.get(f"{base}/designer/review")
    _click(browser, browser.find_element(By.CSS_SELECTOR, "[data-publish]"))
    assert browser.find_element(By.CSS_SELECTOR, "[data-published]")


def test_build_a_view_then_publish_it(site: tuple[str, Flask], browser: webdriver.Chrome,
                                      workspace: Workspace) -> None:
    base, _ = site
    _set_up(workspace)
    log_in(browser, base, "ada", path="/designer/view/new")
    wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, "[data-save]").is_enabled())
    _type(browser.find_element(By.CSS_SELECTOR, "[data-view-name]"), "big_deals")
    _type(browser.find_element(By.CSS_SELECTOR, '[data-label="en"]'), "Big deals")
    _choose(browser, "entity", "deal")

    # Columns: one added with the select, one clicked in the palette, one dragged in.
    _choose(browser, "columns:add-select", "title")
    _press(browser, "columns:add")
    _click(browser, _key(browser, "columns:palette-amount"))
    stage = browser.find_element(By.CSS_SELECTOR, '[data-picker="columns"] .palette '
                                                  '[data-name="stage"]')
    amount = browser.find_element(By.CSS_SELECTOR, '[data-picker="columns"] .picked '
                                                   '[data-name="amount"]')
    _drag(browser, stage, amount, below=False)
    assert _names(browser, "columns") == ["title", "stage", "amount"]
    _press(browser, "columns:2:up")  # by keyboard: the focus stays on the moved row
    assert _names(browser, "columns") == ["title", "amount", "stage"]
    assert _focused(browser) == "columns:1:up"
    handle = browser.find_element(By.CSS_SELECTOR, '[data-picker="columns"] .picked '
                                                   '[data-name="stage"] .handle')
    _drag(browser, handle, _key(browser, "columns:1:up").find_element(By.XPATH, "../.."),
          below=False)
    assert _names(browser, "columns") == ["title", "stage", "amount"]

    _condition_text(browser, "filter", "amount > 100")
    _press(browser, "sort:add")
    _choose(browser, "sort:0:field", "amount")
    _choose(browser, "sort:0:direction", "desc")
    _press(browser, "sort:add")
    assert _key(browser, "sort:1:field").get_attribute("value") == "title"
    _type(_key(browser, "page_size"), "3")
    _click(browser, _key(browser, "default"))
    _click(browser, _key(browser, "kanban:on"))
    assert _key(browser, "kanban:group").get_attribute("value") == "state"
    _choose(browser, "kanban-fields:add-select", "amount")
    _press(browser, "kanban-fields:add")
    _choose(browser, "kanban:sum", "amount")

    # The preview: the first records, filtered and sorted as the view says.
    wait(browser).until(lambda b: _texts(b, "[data-preview-box] tbody tr td:first-child") == [
        "House 4", "House 3", "House 2", "House 1"])
    shoot(browser, "designer-view-built")

    # A page size under the meta-schema's minimum: refused, and said next to its input.
    assert "Not saved" in _save(browser)
    error = browser.find_element(By.CSS_SELECTOR, '[data-pointer="/page_size"] .field-error')
    assert "5" in error.text
    _type(_key(browser, "page_size"), "20")
    assert "Saved as a draft" in _save(browser)
    assert workspace.metadata.get("view", "big_deals") == {
        "kind": "view", "name": "big_deals", "label": {"en": "Big deals"}, "entity": "deal",
        "columns": ["title", "stage", "amount"], "filter": "amount > 100",
        "sort": ["-amount", "title"], "page_size": 20, "default": True,
        "kanban": {"group_by": "state", "fields": ["amount"], "sum": "amount"}}

    # Undo and redo walk the edits; the saved view opens as it was saved.
    browser.find_element(By.TAG_NAME, "h1").click()
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    assert _key(browser, "page_size").get_attribute("value") == "3"
    browser.find_element(By.CSS_SELECTOR, "[data-redo]").click()
    assert _key(browser, "page_size").get_attribute("value") == "20"
    browser.set_window_size(768, 1000)
    browser.get(f"{base}/designer/view/big_deals")
    wait(browser).until(lambda b: _names(b, "kanban-fields") == ["amount"])
    assert _names(browser, "columns") == ["title", "stage", "amount"]
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 768
    shoot(browser, "designer-view-768px")

    _publish(browser, base)
    browser.get(f"{base}/app/deal")
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "thead th")]
    assert [h for h in headers if h] == ["Title", "Stage", "Amount"]
    titles = [a.text for a in browser.find_elements(
        By.CSS_SELECTOR, "table.records tbody tr td:first-child > a")]
    assert titles == ["House 4", "House 3", "House 2", "House 1"]
    browser.get(f"{base}/app/deal/kanban")
    columns = [h.text for h in browser.find_elements(By.CSS_SELECTOR, ".kanban-column h2")]
    assert columns == ["New", "Qualified", "Won"]
    sums = [s.text for s in browser.find_elements(By.CSS_SELECTOR, ".kanban-column [data-sum]")]
    assert sums == ["$900.00", "$500.00", "$0.00"]


def _tile_titles(browser: webdriver.Chrome) -> list[str]:
    return [t.text for t in browser.find_elements(By.CSS_SELECTOR,
                                                  "[data-cards] [data-tile-title]")]


def _add_card(browser: webdriver.Chrome, card_type: str, title: str) -> None:
    _choose(browser, "new-type", card_type)
    _press(browser, "add-card")
    assert _focused(browser) == "card:type"  # the new card's settings
    _type(_key(browser, "card:title-en"), title)


def test_build_a_dashboard_then_publish_it(site: tuple[str, Flask],
                                           browser: webdriver.Chrome,
                                           workspace: Workspace) -> None:
    base, _ = site
    _set_up(workspace)
    log_in(browser, base, "ada", path="/designer/dashboard/new")
    wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, "[data-save]").is_enabled())
    _type(browser.find_element(By.CSS_SELECTOR, "[data-dashboard-name]"), "sales")
    _type(browser.find_element(By.CSS_SELECTOR, '[data-label="en"]'), "Sales")

    # A dashboard needs a card: the meta-schema says so, next to the cards.
    assert "Not saved" in _save(browser)
    assert browser.find_element(By.CSS_SELECTOR, '[data-pointer="/cards"] > [data-notes] '
                                                 '.field-error')

    _add_card(browser, "number", "Deals")
    _add_card(browser, "bar", "Amount by stage")
    assert _key(browser, "card:group").get_attribute("value") == "stage"
    _choose(browser, "card:metric", "sum")
    assert _key(browser, "card:metric-field").get_attribute("value") == "amount"
    _condition_text(browser, "card:filter", "amount > 100")
    _add_card(browser, "line", "By month")
    _choose(browser, "card:group", "close_date")
    _choose(browser, "card:bucket", "month")
    _add_card(browser, "funnel", "Funnel")
    _add_card(browser, "table", "Biggest")
    assert _names(browser, "card-columns") == ["title", "amount", "stage"]
    _press(browser, "card-columns:2:remove")
    _press(browser, "card-sort:add")
    _choose(browser, "card-sort:0:field", "amount")
    _choose(browser, "card-sort:0:direction", "desc")
    _type(_key(browser, "card:limit"), "99")
    _add_card(browser, "pie", "Stages")
    _choose(browser, "card:group", "stage")

    # Every card previewed with the published records, charts drawn by ECharts.
    tiles = "[data-cards] > .card-tile"
    wait(browser).until(lambda b: b.find_element(
        By.CSS_SELECTOR, f"{tiles}:nth-child(1) .figure").text == "5")
    for n in (2, 3, 4, 6):
        wait(browser).until(lambda b, n=n: b.find_elements(
            By.CSS_SELECTOR, f"{tiles}:nth-child({n}) [data-chart] canvas"))
    bar = browser.execute_script(
        "return window.blocksCharts['card-1'].data.points.map((p) => [p.label, p.value])")
    assert sorted(bar) == [["Lost", 300], ["Open", 700], ["Won", 400]]
    funnel = browser.execute_script(
        "return window.blocksCharts['card-3'].data.points.map((p) => [p.label, p.value])")
    assert funnel == [["New", 4], ["Qualified", 1], ["Won", 0]]
    # The table asks for more rows than a card may show: the preview says why.
    problem = browser.find_element(By.CSS_SELECTOR,
                                   f"{tiles}:nth-child(5) [data-preview-problem]")
    assert "50" in problem.text

    # Laid out: the pie dragged to the front, the funnel moved later by keyboard, the bar
    # widened by its edge and the line by its button.
    assert _tile_titles(browser) == ["Deals", "Amount by stage", "By month", "Funnel",
                                     "Biggest", "Stages"]
    pie = browser.find_element(By.CSS_SELECTOR, f"{tiles}:nth-child(6) .handle")
    first = browser.find_element(By.CSS_SELECTOR, f"{tiles}:nth-child(1)")
    chain = ActionChains(browser, duration=50).click_and_hold(pie)
    for _ in range(3):
        chain.move_by_offset(6, -6)
    chain.move_to_element_with_offset(first, -first.size["width"] // 3, 0).move_by_offset(-2, 0)
    chain.release().perform()
    assert _tile_titles(browser) == ["Stages", "Deals", "Amount by stage", "By month",
                                     "Funnel", "Biggest"]
    _press(browser, "card-4:later")
    assert _tile_titles(browser) == ["Stages", "Deals", "Amount by stage", "By month",
                                     "Biggest", "Funnel"]
    assert _focused(browser) == "card-5:earlier"
    _press(browser, "card-3:wider")
    bar_tile = browser.find_element(By.CSS_SELECTOR, f"{tiles}:nth-child(3)")
    grip = bar_tile.find_element(By.CSS_SELECTOR, ".grip")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", bar_tile)
    ActionChains(browser, duration=50).click_and_hold(grip).move_by_offset(
        bar_tile.size["width"] // 2, 0).move_by_offset(bar_tile.size["width"] // 2, 0) \
        .release().perform()
    wait(browser).until(lambda b: "w-2" in b.find_element(
        By.CSS_SELECTOR, f"{tiles}:nth-child(3)").get_attribute("class"))
    shoot(browser, "designer-dashboard-built")

    # The table's limit is refused on save too, next to its input once the card is chosen.
    assert "Not saved" in _save(browser)
    assert browser.find_element(By.CSS_SELECTOR, f"{tiles}:nth-child(5) > [data-notes] "
                                                 ".field-error")
    _click(browser, _key(browser, "card-4:select"))
    assert "50" in browser.find_element(By.CSS_SELECTOR,
                                        '[data-pointer="/cards/4/limit"] .field-error').text
    _type(_key(browser, "card:limit"), "2")
    assert "Saved as a draft" in _save(browser)
    saved = workspace.metadata.get("dashboard", "sales")
    assert saved == {
        "kind": "dashboard", "name": "sales", "label": {"en": "Sales"},
        "cards": [
            {"type": "pie", "entity": "deal", "group_by": "stage",
             "title": {"en": "Stages"}},
            {"type": "number", "entity": "deal", "title": {"en": "Deals"}},
            {"type": "bar", "entity": "deal", "group_by": "stage", "metric": "sum:amount",
             "filter": "amount > 100", "title": {"en": "Amount by stage"}, "width": 2},
            {"type": "line", "entity": "deal", "group_by": "close_date:month",
             "title": {"en": "By month"}, "width": 2},
            {"type": "table", "entity": "deal", "columns": ["title", "amount"],
             "sort": ["-amount"], "limit": 2, "title": {"en": "Biggest"}},
            {"type": "funnel", "entity": "deal", "title": {"en": "Funnel"}}]}, json.dumps(saved)
    browser.set_window_size(768, 1000)
    browser.get(f"{base}/designer/dashboard/sales")
    wait(browser).until(lambda b: b.find_elements(
        By.CSS_SELECTOR, f"{tiles}:nth-child(1) [data-chart] canvas"))
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 768
    shoot(browser, "designer-dashboard-768px")

    _publish(browser, base)
    browser.set_window_size(1280, 900)
    browser.get(f"{base}/app/dashboards/sales")
    types = [c.get_attribute("data-type") for c in browser.find_elements(
        By.CSS_SELECTOR, ".dash-card")]
    assert types == ["pie", "number", "bar", "line", "table", "funnel"]
    assert browser.find_element(By.CSS_SELECTOR, "#card-1 .figure").text == "5"
    assert "w-2" in browser.find_element(By.CSS_SELECTOR, "#card-2").get_attribute("class")
    rows = browser.find_elements(By.CSS_SELECTOR, "#card-4 tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == ["House 4", "House 3"]
