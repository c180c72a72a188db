"""The designer's entity editor in a real browser: an entity built from the palette (by
click and by drag), reordered by keyboard and by drag, undone and redone, saved as a
draft that the engine holds exactly; then a 422 shown next to its field, and a save over
someone else's draft refused with the 409 message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select
from selenium.webdriver.support.wait import WebDriverWait

from blockscrm.engine import Workspace

from .conftest import follow, log_in, shoot, submit

BUILT = {
    "kind": "entity", "name": "property_viewing",
    "label": {"en": "Property viewing", "zh": "看房"}, "type": "object",
    "required": ["title"],
    "properties": {
        "title": {"type": "string", "x-field": "text", "x-label": {"en": "Title"}},
        "viewing_date": {"type": "string", "x-field": "date",
                         "x-label": {"en": "Viewing date"}},
        "status": {"type": "string", "x-field": "select", "x-label": {"en": "Status"},
                   "enum": ["scheduled", "done"],
                   "x-options": {"scheduled": {"label": {"en": "Scheduled"}, "color": "blue"},
                                 "done": {"label": {"en": "Done"}, "color": "green"}}},
        "price": {"type": "number", "x-field": "currency", "x-label": {"en": "Price"}},
        "agent": {"type": "string", "x-field": "user", "x-label": {"en": "Agent"}},
    },
}


def _until(browser: webdriver.Chrome, done: Callable[[webdriver.Chrome], Any]) -> None:
    """Wait for the editor's script (it loads the document after the page)."""
    WebDriverWait(browser, 5, poll_frequency=0.05).until(done)


def _type(field: WebElement, text: str) -> None:
    """Replace an input's text and leave it, which commits it (one undo step)."""
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(text, Keys.TAB)


def _click(browser: webdriver.Chrome, element: WebElement) -> None:
    """Click, with the element scrolled to the middle first: the editor's bar is sticky,
    and Selenium clicks an element at the top of the window, under the bar, as it is."""
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _order(browser: webdriver.Chrome) -> list[str]:
    return [row.get_attribute("data-field")
            for row in browser.find_elements(By.CSS_SELECTOR, "[data-fields] > .field")]


def _name_new_field(browser: webdriver.Chrome, name: str, label: str) -> WebElement:
    """Name the field just added (its name is focused, as the palette leaves it)."""
    _type(browser.switch_to.active_element, name)
    row = browser.find_element(By.CSS_SELECTOR, f'.field[data-field="{name}"]')
    _type(row.find_element(By.CSS_SELECTOR, '[data-key$=":label-en"]'), label)
    return row


def _add(browser: webdriver.Chrome, field_type: str, name: str, label: str) -> WebElement:
    browser.find_element(By.CSS_SELECTOR, f'[data-type="{field_type}"] button').click()
    return _name_new_field(browser, name, label)


def _drag(browser: webdriver.Chrome, source: WebElement, target: WebElement,
          below: bool) -> None:
    """A real drag (SortableJS in its pointer-event mode), in small steps, onto the upper
    or lower part of ``target``."""
    offset = target.size["height"] // 3 * (1 if below else -1)
    chain = ActionChains(browser, duration=50).click_and_hold(source)
    for _ in range(3):
        chain.move_by_offset(6, 6)
    chain.move_to_element_with_offset(target, 0, offset).move_by_offset(0, 2)
    chain.release().perform()


