"""Issue 9's journey, as a new admin would take it in a real browser: a "Property viewing"
entity built by dragging five fields from the palette and published through the review
page; its form laid out in two sections, a three-state workflow drawn (one arrow by a
drag in the diagram, one with the keyboard form), an automation with a condition made in
the builder's rows and tried in a dry run; all published through the plan; then a record
created in the generic screens with that form, acted on by the automation, and moved by a
transition; last, the workspace exported as a blueprint whose files hold what was built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from blockscrm.engine import Workspace
from blockscrm.engine.blueprints.files import Loader

from .conftest import follow, log_in, shoot, submit, wait
from .test_designer_automations import _click as _click_key
from .test_designer_automations import _find, _pick, _save
from .test_designer_automations import _type as _type_key
from .test_designer_entities import _click, _name_new_field, _type
from .test_designer_forms import _drag, _key, _press, _sections
from .test_designer_workflows import _add_state, _add_transition, _draw_arrow, _panel

FIELDS = ["title", "viewing_date", "agent", "price", "status"]


def _css(scope: webdriver.Chrome | WebElement, css: str) -> WebElement:
    return scope.find_element(By.CSS_SELECTOR, css)


def _new(browser: webdriver.Chrome, base: str, button: str) -> None:
    """From the designer's home, open a new definition's editor and wait for its script."""
    browser.get(f"{base}/designer/")
    follow(browser, _css(browser, button))
    wait(browser).until(lambda b: _css(b, "[data-save]").is_enabled())


def _name(browser: webdriver.Chrome, selector: str, name: str, label_en: str) -> None:
    _type(_css(browser, selector), name)
    _type(_css(browser, '[data-label="en"]'), label_en)


def _saved(browser: webdriver.Chrome) -> None:
    """Save the draft; wait for the editor to say so."""
    _css(browser, "[data-save]").click()
    wait(browser).until(lambda b: "Saved as a draft" in _css(b, "[data-status]").text)


def _review(browser: webdriver.Chrome) -> tuple[dict[str, str], str]:
    """Go from the saved editor to the review page; answer what it lists for each draft,
    and the plan's steps (their summaries and DDL)."""
    follow(browser, _css(browser, "[data-status] [data-review]"))
    wait(browser).until(lambda b: _css(b, "[data-review] [data-publish]"))
    listed = {str(item.get_attribute("data-definition")): item.text for item in
              browser.find_elements(By.CSS_SELECTOR, "[data-review] .definitions > li")}
    steps = "\n".join(s.text for s in browser.find_elements(By.CSS_SELECTOR, ".steps > .step"))
    return listed, steps


def _publish(browser: webdriver.Chrome) -> None:
    publish = _css(browser, "[data-publish]")
    assert publish.is_enabled()  # nothing here removes data: nothing to tick
    publish.click()
    wait(browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-published]"))


def _drag_field(browser: webdriver.Chrome, field_type: str, name: str, label: str
                ) -> WebElement:
    """Drag a type from the palette below the last field (into the list while empty)."""
    rows = browser.find_elements(By.CSS_SELECTOR, "[data-fields] > .field")
    target = rows[-1] if rows else _css(browser, "[data-fields]")
    _drag(browser, _css(browser, f'[data-palette] [data-type="{field_type}"]'), target,
          below=True)
    wait(browser).until(lambda b: len(b.find_elements(
        By.CSS_SELECTOR, "[data-fields] > .field")) == len(rows) + 1)
    return _name_new_field(browser, name, label)


def _load(folder: Path, path: str) -> Any:
    """A blueprint file as the blueprints read it (only true/false are booleans)."""
    return yaml.load((folder / path).read_text("utf-8"), Loader=Loader)


