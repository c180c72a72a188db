"""The designer's review, publish and history pages in a real browser: every draft's
changes and the DDL read before publishing, a step that removes data ticked on purpose,
then the history: two versions compared, an earlier one restored as the draft."""

from __future__ import annotations

import copy

from flask import Flask
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from selenium.webdriver.support.wait import WebDriverWait

from blockscrm.engine import Workspace

from .conftest import follow, log_in, shoot

TICKET = {"kind": "entity", "name": "ticket", "label": {"en": "Ticket"},
          "required": ["subject"],
          "properties": {"subject": {"type": "string", "maxLength": 200},
                         "legacy": {"type": "string"}}}


def test_review_publish_then_compare_and_restore(site: tuple[str, Flask],
                                                 browser: webdriver.Chrome,
                                                 workspace: Workspace) -> None:
    base, _ = site
    workspace.accounts.create_user("ada", password="correct horse", roles=["admin"])
    workspace.metadata.create(TICKET)
    workspace.metadata.publish()
    workspace.records.create("ticket", {"subject": "Printer", "legacy": "old value"})
    changed = copy.deepcopy(TICKET)
    changed["label"] = {"en": "Support case"}
    del changed["properties"]["legacy"]
    workspace.metadata.replace("entity", "ticket", changed)

    log_in(browser, base, "ada", path="/designer/")
    assert browser.find_element(By.CSS_SELECTOR, '[data-definition="entity/ticket"] .draft')
    follow(browser, browser.find_element(By.CSS_SELECTOR, "[data-pending]"))
    definition = browser.find_element(By.CSS_SELECTOR, '[data-definition="entity/ticket"]')
    assert "/label/en" in definition.text and "Support case" in definition.text
    assert "/properties/legacy" in definition.text
    step = browser.find_element(By.CSS_SELECTOR, ".step.destructive")
    assert "DROP COLUMN legacy" in step.find_element(By.CSS_SELECTOR, ".ddl").text
    publish = browser.find_element(By.CSS_SELECTOR, "[data-publish]")
    assert not publish.is_enabled()  # nothing removing data goes out unticked
    shoot(browser, "designer-review")
    step.find_element(By.CSS_SELECTOR, "[data-confirm]").click()
    assert publish.is_enabled()
    publish.click()
    assert browser.find_element(By.CSS_SELECTOR, "[data-published]")
    assert "legacy" not in workspace.catalog().entities["ticket"].fields
    assert workspace.catalog().documents[("entity", "ticket")]["label"] == {
        "en": "Support case"}

    browser.get(f"{base}/designer/history")
    rows = browser.find_elements(By.CSS_SELECTOR, "[data-publish-id]")
    assert len(rows) == 2 and "ada" not in rows[1].text  # the first was the system's
    rows[0].find_element(By.CSS_SELECTOR, '[data-open="entity/ticket"]').click()
    form = browser.find_element(By.CSS_SELECTOR, "[data-compare]")
    WebDriverWait(browser, 5).until(
        lambda b: len(Select(form.find_element(By.NAME, "from")).options) == 2)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    changes = browser.find_element(By.CSS_SELECTOR, "[data-changes] .change")
    assert "/label/en" in changes.text
    shoot(browser, "designer-history")
    browser.find_element(By.CSS_SELECTOR, "[data-restore]").click()
    assert browser.find_element(By.CSS_SELECTOR, "[data-restored]")
    assert workspace.metadata.pending() == [("entity", "ticket")]
    assert workspace.metadata.get("entity", "ticket")["label"] == {"en": "Ticket"}


def test_only_admins_design(site: tuple[str, Flask], browser: webdriver.Chrome,
                            workspace: Workspace) -> None:
    base, app = site
    workspace.accounts.create_user("rex", password="correct horse")
    with app.test_client() as client:
        assert client.get("/designer/").status_code == 302  # to the login form
    log_in(browser, base, "rex", path="/designer/")
    assert "403" in browser.title or "Forbidden" in browser.page_source