def test_build_an_entity_then_save_it_as_a_draft(site: tuple[str, Flask],
                                                 browser: webdriver.Chrome,
                                                 workspace: Workspace) -> None:
    base, _ = site
    workspace.accounts.create_user("ada", password="correct horse", roles=["admin"])
    log_in(browser, base, "ada", path="/designer/")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "[data-new-entity]"))
    _until(browser, lambda b: b.find_element(By.CSS_SELECTOR, "[data-save]").is_enabled())
    _type(browser.find_element(By.CSS_SELECTOR, "[data-entity-name]"), "property_viewing")
    _type(browser.find_element(By.CSS_SELECTOR, '[data-label="en"]'), "Property viewing")
    _type(browser.find_element(By.CSS_SELECTOR, '[data-label="zh"]'), "看房")

    title = _add(browser, "text", "title", "Title")
    _click(browser, title.find_element(By.CSS_SELECTOR, '[data-key$=":required"]'))
    agent = _add(browser, "user", "agent", "Agent")
    palette_date = browser.find_element(By.CSS_SELECTOR, '[data-palette] [data-type="date"]')
    _drag(browser, palette_date, agent, below=False)  # dropped between title and agent
    _name_new_field(browser, "viewing_date", "Viewing date")
    _add(browser, "currency", "price", "Price")
    status = _add(browser, "select", "status", "Status")
    for value, label, colour in (("scheduled", "Scheduled", "blue"), ("done", "Done", "green")):
        _click(browser, status.find_element(By.CSS_SELECTOR, '[data-key$=":add-option"]'))
        status = browser.find_element(By.CSS_SELECTOR, '.field[data-field="status"]')
        option = status.find_elements(By.CSS_SELECTOR, ".option")[-1]
        _type(option.find_element(By.CSS_SELECTOR, '[data-key$="-value"]'), value)
        _type(option.find_element(By.CSS_SELECTOR, '[data-key$="-label-en"]'), label)
        Select(option.find_element(By.CSS_SELECTOR, "select")).select_by_value(colour)
    assert _order(browser) == ["title", "viewing_date", "agent", "price", "status"]

    status.find_element(By.CSS_SELECTOR, '[data-key$=":up"]').send_keys(Keys.ENTER)
    assert _order(browser) == ["title", "viewing_date", "agent", "status", "price"]
    assert browser.switch_to.active_element.get_attribute("data-key") == "3:up"  # kept
    agent = browser.find_element(By.CSS_SELECTOR, '.field[data-field="agent"]')
    price = browser.find_element(By.CSS_SELECTOR, '.field[data-field="price"]')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})",
                           browser.find_element(By.CSS_SELECTOR, '.field[data-field="status"]'))
    _drag(browser, agent.find_element(By.CSS_SELECTOR, ".handle"), price, below=True)
    built = ["title", "viewing_date", "status", "price", "agent"]
    assert _order(browser) == built
    shoot(browser, "designer-entity-built")

    browser.find_element(By.TAG_NAME, "h1").click()  # out of any text box
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    assert _order(browser) == ["title", "viewing_date", "agent", "status", "price"]
    browser.find_element(By.CSS_SELECTOR, "[data-redo]").click()
    assert _order(browser) == built

    browser.find_element(By.CSS_SELECTOR, "[data-save]").click()
    saved = browser.find_element(By.CSS_SELECTOR, "[data-status] [data-review]")
    assert "Saved as a draft" in browser.find_element(By.CSS_SELECTOR, "[data-status]").text
    assert saved.get_attribute("href").endswith("/designer/review")
    assert browser.current_url.endswith("/designer/entity/property_viewing")
    document = workspace.metadata.get("entity", "property_viewing")
    assert document == BUILT
    assert list(document["properties"]) == built

    # A select with no options fails the meta-schema: the error shows at its options.
    _add(browser, "select", "kind", "Kind")
    browser.find_element(By.CSS_SELECTOR, "[data-save]").click()
    error = browser.find_element(By.CSS_SELECTOR, '.field[data-field="kind"] .options '
                                                  '.field-error')
    assert error.get_attribute("data-problem") == "/properties/kind/enum"
    assert not browser.find_element(By.CSS_SELECTOR, "[data-problems]").is_displayed()
    shoot(browser, "designer-entity-422")
    assert workspace.metadata.get("entity", "property_viewing") == BUILT

    # Someone saves the draft behind the editor's back: saving over it is refused.
    theirs = {**BUILT, "label": {"en": "Viewing", "zh": "看房"}}
    workspace.metadata.replace("entity", "property_viewing", theirs)
    kind = browser.find_element(By.CSS_SELECTOR, '.field[data-field="kind"]')
    _click(browser, kind.find_element(By.CSS_SELECTOR, '[data-key$=":remove"]'))
    browser.find_element(By.CSS_SELECTOR, "[data-save]").click()
    load = browser.find_element(By.CSS_SELECTOR, "[data-status] [data-load-theirs]")
    assert "Someone else saved" in browser.find_element(By.CSS_SELECTOR, "[data-status]").text
    assert workspace.metadata.get("entity", "property_viewing") == theirs
    shoot(browser, "designer-entity-409")
    submit(browser, load)
    _until(browser, lambda b: b.find_element(
        By.CSS_SELECTOR, '[data-label="en"]').get_attribute("value") == "Viewing")
    assert _order(browser) == built

    browser.set_window_size(768, 1024)  # a tablet: the palette above the fields
    browser.execute_script("window.scrollTo(0, 0)")
    palette = browser.find_element(By.CSS_SELECTOR, "[data-palette]")
    fields = browser.find_element(By.CSS_SELECTOR, "[data-fields]")
    assert palette.rect["y"] + palette.rect["height"] <= fields.rect["y"]
    shoot(browser, "designer-entity-tablet")


