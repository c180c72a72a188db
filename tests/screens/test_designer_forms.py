"""The designer's form editor in a real browser: a form built from the entity's fields
(by keyboard and by drag) into tabs and sections, a condition tried in the live preview,
saved as a draft the engine holds exactly and, once published, laid out so by the new-record
screen; then a 422 shown on its section, keyboard moves across tabs, undo, and a tablet."""

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

from blockscrm.engine import Workspace

from .conftest import follow, log_in, shoot, wait

DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deal"}, "required": ["title"],
        "properties": {
            "title": {"type": "string", "x-label": {"en": "Title"}},
            "stage": {"type": "string", "x-field": "select", "enum": ["new", "proposal"],
                      "x-label": {"en": "Stage"}},
            "amount": {"type": "number", "x-field": "currency", "x-label": {"en": "Amount"}},
            "discount": {"type": "number", "x-field": "percent",
                         "x-label": {"en": "Discount"}},
            "notes": {"type": "string", "x-field": "long_text", "x-label": {"en": "Notes"}}}}
BUILT = {"kind": "form", "name": "deal_form", "label": {"en": "Deal form"}, "entity": "deal",
         "default": True,
         "tabs": [{"label": {"en": "Main"},
                   "sections": [{"label": {"en": "The deal"}, "columns": 2,
                                 "fields": ["title", "stage", "amount", "discount"]}]},
                  {"label": {"en": "More"}, "sections": [{"columns": 1, "fields": ["notes"]}]}],
         "rules": {"discount": {"visible": 'stage == "proposal"'}}}


def _until(browser: webdriver.Chrome, done: Callable[[webdriver.Chrome], Any]) -> Any:
    return wait(browser, 5).until(done)


def _type(field: WebElement, text: str) -> None:
    """Replace an input's text and leave it, which commits it (one undo step)."""
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(text, Keys.TAB)


def _key(browser: webdriver.Chrome, key: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, f'[data-key="{key}"]')


def _press(browser: webdriver.Chrome, key: str) -> None:
    """Press a control with the keyboard: focus it, then Enter (or Space)."""
    control = _key(browser, key)
    browser.execute_script("arguments[0].focus()", control)
    control.send_keys(Keys.ENTER)


def _click(browser: webdriver.Chrome, element: WebElement) -> None:
    """Click, with the element scrolled to the middle first (the editor's bar is sticky)."""
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _save(browser: webdriver.Chrome) -> None:
    """Save the draft and wait until the editor says it is saved."""
    browser.find_element(By.CSS_SELECTOR, "[data-save]").click()
    status = browser.find_element(By.CSS_SELECTOR, "[data-status]")
    wait(browser, 15).until(lambda b: status.find_elements(By.CSS_SELECTOR, "[data-review]"),
                            message="the draft was not saved")


def _sections(browser: webdriver.Chrome) -> list[list[str]]:
    """The fields of each section of the layout being built, in order."""
    return [[f.get_attribute("data-field") for f in s.find_elements(
        By.CSS_SELECTOR, ":scope > .placed-field")]
        for s in browser.find_elements(By.CSS_SELECTOR, "[data-section-fields]")]


def _panels(browser: webdriver.Chrome, scope: str) -> list[list[str]]:
    """The fields each tab panel of a form screen (or of the preview) holds, in order,
    a hidden one marked "(hidden)" (read in one go: the preview is redrawn at any time)."""
    return browser.execute_script("""
        return [...document.querySelectorAll(arguments[0] + " .tab-panel")].map(panel =>
          [...panel.querySelectorAll(".field")].map(f => f.dataset.field
                                                         + (f.hidden ? " (hidden)" : "")));
    """, scope)


