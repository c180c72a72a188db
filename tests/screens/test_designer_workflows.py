"""The designer's workflow editor in a real browser: states added and named, an arrow drawn
by dragging from one state to another in the diagram and others added with the keyboard
form, a transition edited (roles, a guard built in the condition builder, required fields,
actions), unreachable and dead-end states flagged, and the draft the engine holds exactly
what was built; once published, a record takes the transitions in the generic screens.
Then a 422 shown on the control it concerns, undone, and the page on a tablet and a phone."""

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

from .conftest import absent, log_in, shoot, submit, wait

DEAL = {
    "kind": "entity", "name": "deal", "label": {"en": "Deal"}, "required": ["title"],
    "properties": {
        "title": {"type": "string", "x-label": {"en": "Title"}},
        "amount": {"type": "number", "x-field": "currency", "x-label": {"en": "Amount"}},
        "probability": {"type": "integer", "x-label": {"en": "Probability"}},
        "close_date": {"type": "string", "format": "date", "x-label": {"en": "Close date"}},
    },
}
REP = {"kind": "role", "name": "sales_rep", "label": {"en": "Sales rep"},
       "permissions": {"deal": {"read": True, "create": True, "update": True}}}

BUILT = {
    "kind": "workflow", "name": "deal_flow", "label": {"en": "Deal flow"}, "entity": "deal",
    "initial": "new",
    "states": [
        {"name": "new", "label": {"en": "New"}, "category": "open"},
        {"name": "negotiation", "label": {"en": "Negotiation"}, "category": "open"},
        {"name": "won", "label": {"en": "Won"}, "category": "won"},
        {"name": "lost", "label": {"en": "Lost"}, "category": "lost"},
    ],
    "transitions": [
        {"name": "start", "from": ["new"], "to": "negotiation",
         "label": {"en": "Start negotiating"}},
        {"name": "win", "from": ["negotiation"], "to": "won", "label": {"en": "Win", "zh": "赢单"},
         "roles": ["sales_rep"], "guard": "amount > 0", "require": ["close_date"],
         "actions": [{"type": "set_fields", "values": {"probability": 100}},
                     {"type": "notify", "user": "owner", "title": "Deal won"}]},
        {"name": "negotiation_to_lost", "from": ["negotiation"], "to": "lost"},
    ],
}


def _until(browser: webdriver.Chrome, done: Callable[[webdriver.Chrome], Any]) -> Any:
    return wait(browser, 5).until(done)


def _type(field: WebElement, text: str) -> None:
    """Replace an input's text and leave it, which commits it (one undo step)."""
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(text, Keys.TAB)


def _click(browser: webdriver.Chrome, element: WebElement) -> None:
    """Click with the element in the middle of the window (clear of the sticky bar)."""
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _panel(browser: webdriver.Chrome, key: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, f'[data-selected] [data-key="{key}"]')


def _open(browser: webdriver.Chrome, base: str, path: str) -> None:
    log_in(browser, base, "ada", path=path)
    _until(browser, lambda b: b.find_element(By.CSS_SELECTOR, "[data-save]").is_enabled())


def _add_state(browser: webdriver.Chrome, name: str, label: str, category: str = "open") -> None:
    _click(browser, browser.find_element(By.CSS_SELECTOR, "[data-add-state]"))
    _type(browser.switch_to.active_element, name)  # the new state's name has the focus
    _type(_panel(browser, "s:label-en"), label)
    if category != "open":
        Select(_panel(browser, "s:category")).select_by_value(category)


def _add_transition(browser: webdriver.Chrome, source: str, target: str) -> None:
    """Through the keyboard form under the transitions."""
    form = browser.find_element(By.CSS_SELECTOR, "[data-add-transition]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", form)
    form.find_element(By.CSS_SELECTOR, f'[data-key="new-from-{source}"]').send_keys(Keys.SPACE)
    Select(form.find_element(By.CSS_SELECTOR, "[data-new-to]")).select_by_value(target)
    form.find_element(By.CSS_SELECTOR, "[data-key=new-add]").send_keys(Keys.ENTER)