def test_rename_a_published_field_link_and_add_a_rule(site: tuple[str, Flask],
                                                      browser: webdriver.Chrome,
                                                      workspace: Workspace) -> None:
    base, _ = site
    workspace.accounts.create_user("ada", password="correct horse", roles=["admin"])
    workspace.metadata.create({"kind": "entity", "name": "agency", "label": {"en": "Agency"},
                               "properties": {"name": {"type": "string"}}})
    workspace.metadata.create({"kind": "entity", "name": "listing", "label": {"en": "Listing"},
                               "required": ["a_first"],
                               "properties": {"b_second": {"type": "string"},
                                              "a_first": {"type": "string"}}})
    workspace.metadata.publish()

    log_in(browser, base, "ada", path="/designer/")
    follow(browser, browser.find_element(By.CSS_SELECTOR, '[data-definition="entity/listing"] a'))
    _until(browser, lambda b: b.find_element(By.CSS_SELECTOR, "[data-save]").is_enabled())
    assert _order(browser) == ["b_second", "a_first"]  # not the API's sorted keys
    row = browser.find_element(By.CSS_SELECTOR, '.field[data-field="a_first"]')
    _type(row.find_element(By.CSS_SELECTOR, '[data-key$=":name"]'), "headline")
    assert "a_first" in row.find_element(By.CSS_SELECTOR, "[data-renamed]").text
    agency = _add(browser, "reference", "agency", "Agency")
    Select(agency.find_element(By.CSS_SELECTOR, '[data-key$=":ref"]')).select_by_value("agency")
    _click(browser, browser.find_element(By.CSS_SELECTOR, "[data-add-rule]"))
    # The condition builder reads the entity as edited, renamed field included: its rows
    # offer headline; the text tab takes the rule as text and shows it back as a row.
    _until(browser, lambda b: b.switch_to.active_element.get_attribute("data-key")
           == "rule-0:assert:g:add")
    _click(browser, browser.find_element(By.CSS_SELECTOR, '[data-key="rule-0:assert:tab-text"]'))
    _type(browser.find_element(By.CSS_SELECTOR, '[data-key="rule-0:assert:text"]'),
          "headline != null")
    _click(browser, browser.find_element(By.CSS_SELECTOR, '[data-key="rule-0:assert:tab-rows"]'))
    field = browser.find_element(By.CSS_SELECTOR, '[data-key="rule-0:assert:r0:field"]')
    assert Select(field).first_selected_option.get_attribute("value") == "headline"
    assert Select(browser.find_element(By.CSS_SELECTOR, '[data-key="rule-0:assert:r0:op"]')
                  ).first_selected_option.get_attribute("value") == "not_empty"
    _type(browser.find_element(By.CSS_SELECTOR, '[data-key="rule-0:message-en"]'),
          "A listing needs a headline")
    _click(browser, browser.find_element(By.CSS_SELECTOR, '[data-key="rule-0:field-headline"]'))
    browser.find_element(By.CSS_SELECTOR, "[data-save]").click()
    assert browser.find_element(By.CSS_SELECTOR, "[data-status] [data-review]")
    shoot(browser, "designer-entity-renamed")

    document = workspace.metadata.get("entity", "listing")
    assert list(document["properties"]) == ["b_second", "headline", "agency"]
    assert document["properties"]["headline"] == {"type": "string", "x-renamed-from": "a_first"}
    assert document["properties"]["agency"] == {
        "type": "string", "x-field": "reference", "x-label": {"en": "Agency"}, "x-ref": "agency"}
    assert document["required"] == ["headline"]
    assert document["x-validations"] == [{"assert": "headline != null", "fields": ["headline"],
                                          "message": {"en": "A listing needs a headline"}}]
    plan = workspace.metadata.plan()
    assert not plan.destructive  # the column is renamed, not dropped and added
    assert [c.renamed for c in plan.changes if c.name == "listing"] == [[("a_first", "headline")]]