def test_a_new_admin_builds_publishes_uses_and_exports_a_property_viewing(
        site: tuple[str, Flask], browser: webdriver.Chrome, workspace: Workspace,
        tmp_path: Path) -> None:
    base, _ = site
    ada = workspace.accounts.create_user("ada", password="correct horse", roles=["admin"])
    log_in(browser, base, "ada", path="/designer/")

    # 1. The entity: five fields, each dragged from the palette.
    _new(browser, base, "[data-new-entity]")
    _name(browser, "[data-entity-name]", "property_viewing", "Property viewing")
    _type(_css(browser, '[data-label="zh"]'), "看房")
    title = _drag_field(browser, "text", "title", "Title")
    _click(browser, _css(title, '[data-key$=":required"]'))
    _drag_field(browser, "date", "viewing_date", "Viewing date")
    _drag_field(browser, "user", "agent", "Agent")
    _drag_field(browser, "currency", "price", "Price")
    _drag_field(browser, "select", "status", "Status")
    for value, label in (("standard", "Standard"), ("premium", "Premium")):
        status = _css(browser, '.field[data-field="status"]')
        _click(browser, _css(status, '[data-key$=":add-option"]'))
        option = _css(browser, '.field[data-field="status"]').find_elements(
            By.CSS_SELECTOR, ".option")[-1]
        _type(_css(option, '[data-key$="-value"]'), value)
        _type(_css(option, '[data-key$="-label-en"]'), label)
    assert [row.get_attribute("data-field") for row in browser.find_elements(
        By.CSS_SELECTOR, "[data-fields] > .field")] == FIELDS
    shoot(browser, "journey-entity")
    _saved(browser)

    # 2. Published through the plan, so records can exist for the dry run.
    listed, steps = _review(browser)
    assert listed == {"entity/property_viewing": "new entity property_viewing"}
    assert "create entity property_viewing" in steps and "CREATE TABLE" in steps
    _publish(browser)
    for title_, price in (("Loft", 5000), ("Studio", 800)):
        workspace.records.create("property_viewing", {"title": title_, "price": price})

    # 3. The form: two sections, a field of each dragged in, the others by keyboard.
    _new(browser, base, '[data-new="form"]')
    _name(browser, "[data-form-name]", "viewing_form", "Viewing form")
    Select(_key(browser, "entity")).select_by_value("property_viewing")
    palette = "[data-form-palette] [data-field={}]"
    _drag(browser, _css(browser, palette.format("title")),
          _css(browser, '[data-section-fields="-1:0"]'), below=True)
    wait(browser).until(lambda b: _sections(b) == [["title"]])
    _press(browser, "add:viewing_date")
    _press(browser, "add:agent")
    _type(_key(browser, "section--1-0:label-en"), "The viewing")
    _press(browser, "add-section--1")
    _type(_key(browser, "section--1-1:label-en"), "Price")
    _drag(browser, _css(browser, palette.format("price")),
          _css(browser, '[data-section-fields="-1:1"]'), below=True)
    wait(browser).until(lambda b: _sections(b) == [["title", "viewing_date", "agent"],
                                                   ["price"]])
    Select(_key(browser, "place-in")).select_by_value("-1:1")  # "Add to section"
    _press(browser, "add:status")
    assert _sections(browser) == [["title", "viewing_date", "agent"], ["price", "status"]]
    shoot(browser, "journey-form")
    _saved(browser)

    # 4. The workflow: scheduled, then done or cancelled; one arrow drawn, one by keyboard.
    _new(browser, base, '[data-new="workflow"]')
    _name(browser, "[data-workflow-name]", "viewing_flow", "Viewings")
    Select(_css(browser, "[data-entity]")).select_by_value("property_viewing")
    _click(browser, _css(browser, '[data-state="new"] button'))  # the first, there already
    _type(_panel(browser, "s:name"), "scheduled")
    _type(_panel(browser, "s:label-en"), "Scheduled")
    _add_state(browser, "done", "Done", "closed")
    _add_state(browser, "cancelled", "Cancelled", "lost")
    _click(browser, _css(browser, "[data-tidy]"))
    _click(browser, _css(browser, "[data-draw]"))
    _draw_arrow(browser, "scheduled", "done")
    wait(browser).until(lambda b: b.find_elements(
        By.CSS_SELECTOR, '[data-transition="scheduled_to_done"]'))
    _type(_panel(browser, "t:name"), "finish")
    _type(_panel(browser, "t:label-en"), "Mark done")
    _click(browser, _css(browser, "[data-draw]"))
    _add_transition(browser, "scheduled", "cancelled")
    _type(browser.switch_to.active_element, "cancel")  # the new transition's name
    _type(_panel(browser, "t:label-en"), "Cancel")
    assert _css(browser, "[data-flags] li").get_attribute("data-flag") == "none"
    shoot(browser, "journey-workflow")
    _saved(browser)

    # 5. The automation: a premium viewing over 1000, tried on the records there are.
    _new(browser, base, '[data-new="automation"]')
    _name(browser, "[data-def-name]", "premium_viewing", "Premium viewing")
    _pick(browser, "entity", "property_viewing")
    _click_key(browser, "condition:g:add")
    _pick(browser, "condition:r0:field", "price")
    _pick(browser, "condition:r0:op", "gt")
    _type_key(browser, "condition:r0:value", "1000")
    wait(browser).until(lambda b: _key(b, "condition:text").get_attribute("value")
                        == "price > 1000")
    _pick(browser, "actions:new-type", "set_fields")
    _click_key(browser, "actions:new")
    _click_key(browser, "actions:0:add-value")
    _pick(browser, "actions:0:value-0:field", "status")
    _pick(browser, "actions:0:value-0:value", "premium")
    _pick(browser, "mode", "sync")
    _click_key(browser, "dry-run")
    count = wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, "[data-matches]"))
    assert count.get_attribute("data-matches") == "1"
    matches = browser.find_elements(By.CSS_SELECTOR, ".dry-items > li")
    assert [item.find_element(By.TAG_NAME, "a").text for item in matches] == ["Loft"]
    assert [line.text for line in matches[0].find_elements(By.CSS_SELECTOR, "ul > li")] == [
        "Set fields: status = premium"]
    _find(browser, "dry-run")  # scrolled to, for the screenshot
    shoot(browser, "journey-automation")
    assert "Saved as a draft" in _save(browser)

    # 6. Everything else published through the plan.
    listed, steps = _review(browser)
    assert listed == {"form/viewing_form": "new form viewing_form",
                      "workflow/viewing_flow": "new workflow viewing_flow",
                      "automation/premium_viewing": "new automation premium_viewing"}
    assert "start workflow viewing_flow on property_viewing: 2 records get the state " \
           "'scheduled'" in steps and "ADD COLUMN state" in steps
    shoot(browser, "journey-review")
    _publish(browser)

    # 7. A record made in the generic screens, with the form's layout; then done.
    browser.get(f"{base}/app/property_viewing/new")
    assert [legend.text for legend in browser.find_elements(
        By.CSS_SELECTOR, "#record-form legend")] == ["The viewing", "Price"]
    browser.find_element(By.NAME, "title").send_keys("Penthouse")
    browser.execute_script("arguments[0].value = '2025-07-01'",
                           browser.find_element(By.NAME, "viewing_date"))
    Select(browser.find_element(By.NAME, "agent")).select_by_value(ada.id)
    browser.find_element(By.NAME, "price").send_keys("2500")
    submit(browser, browser.find_element(By.ID, "save"))
    record_id = browser.current_url.rsplit("/", 1)[-1]
    assert _css(browser, ".record-state").get_attribute("data-state") == "scheduled"
    assert "Premium viewing" in _css(browser, '#why [data-rule="premium_viewing"]').text
    submit(browser, _css(browser, '[data-transition="finish"]'))
    assert _css(browser, ".record-state").get_attribute("data-state") == "done"
    shoot(browser, "journey-record")
    record = workspace.records.get("property_viewing", record_id)
    assert {k: record[k] for k in ("title", "viewing_date", "agent", "price", "status",
                                   "state")} == {
        "title": "Penthouse", "viewing_date": "2025-07-01", "agent": ada.id, "price": 2500,
        "status": "premium", "state": "done"}

    # 8. Exported as a blueprint: the files hold what was built.
    folder = tmp_path / "viewings"
    workspace.blueprints.export(folder)
    entity = _load(folder, "entities/property_viewing.yaml")
    assert entity["label"] == {"en": "Property viewing", "zh": "看房"}
    assert list(entity["properties"]) == FIELDS
    assert [entity["properties"][f].get("x-field") for f in FIELDS] == [
        "text", "date", "user", "currency", "select"]
    assert entity["required"] == ["title"]
    assert entity["properties"]["status"]["enum"] == ["standard", "premium"]
    form = _load(folder, "forms/viewing_form.yaml")
    assert (form["entity"], form["sections"]) == ("property_viewing", [
        {"label": {"en": "The viewing"}, "columns": 2,
         "fields": ["title", "viewing_date", "agent"]},
        {"label": {"en": "Price"}, "columns": 2, "fields": ["price", "status"]}])
    flow = _load(folder, "workflows/viewing_flow.yaml")
    assert (flow["entity"], flow["initial"]) == ("property_viewing", "scheduled")
    assert [(s["name"], s["category"]) for s in flow["states"]] == [
        ("scheduled", "open"), ("done", "closed"), ("cancelled", "lost")]
    assert [(t["name"], t["from"], t["to"], t["label"]) for t in flow["transitions"]] == [
        ("finish", ["scheduled"], "done", {"en": "Mark done"}),
        ("cancel", ["scheduled"], "cancelled", {"en": "Cancel"})]
    rule = _load(folder, "automations/premium_viewing.yaml")
    assert (rule["entity"], rule["trigger"], rule["condition"], rule["actions"]) == (
        "property_viewing", {"on": "created"}, "price > 1000",
        [{"type": "set_fields", "values": {"status": "premium"}}])
