"""The designer's automation and approval builders in a real browser.

An automation is built as a sentence (entity, trigger, a condition made in the builder's
rows, two actions reordered by drag), dry-run on the records there are (the matches are
listed with what each action would do), saved, published, and then acts on a record
created through the engine. An approval with two steps is built, reordered by keyboard,
saved and published, and a submitted record reaches its first step's approver. Errors
the API reports land on the element their JSON Pointer names."""

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
            "title": {"type": "string", "x-field": "text", "x-label": {"en": "Title"}},
            "amount": {"type": "number", "x-field": "currency", "x-label": {"en": "Amount"}},
            "priority": {"type": "string", "x-field": "select", "enum": ["low", "high"],
                         "x-label": {"en": "Priority"}},
            "reviewer": {"type": "string", "x-field": "user", "x-label": {"en": "Reviewer"}}}}
MANAGER = {"kind": "role", "name": "sales_manager", "label": {"en": "Sales manager"},
           "permissions": {"deal": {"read": True, "update": True}}}
REP = {"kind": "role", "name": "sales_rep", "label": {"en": "Sales rep"},
       "permissions": {"deal": {"create": True, "read": "own", "update": "own"}}}
BUILT_RULE = {
    "kind": "automation", "name": "big_deal", "label": {"en": "Big deal"}, "entity": "deal",
    "trigger": {"on": "created"}, "condition": "amount > 10000", "mode": "sync",
    "actions": [{"type": "set_fields", "values": {"priority": "high"}},
                {"type": "notify", "user": "owner", "title": "Big deal: {{ record.title }}"}]}


def _until(browser: webdriver.Chrome, done: Callable[[webdriver.Chrome], Any]) -> Any:
    """Wait for what the page's script does (it loads the document after the page)."""
    return wait(browser).until(done)


def _find(browser: webdriver.Chrome, key: str) -> WebElement:
    """The control with this data-key, scrolled to the middle (clear of the sticky bar)."""
    found = browser.find_element(By.CSS_SELECTOR, f'[data-key="{key}"]')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", found)
    return found


def _type(browser: webdriver.Chrome, key: str, text: str) -> None:
    """Replace a text box's text and leave it, which commits it (one undo step)."""
    field = _find(browser, key)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(text, Keys.TAB)


def _pick(browser: webdriver.Chrome, key: str, value: str) -> None:
    Select(_find(browser, key)).select_by_value(value)


def _click(browser: webdriver.Chrome, key: str) -> None:
    _find(browser, key).click()


def _drag(browser: webdriver.Chrome, source: WebElement, target: WebElement) -> None:
    """A real drag (SortableJS in its pointer-event mode), in small steps, onto the upper
    part of ``target``."""
    chain = ActionChains(browser, duration=50).click_and_hold(source)
    for _ in range(3):
        chain.move_by_offset(6, 6)
    chain.move_to_element_with_offset(target, 0, -target.size["height"] // 3)
    chain.move_by_offset(0, 2).release().perform()


def _actions(browser: webdriver.Chrome, key: str = "actions") -> list[str]:
    return [item.get_attribute("data-type") for item in browser.find_elements(
        By.CSS_SELECTOR, f'[data-actions="{key}"] > .action')]


def _open_new(browser: webdriver.Chrome, base: str, kind: str) -> None:
    log_in(browser, base, "ada", path="/designer/")
    follow(browser, browser.find_element(By.CSS_SELECTOR, f'[data-new="{kind}"]'))
    _until(browser, lambda b: b.find_element(By.CSS_SELECTOR, "[data-save]").is_enabled())


def _save(browser: webdriver.Chrome) -> str:
    browser.find_element(By.CSS_SELECTOR, "[data-save]").click()
    status = browser.find_element(By.CSS_SELECTOR, "[data-status]")
    _until(browser, lambda b: status.text and status.text != "Saving…")
    return status.text


def _shoot_whole(browser: webdriver.Chrome, name: str) -> None:
    """A screenshot of the whole page, the window made as tall as it for a moment."""
    width, height = browser.get_window_size().values()
    tall = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, tall + 150)
    shoot(browser, name)
    browser.set_window_size(width, height)


def _office(workspace: Workspace) -> dict[str, Any]:
    workspace.metadata.create(DEAL)
    workspace.metadata.create(MANAGER)
    workspace.metadata.create(REP)
    workspace.metadata.publish()
    accounts = workspace.accounts
    people = {"ada": accounts.create_user("ada", password="correct horse", roles=["admin"]),
              "bea": accounts.create_user("bea")}
    people["sam"] = accounts.create_user("sam", manager="bea", roles=["sales_rep"])
    people["mia"] = accounts.create_user("mia", password="correct horse",
                                         roles=["sales_manager"])
    return people