def _drag(browser: webdriver.Chrome, source: WebElement, target: WebElement,
          below: bool) -> None:
    """A real drag (SortableJS in its pointer-event mode), in small steps, onto the upper
    or lower part of ``target``, both scrolled into the window first."""
    browser.execute_script("""
        const [a, b] = [arguments[0], arguments[1]].map(e => e.getBoundingClientRect());
        const middle = (Math.min(a.top, b.top) + Math.max(a.bottom, b.bottom)) / 2;
        window.scrollBy(0, middle - window.innerHeight / 2);""", source, target)
    offset = target.size["height"] // 3 * (1 if below else -1)
    chain = ActionChains(browser, duration=50).click_and_hold(source)
    for _ in range(3):
        chain.move_by_offset(6, 6)
    chain.move_to_element_with_offset(target, 0, offset).move_by_offset(0, 2)
    chain.release().perform()


def _preview_shows(browser: webdriver.Chrome, panels: list[list[str]]) -> None:
    _until(browser, lambda b: _panels(b, "[data-preview]") == panels)


def test_build_a_form_try_it_in_the_preview_then_publish(site: tuple[str, Flask],
                                                          browser: webdriver.Chrome,
                                                          workspace: Workspace) -> None:
    base, _ = site
    workspace.metadata.create(DEAL)
    workspace.metadata.publish()
    workspace.accounts.create_user("ada", password="correct horse", roles=["admin"])
    log_in(browser, base, "ada", path="/designer/")
    follow(browser, browser.find_element(By.CSS_SELECTOR, '[data-new="form"]'))
    _until(browser, lambda b: _key(b, "entity").is_enabled()
           and b.find_element(By.CSS_SELECTOR, "[data-save]").is_enabled())
    _type(browser.find_element(By.CSS_SELECTOR, "[data-form-name]"), "deal_form")
    _type(browser.find_element(By.CSS_SELECTOR, '[data-label="en"]'), "Deal form")
    Select(_key(browser, "entity")).select_by_value("deal")
    _until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, '[data-key="add:title"]'))

    # By keyboard: a palette field goes to the chosen section, and the next one has focus.
    _press(browser, "add:title")
    assert browser.switch_to.active_element.get_attribute("data-key") == "add:stage"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    assert _sections(browser) == [["title", "stage"]]
    _type(_key(browser, "section--1-0:label-en"), "The deal")
    _press(browser, "add-tab")  # the sections so far become the first tab's
    _type(browser.switch_to.active_element, "More")
    _type(_key(browser, "tab-0:label-en"), "Main")
    Select(_key(browser, "section-1-0:columns")).select_by_value("1")

    # By drag: from the palette into the empty section and between two fields.
    palette = "[data-form-palette] [data-field={}]"
    _drag(browser, browser.find_element(By.CSS_SELECTOR, palette.format("notes")),
          browser.find_element(By.CSS_SELECTOR, '[data-section-fields="1:0"]'), below=True)
    _until(browser, lambda b: _sections(b) == [["title", "stage"], ["notes"]])
    _drag(browser, browser.find_element(By.CSS_SELECTOR, palette.format("amount")),
          browser.find_element(By.CSS_SELECTOR, '.placed-field[data-field="stage"]'),
          below=True)
    _until(browser, lambda b: _sections(b) == [["title", "stage", "amount"], ["notes"]])
    assert "placed" in browser.find_element(
        By.CSS_SELECTOR, palette.format("amount")).get_attribute("class")

    # Into the section chosen (the last, More's), then on to another by keyboard.
    assert Select(browser.find_element(By.CSS_SELECTOR, "[data-place-in]")
                  ).first_selected_option.text == "More \u203a Section 2"
    _press(browser, "add:discount")
    assert _sections(browser) == [["title", "stage", "amount"], ["notes", "discount"]]
    Select(_key(browser, "field:discount:move")).select_by_value("0:0")
    assert _sections(browser) == [["title", "stage", "amount", "discount"], ["notes"]]
    assert browser.switch_to.active_element.get_attribute("data-key") == "field:discount:move"

    # Reordered by drag, then back by keyboard.
    stage = browser.find_element(By.CSS_SELECTOR, '.placed-field[data-field="stage"]')
    amount = browser.find_element(By.CSS_SELECTOR, '.placed-field[data-field="amount"]')
    _drag(browser, amount.find_element(By.CSS_SELECTOR, ".handle"), stage, below=False)
    _until(browser, lambda b: _sections(b) == [["title", "amount", "stage", "discount"],
                                                ["notes"]])
    _press(browser, "field:amount:down")
    assert _sections(browser) == [["title", "stage", "amount", "discount"], ["notes"]]
    _click(browser, browser.find_element(By.CSS_SELECTOR, "[data-form-default]"))

    # A condition: discount shows only for a proposal; the preview tries it.
    _press(browser, "field:discount:rules")
    _until(browser, lambda b: b.find_elements(  # the builder has read the entity's fields
        By.CSS_SELECTOR, '[data-key="rule:discount:visible:g:add"]'))
    _press(browser, "rule:discount:visible:tab-text")
    _type(_key(browser, "rule:discount:visible:text"), 'stage == "proposal"')
    preview = "[data-preview]"
    _preview_shows(browser, [["title", "stage", "amount", "discount (hidden)"], ["notes"]])
    assert browser.find_element(By.CSS_SELECTOR, f"{preview} #tab-1").text == "More"
    shoot(browser, "designer-form-built")
    Select(browser.find_element(By.CSS_SELECTOR, f"{preview} select[name=stage]")
           ).select_by_value("proposal")
    _preview_shows(browser, [["title", "stage", "amount", "discount"], ["notes"]])
    assert "%" in browser.find_element(By.CSS_SELECTOR,
                                       f'{preview} .field[data-field="discount"]').text
    shoot(browser, "designer-form-preview-rule")

    _save(browser)
    assert browser.current_url.endswith("/designer/form/deal_form")
    assert workspace.metadata.get("form", "deal_form") == BUILT

    # Published, the new-record screen lays the form out as the preview did.
    workspace.metadata.publish()
    browser.get(f"{base}/app/deal/new")
    assert [t.text for t in browser.find_elements(By.CSS_SELECTOR, "[role=tab]")] == [
        "Main", "More"]
    assert _panels(browser, "#record-form") == [
        ["title", "stage", "amount", "discount (hidden)"], ["notes"]]
    assert browser.find_element(By.CSS_SELECTOR, "#panel-0 legend").text == "The deal"
    assert "cols-2" in browser.find_element(By.CSS_SELECTOR,
                                            "#panel-0 .grid").get_attribute("class")
    shoot(browser, "designer-form-published")