def _diagram(browser: webdriver.Chrome, script: str, *args: Any) -> Any:
    """Ask the diagram's Cytoscape instance (``cy``) something."""
    return browser.execute_script(
        "const cy = document.querySelector('[data-diagram]').cytoscape;"
        "const node = name => cy.nodes().filter(n => n.data('name') === name)[0];" + script,
        *args)


def _at(browser: webdriver.Chrome, diagram: WebElement, point: dict[str, float]
        ) -> tuple[int, int]:
    """A point Cytoscape rendered (from the diagram's corner) as an offset from the
    diagram's middle, which is where Selenium's offsets start."""
    return (round(point["x"] - diagram.size["width"] / 2),
            round(point["y"] - diagram.size["height"] / 2))


def _draw_arrow(browser: webdriver.Chrome, source: str, target: str) -> None:
    """A real pointer drag, in small steps, from one state to another."""
    diagram = browser.find_element(By.CSS_SELECTOR, "[data-diagram]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", diagram)
    start = _at(browser, diagram, _diagram(browser, "return node(arguments[0]).renderedPosition()",
                                           source))
    end = _at(browser, diagram, _diagram(browser, "return node(arguments[0]).renderedPosition()",
                                         target))
    chain = ActionChains(browser, duration=30).move_to_element_with_offset(diagram, *start)
    chain.click_and_hold()
    steps = 8
    for k in range(1, steps + 1):
        chain.move_to_element_with_offset(
            diagram, start[0] + (end[0] - start[0]) * k // steps,
            start[1] + (end[1] - start[1]) * k // steps)
    chain.pause(0.4)  # edgehandles takes a target once hovered over for 150 ms
    chain.release().perform()


def test_draw_a_workflow_then_take_its_transitions(site: tuple[str, Flask],
                                                  browser: webdriver.Chrome,
                                                  workspace: Workspace) -> None:
    base, _ = site
    for document in (DEAL, REP):
        workspace.metadata.create(document)
    workspace.metadata.publish()
    workspace.accounts.create_user("ada", password="correct horse", roles=["admin"])
    _open(browser, base, "/designer/workflow/new")
    _type(browser.find_element(By.CSS_SELECTOR, "[data-workflow-name]"), "deal_flow")
    _type(browser.find_element(By.CSS_SELECTOR, '[data-label="en"]'), "Deal flow")
    Select(browser.find_element(By.CSS_SELECTOR, "[data-entity]")).select_by_value("deal")

    # The first state is there already: give it its label, then add the others.
    _click(browser, browser.find_element(By.CSS_SELECTOR, '[data-state="new"] button'))
    _type(_panel(browser, "s:label-en"), "New")
    _add_state(browser, "negotiation", "Negotiation")
    _add_state(browser, "won", "Won", "won")
    _add_state(browser, "lost", "Lost", "lost")
    _add_state(browser, "parked", "Parked")
    _click(browser, browser.find_element(By.CSS_SELECTOR, "[data-tidy]"))  # every state in view

    # An arrow drawn by dragging from "new" to "negotiation".
    _click(browser, browser.find_element(By.CSS_SELECTOR, "[data-draw]"))
    _draw_arrow(browser, "new", "negotiation")
    _until(browser, lambda b: b.find_elements(By.CSS_SELECTOR,
                                              '[data-transition="new_to_negotiation"]'))
    assert _panel(browser, "t:name").get_attribute("value") == "new_to_negotiation"
    _click(browser, browser.find_element(By.CSS_SELECTOR, "[data-draw]"))  # back to moving states
    # ... and two more with the keyboard.
    _add_transition(browser, "negotiation", "won")
    assert browser.switch_to.active_element.get_attribute("value") == "negotiation_to_won"
    _add_transition(browser, "negotiation", "lost")

    # "parked" is flagged, in words and on the diagram: no way in, no way out.
    flags = browser.find_element(By.CSS_SELECTOR, "[data-flags]")
    assert [(f.get_attribute("data-flag"), f.get_attribute("data-state"))
            for f in flags.find_elements(By.TAG_NAME, "li")] == [
        ("unreachable", "parked"), ("dead-end", "parked")]
    assert "Parked cannot be reached" in flags.text and "Parked has no way out" in flags.text
    assert _diagram(browser, "return ['unreachable', 'dead-end'].map("
                             "c => node('parked').hasClass(c))") == [True, True]
    assert not _diagram(browser, "return node('won').hasClass('dead-end')")  # it closes
    assert _diagram(browser, "return node('new').hasClass('initial')")
    shoot(browser, "designer-workflow-flags")

    # Clicking the drawn arrow opens its editor.
    diagram = browser.find_element(By.CSS_SELECTOR, "[data-diagram]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", diagram)
    middle = _diagram(browser, "return cy.edges().filter(e => e.data('name') === arguments[0])"
                               "[0].renderedMidpoint()", "new_to_negotiation")
    ActionChains(browser).move_to_element_with_offset(diagram, *_at(browser, diagram, middle)
                                                      ).click().perform()
    _until(browser, lambda b: b.find_elements(
        By.CSS_SELECTOR, '[data-transition-editor="new_to_negotiation"]'))
    _type(_panel(browser, "t:name"), "start")
    _type(_panel(browser, "t:label-en"), "Start negotiating")

    # The way to "won": its label, who may take it, a guard from the rows, a field it needs
    # and what it does.
    _click(browser, browser.find_element(By.CSS_SELECTOR,
                                         '[data-transition="negotiation_to_won"] button'))
    _type(browser.switch_to.active_element, "win")
    _type(_panel(browser, "t:label-en"), "Win")
    _type(_panel(browser, "t:label-zh"), "赢单")
    _click(browser, _panel(browser, "t:role-sales_rep"))
    guard = browser.find_element(By.CSS_SELECTOR, '[data-selected] [data-condition="t:guard"]')
    _click(browser, guard.find_element(By.CSS_SELECTOR, '[data-key$=":add"]'))
    Select(guard.find_element(By.CSS_SELECTOR, '[data-key$=":field"]')).select_by_value("amount")
    guard = browser.find_element(By.CSS_SELECTOR, '[data-selected] [data-condition="t:guard"]')
    Select(guard.find_element(By.CSS_SELECTOR, '[data-key$=":op"]')).select_by_value("gt")
    guard = browser.find_element(By.CSS_SELECTOR, '[data-selected] [data-condition="t:guard"]')
    _type(guard.find_element(By.CSS_SELECTOR, '[data-key$=":value"]'), "0")
    _until(browser, lambda b: b.find_element(
        By.CSS_SELECTOR, '[data-key="t:guard:text"]').get_attribute("value") == "amount > 0")
    _click(browser, _panel(browser, "t:require-close_date"))
    for action in ("set_fields", "notify"):  # the automation builder's list of actions
        Select(_panel(browser, "t:actions:new-type")).select_by_value(action)
        _click(browser, _panel(browser, "t:actions:new"))
    _click(browser, _panel(browser, "t:actions:0:add-value"))
    Select(_panel(browser, "t:actions:0:value-0:field")).select_by_value("probability")
    _type(_panel(browser, "t:actions:0:value-0:value"), "100")
    _type(_panel(browser, "t:actions:1:title"), "Deal won")
    shoot(browser, "designer-workflow-transition")

    # The state nothing reaches goes; the flags with it.
    _click(browser, browser.find_element(By.CSS_SELECTOR, '[data-state="parked"] button'))
    _click(browser, _panel(browser, "s:remove"))
    assert flags.find_element(By.CSS_SELECTOR, "li").get_attribute("data-flag") == "none"

    _click(browser, browser.find_element(By.CSS_SELECTOR, "[data-save]"))
    _until(browser, lambda b: "Saved as a draft" in b.find_element(
        By.CSS_SELECTOR, "[data-status]").text)
    assert browser.current_url.endswith("/designer/workflow/deal_flow")
    document = dict(workspace.metadata.get("workflow", "deal_flow"))
    layout = document.pop("x-layout")  # where the states stand, since "tidy up"
    assert document == BUILT
    assert set(layout) == {"new", "negotiation", "won", "lost"}
    shoot(browser, "designer-workflow-saved")

    # Published, the workflow moves a deal in the generic screens.
    workspace.metadata.publish()
    deal = workspace.records.create("deal", {"title": "Big one", "amount": 500})
    assert deal["state"] == "new"
    browser.get(f"{base}/app/deal/{deal['id']}")
    submit(browser, browser.find_element(By.CSS_SELECTOR, '[data-transition="start"]'))
    assert browser.find_element(By.CSS_SELECTOR, ".record-state").get_attribute(
        "data-state") == "negotiation"
    browser.find_element(By.CSS_SELECTOR, '[data-transition="win"]').click()
    dialog = browser.find_element(By.CSS_SELECTOR, "#ask-win")
    browser.execute_script("arguments[0].value = '2025-06-30'",
                           dialog.find_element(By.NAME, "close_date"))
    submit(browser, dialog.find_element(By.CSS_SELECTOR, '[data-submit="win"]'))
    record = workspace.records.get("deal", deal["id"])
    assert (record["state"], record["close_date"], record["probability"]) == (
        "won", "2025-06-30", 100)


OPEN = {"kind": "workflow", "name": "ticket_flow", "label": {"en": "Tickets"},
        "entity": "deal", "initial": "open",
        "states": [{"name": "open", "label": {"en": "Open"}},
                   {"name": "done", "label": {"en": "Done"}, "category": "closed"}],
        "transitions": [{"name": "finish", "from": ["open"], "to": "done"}]}


def test_a_problem_shows_where_it_is_and_the_page_fits_a_tablet_and_a_phone(
        site: tuple[str, Flask], browser: webdriver.Chrome, workspace: Workspace) -> None:
    base, _ = site
    workspace.metadata.create(DEAL)
    workspace.metadata.publish()
    workspace.metadata.create(OPEN)
    workspace.accounts.create_user("ada", password="correct horse", roles=["admin"])
    _open(browser, base, "/designer/workflow/ticket_flow")
    assert browser.find_element(By.CSS_SELECTOR, '[data-flag="none"]')

    # A transition that leaves from no state breaks the meta-schema: the API's 422 shows
    # at the "from" ticks of that transition.
    _click(browser, browser.find_element(By.CSS_SELECTOR, '[data-transition="finish"] button'))
    _click(browser, _panel(browser, "t:from-open"))
    assert browser.find_element(By.CSS_SELECTOR, '[data-flag="dead-end"][data-state="open"]')
    _click(browser, browser.find_element(By.CSS_SELECTOR, "[data-save]"))
    error = browser.find_element(By.CSS_SELECTOR, '[data-transition-editor="finish"] '
                                                  '[data-pointer="/transitions/0/from"] '
                                                  '.field-error')
    assert error.get_attribute("data-problem") == "/transitions/0/from"
    assert "Not saved" in browser.find_element(By.CSS_SELECTOR, "[data-status]").text
    assert workspace.metadata.get("workflow", "ticket_flow") == OPEN
    shoot(browser, "designer-workflow-422")

    # Undone (Ctrl+Z out of any text box), the tick is back and the flag gone.
    browser.find_element(By.TAG_NAME, "h1").click()
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    assert _panel(browser, "t:from-open").is_selected()
    assert browser.find_element(By.CSS_SELECTOR, '[data-flag="none"]')

    # A tablet: the diagram fits the width, the transition's editor comes under it.
    browser.set_window_size(768, 1024)
    diagram = browser.find_element(By.CSS_SELECTOR, "[data-diagram]")
    _until(browser, lambda b: diagram.rect["width"] <= b.execute_script(
        "return document.documentElement.clientWidth"))
    selected = browser.find_element(By.CSS_SELECTOR, "[data-selected]")
    assert selected.rect["y"] >= diagram.rect["y"] + diagram.rect["height"]
    assert browser.execute_script("return document.documentElement.scrollWidth <= "
                                  "document.documentElement.clientWidth")
    assert _diagram(browser, "return cy.width()") == diagram.rect["width"] - 2  # its border
    browser.execute_script("window.scrollTo(0, 0)")
    shoot(browser, "designer-workflow-tablet")

    # A phone: the lists are the way in; the diagram comes on request.
    browser.set_window_size(390, 844)
    assert not diagram.is_displayed()
    states = browser.find_element(By.CSS_SELECTOR, "[data-states]")
    assert states.is_displayed() and states.rect["width"] <= 390
    shoot(browser, "designer-workflow-phone")
    show = browser.find_element(By.CSS_SELECTOR, "[data-show-diagram]")
    _click(browser, show)
    assert diagram.is_displayed() and show.get_attribute("aria-pressed") == "true"
    assert absent(browser, ".diagram-box .field-error")