def test_build_dry_run_save_and_publish_an_automation(site: tuple[str, Flask],
                                                      browser: webdriver.Chrome,
                                                      workspace: Workspace) -> None:
    base, _ = site
    people = _office(workspace)
    for title, amount in (("Small", 500), ("Big", 20000), ("Huge", 50000)):
        workspace.records.create("deal", {"title": title, "amount": amount,
                                          "owner_id": people["sam"].id})
    _open_new(browser, base, "automation")
    name = browser.find_element(By.CSS_SELECTOR, "[data-def-name]")
    name.send_keys("big_deal", Keys.TAB)
    browser.find_element(By.CSS_SELECTOR, '[data-label="en"]').send_keys("Big deal", Keys.TAB)
    _pick(browser, "entity", "deal")

    # If: amount > 10000, made in the builder's rows.
    _click(browser, "condition:g:add")
    _pick(browser, "condition:r0:field", "amount")
    _pick(browser, "condition:r0:op", "gt")
    _type(browser, "condition:r0:value", "10000")
    _until(browser, lambda b: b.find_element(By.CSS_SELECTOR, '[data-key="condition:text"]')
           .get_attribute("value") == "amount > 10000")

    # Then: notify the owner, then set the priority; the second dragged above the first.
    _pick(browser, "actions:new-type", "notify")
    _click(browser, "actions:new")
    _type(browser, "actions:0:title", "Big deal: {{ record.title }}")
    _pick(browser, "actions:new-type", "set_fields")
    _click(browser, "actions:new")
    _click(browser, "actions:1:add-value")
    _pick(browser, "actions:1:value-0:field", "priority")
    _pick(browser, "actions:1:value-0:value", "high")
    assert _actions(browser) == ["notify", "set_fields"]
    items = browser.find_elements(By.CSS_SELECTOR, '[data-actions="actions"] > .action')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", items[0])
    _drag(browser, items[1].find_element(By.CSS_SELECTOR, ".handle"), items[0])
    _until(browser, lambda b: _actions(b) == ["set_fields", "notify"])
    _pick(browser, "mode", "sync")
    _shoot_whole(browser, "designer-automation-built")

    # The dry run tries the unsaved rule on the deals there are.
    _click(browser, "dry-run")
    count = browser.find_element(By.CSS_SELECTOR, "[data-matches]")
    assert count.get_attribute("data-matches") == "2"
    assert "2 records match" in count.text
    listed = browser.find_elements(By.CSS_SELECTOR, ".dry-items > li")
    assert sorted(item.find_element(By.TAG_NAME, "a").text for item in listed) == ["Big", "Huge"]
    for item in listed:
        lines = [line.text for line in item.find_elements(By.CSS_SELECTOR, "ul > li")]
        assert lines[0] == "Set fields: priority = high"
        assert lines[1].startswith("Notify a user:") and "Big deal" in lines[1]
    browser.execute_script("arguments[0].scrollIntoView()", count)
    shoot(browser, "designer-automation-dry-run")

    assert "Saved as a draft" in _save(browser)
    assert browser.current_url.endswith("/designer/automation/big_deal")
    assert workspace.metadata.get("automation", "big_deal") == BUILT_RULE
    workspace.metadata.publish()
    made = workspace.records.create("deal", {"title": "Giant", "amount": 90000,
                                             "owner_id": people["sam"].id})
    assert workspace.records.get("deal", made["id"])["priority"] == "high"
    assert [n["title"] for n in workspace.accounts.notifications(people["sam"])["items"]] \
        == ["Big deal: Giant"]
    small = workspace.records.create("deal", {"title": "Tiny", "amount": 10,
                                              "owner_id": people["sam"].id})
    assert workspace.records.get("deal", small["id"]).get("priority") is None

    # Opened again, the published rule reads as it was built.
    browser.refresh()
    _until(browser, lambda b: _actions(b) == ["set_fields", "notify"])
    _until(browser, lambda b: Select(b.find_element(
        By.CSS_SELECTOR, '[data-key="condition:r0:field"]')).first_selected_option
        .get_attribute("value") == "amount")
    assert Select(_find(browser, "mode")).first_selected_option.get_attribute("value") == "sync"

    # By keyboard: the first action moves down, and the focus stays on its button.
    _find(browser, "actions:0:down").send_keys(Keys.ENTER)
    assert _actions(browser) == ["notify", "set_fields"]
    assert browser.switch_to.active_element.get_attribute("data-key") == "actions:1:up"
    browser.find_element(By.CSS_SELECTOR, "[data-undo]").click()
    assert _actions(browser) == ["set_fields", "notify"]
    browser.find_element(By.CSS_SELECTOR, "[data-redo]").click()
    assert _actions(browser) == ["notify", "set_fields"]

    # A value as a formula that does not parse: the dry run names it, at its row.
    _click(browser, "actions:1:value-0:formula")
    assert _find(browser, "actions:1:value-0:value").get_attribute("value") == '"high"'
    _type(browser, "actions:1:value-0:value", "amount *")
    _click(browser, "dry-run")
    error = browser.find_element(By.CSS_SELECTOR,
                                 '[data-pointer="/actions/1/values/priority"] .field-error')
    assert error.get_attribute("data-problem") == "/actions/1/values/priority/formula"
    assert browser.find_element(By.CSS_SELECTOR, "[data-dry-failed]").is_displayed()
    shoot(browser, "designer-automation-dry-run-error")

    # A schedule whose cron is too short: the meta-schema's error shows at the cron.
    _pick(browser, "trigger:on", "schedule")
    _type(browser, "trigger:cron", "5 * *")
    assert "Not saved" in _save(browser)
    error = browser.find_element(By.CSS_SELECTOR,
                                 '[data-pointer="/trigger/cron"] .field-error')
    assert error.get_attribute("data-problem") == "/trigger/cron"
    shoot(browser, "designer-automation-422")

    # A tablet, then a phone: the sentence fits the width (nothing to scroll sideways).
    for width, name in ((768, "tablet"), (390, "phone")):
        browser.set_window_size(width, 1024)
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth")
        _shoot_whole(browser, f"designer-automation-{name}")