def test_a_problem_on_its_section_keyboard_moves_undo_and_a_tablet(
        site: tuple[str, Flask], browser: webdriver.Chrome, workspace: Workspace) -> None:
    base, _ = site
    workspace.metadata.create(DEAL)
    workspace.metadata.create(BUILT)
    workspace.accounts.create_user("ada", password="correct horse", roles=["admin"])
    log_in(browser, base, "ada", path="/designer/")
    follow(browser, browser.find_element(By.CSS_SELECTOR, '[data-definition="form/deal_form"] a'))
    _until(browser, lambda b: _sections(b) == [["title", "stage", "amount", "discount"],
                                                ["notes"]])
    assert not _key(browser, "entity").is_enabled()  # a saved form keeps its entity
    _until(browser, lambda b: _panels(b, "[data-preview]") == [
        ["title", "stage", "amount", "discount (hidden)"], ["notes"]])

    # A section with no field fails the meta-schema: the error shows on that section.
    _press(browser, "add-section-0")
    assert browser.switch_to.active_element.get_attribute("data-key") == "section-0-1:label-en"
    # The palette's clicks now fill the new section.
    assert Select(_key(browser, "place-in")).first_selected_option.get_attribute(
        "value") == "0:1"
    browser.find_element(By.CSS_SELECTOR, "[data-save]").click()
    error = browser.find_element(By.CSS_SELECTOR, '[data-section="0:1"] > [data-notes] '
                                                  '.field-error')
    assert error.get_attribute("data-problem") == "/tabs/0/sections/1/fields"
    assert not browser.find_element(By.CSS_SELECTOR, "[data-problems]").is_displayed()
    shoot(browser, "designer-form-422")
    assert workspace.metadata.get("form", "deal_form") == BUILT
    # The preview leaves the empty section out, as the screens would.
    assert _panels(browser, "[data-preview]") == [
        ["title", "stage", "amount", "discount (hidden)"], ["notes"]]

    # By keyboard: the empty section goes, More's section moves up into Main, undone;
    # then the tabs swap places and notes moves into Main's section.
    _press(browser, "section-0-1:remove")
    assert len(browser.find_elements(By.CSS_SELECTOR, "[data-section]")) == 2
    # Its error goes with it, rather than up onto its tab.
    assert not browser.find_elements(By.CSS_SELECTOR, ".field-error[data-problem]")
    _press(browser, "section-1-0:up")
    assert [s.get_attribute("data-section") for s in browser.find_elements(
        By.CSS_SELECTOR, "[data-section]")] == ["0:0", "0:1"]
    assert browser.switch_to.active_element.get_attribute("data-key") == "section-0-1:up"
    browser.switch_to.active_element.send_keys(Keys.CONTROL, "z")
    _until(browser, lambda b: [s.get_attribute("data-section") for s in b.find_elements(
        By.CSS_SELECTOR, "[data-section]")] == ["0:0", "1:0"])
    _press(browser, "tab-1:up")
    assert _key(browser, "tab-0:label-en").get_attribute("value") == "More"
    _press(browser, "field:title:down")
    assert _sections(browser) == [["notes"], ["stage", "title", "amount", "discount"]]
    _press(browser, "field:discount:remove")  # its condition goes with it
    assert browser.switch_to.active_element.get_attribute("data-key") == "add:discount"
    # And by drag from one section into another: amount above notes.
    amount = browser.find_element(By.CSS_SELECTOR, '.placed-field[data-field="amount"]')
    notes = browser.find_element(By.CSS_SELECTOR, '.placed-field[data-field="notes"]')
    _drag(browser, amount.find_element(By.CSS_SELECTOR, ".handle"), notes, below=False)
    _until(browser, lambda b: _sections(b) == [["amount", "notes"], ["stage", "title"]])
    _save(browser)
    saved = workspace.metadata.get("form", "deal_form")
    assert saved["tabs"] == [
        {"label": {"en": "More"}, "sections": [{"columns": 1, "fields": ["amount", "notes"]}]},
        {"label": {"en": "Main"}, "sections": [{"label": {"en": "The deal"}, "columns": 2,
                                                "fields": ["stage", "title"]}]}]
    assert "rules" not in saved
    _until(browser, lambda b: _panels(b, "[data-preview]") == [
        ["amount", "notes"], ["stage", "title"]])
    # The next edit is not saved, so the bar stops saying it is; undone, it is again.
    _press(browser, "field:amount:down")
    assert browser.find_element(By.CSS_SELECTOR, "[data-status]").text == ""
    browser.switch_to.active_element.send_keys(Keys.CONTROL, "z")
    _until(browser, lambda b: _sections(b) == [["amount", "notes"], ["stage", "title"]])

    browser.set_window_size(768, 1024)  # a tablet: palette, layout, then the preview
    browser.execute_script("window.scrollTo(0, 0)")
    palette = browser.find_element(By.CSS_SELECTOR, "[data-form-palette]")
    layout = browser.find_element(By.CSS_SELECTOR, "[data-form-build]")
    preview = browser.find_element(By.CSS_SELECTOR, "[data-preview]")
    assert palette.rect["y"] + palette.rect["height"] <= layout.rect["y"]
    assert layout.rect["y"] + layout.rect["height"] <= preview.rect["y"]
    shoot(browser, "designer-form-tablet")
    browser.set_window_size(390, 844)  # a phone: nothing wider than the screen
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    shoot(browser, "designer-form-phone")