BUILT_APPROVAL = {
    "kind": "approval", "name": "big_discount", "label": {"en": "Big discount"},
    "entity": "deal", "entry": "amount > 1000",
    "steps": [{"name": "board", "approvers": [{"role": "sales_manager"}], "mode": "all"},
              {"name": "manager", "approvers": [{"manager": True}], "timeout": {"hours": 24},
               "escalate_to": {"role": "sales_manager"}}],
    "on": {"rejected": [{"type": "notify", "user": "owner", "title": "Refused"}]}}


def _steps(browser: webdriver.Chrome) -> list[str]:
    return [step.get_attribute("data-step")
            for step in browser.find_elements(By.CSS_SELECTOR, "[data-steps] > .step")]


def test_build_an_approval_with_two_steps_then_submit_to_it(site: tuple[str, Flask],
                                                            browser: webdriver.Chrome,
                                                            workspace: Workspace) -> None:
    base, _ = site
    people = _office(workspace)
    _open_new(browser, base, "approval")
    browser.find_element(By.CSS_SELECTOR, "[data-def-name]").send_keys("big_discount", Keys.TAB)
    browser.find_element(By.CSS_SELECTOR, '[data-label="en"]').send_keys("Big discount",
                                                                        Keys.TAB)
    _pick(browser, "entity", "deal")
    _click(browser, "entry:g:add")
    _pick(browser, "entry:r0:field", "amount")
    _pick(browser, "entry:r0:op", "gt")
    _type(browser, "entry:r0:value", "1000")
    _until(browser, lambda b: b.find_element(By.CSS_SELECTOR, '[data-key="entry:text"]')
           .get_attribute("value") == "amount > 1000")

    # The first step: the owner's manager (as a new step starts), escalated after a day.
    _type(browser, "step:0:name", "manager")
    _type(browser, "step:0:timeout:hours", "24")
    _pick(browser, "step:0:escalate:kind", "role")
    _pick(browser, "step:0:escalate:value", "sales_manager")
    # The second: everyone in the sales managers' role.
    _click(browser, "add-step")
    assert browser.switch_to.active_element.get_attribute("data-key") == "step:1:name"
    _type(browser, "step:1:name", "board")
    _pick(browser, "step:1:approver-0:kind", "role")
    _pick(browser, "step:1:approver-0:value", "sales_manager")
    _pick(browser, "step:1:mode", "all")
    assert _steps(browser) == ["manager", "board"]

    # By keyboard: the board moves up, and the focus stays on its button.
    _find(browser, "step:1:up").send_keys(Keys.ENTER)
    assert _steps(browser) == ["board", "manager"]
    assert browser.switch_to.active_element.get_attribute("data-key") == "step:0:down"

    _pick(browser, "on-rejected:new-type", "notify")
    _click(browser, "on-rejected:new")
    _type(browser, "on-rejected:0:title", "Refused")
    _shoot_whole(browser, "designer-approval-built")
    assert "Saved as a draft" in _save(browser)
    assert workspace.metadata.get("approval", "big_discount") == BUILT_APPROVAL

    # A step name the meta-schema refuses: its error shows at the name.
    _type(browser, "step:1:name", "Line manager")
    assert "Not saved" in _save(browser)
    error = browser.find_element(By.CSS_SELECTOR, '[data-pointer="/steps/1/name"] .field-error')
    assert error.get_attribute("data-problem") == "/steps/1/name"
    shoot(browser, "designer-approval-422")
    assert workspace.metadata.get("approval", "big_discount") == BUILT_APPROVAL
    browser.set_window_size(768, 1024)
    _shoot_whole(browser, "designer-approval-tablet")

    # Published, it works: a submitted deal waits on the board, Mia's role.
    workspace.metadata.publish()
    deal = workspace.records.create("deal", {"title": "Discounted", "amount": 5000,
                                             "owner_id": people["sam"].id})
    request = workspace.approvals.submit("deal", deal["id"], user=people["sam"])
    assert request["step"] == "board"
    assert [i["record_id"] for i in workspace.approvals.inbox(people["mia"])] == [deal["id"]]
    assert workspace.approvals.inbox(people["bea"]) == []
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    log_in(browser, base, "mia", path="/app/approvals")
    assert "Discounted" in browser.find_element(By.TAG_NAME, "main").text
