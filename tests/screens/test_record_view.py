"""The record's 360° view in a real browser: the state and its transitions (allowed,
asking for a required field, refused by a guard or a stale version), the approval panel
from submission to decision, related lists with "add related", a timeline of changes,
transitions, rule runs and notes, a record the user may not read, and the page at 390 px."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import alert_is_present

from .conftest import absent, csrf_token, follow, log_in, shoot, submit, wait

ACCOUNT = {"kind": "entity", "name": "account", "label": {"en": "Accounts"},
           "required": ["name"], "properties": {"name": {"type": "string"},
                                                "city": {"type": "string"}}}
DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deals"}, "required": ["title"],
        "properties": {
            "title": {"type": "string", "x-label": {"en": "Title"}},
            "amount": {"type": "number", "x-label": {"en": "Amount"}},
            "close_date": {"type": "string", "format": "date", "x-label": {"en": "Close date"}},
            "priority": {"type": "string", "enum": ["low", "high"], "x-field": "select",
                         "x-label": {"en": "Priority"}},
            "account": {"type": "string", "x-field": "reference", "x-ref": "account",
                        "x-label": {"en": "Account"}}}}
FORM = {"kind": "form", "name": "deal_form", "label": {"en": "Deal"}, "entity": "deal",
        "tabs": [{"label": {"en": "Main"},
                  "sections": [{"label": {"en": "The deal"}, "columns": 2,
                                "fields": ["title", "amount", "account", "priority"]}]},
                 {"label": {"en": "Closing"}, "sections": [{"fields": ["close_date"]}]}]}
PIPELINE = {"kind": "workflow", "name": "pipeline", "label": {"en": "Pipeline"},
            "entity": "deal", "initial": "new",
            "states": [{"name": "new", "label": {"en": "New"}},
                       {"name": "qualified", "label": {"en": "Qualified"}},
                       {"name": "won", "label": {"en": "Won"}, "category": "won"},
                       {"name": "lost", "label": {"en": "Lost"}, "category": "lost"}],
            "transitions": [
                {"name": "qualify", "from": ["new"], "to": "qualified",
                 "label": {"en": "Qualify"}},
                {"name": "win", "from": ["qualified"], "to": "won", "label": {"en": "Win"},
                 "require": ["close_date"], "guard": "amount > 0",
                 "guard_message": {"en": "a won deal has an amount"}},
                {"name": "lose", "from": "*", "to": "lost", "label": {"en": "Lose"}}]}
FLAG = {"kind": "automation", "name": "flag_big", "label": {"en": "Flag big deals"},
        "entity": "deal", "trigger": {"on": "updated", "fields": ["amount"]},
        "condition": "amount > 100", "mode": "sync",
        "actions": [{"type": "set_fields", "values": {"priority": "high"}},
                    {"type": "send_email", "to": ["boss@example.com"],
                     "subject": "Big deal", "body": "Have a look."}]}
REVIEW = {"kind": "approval", "name": "review", "label": {"en": "Deal review"},
          "entity": "deal", "steps": [{"name": "manager", "label": {"en": "Manager review"},
                                       "approvers": [{"role": "manager"}]}]}
REP = {"kind": "role", "name": "rep", "label": {"en": "Rep"},
       "permissions": {"deal": {"read": True, "create": True, "update": True,
                                "delete": True},
                       "account": {"read": True, "create": True, "update": True}}}
MANAGER = {"kind": "role", "name": "manager", "label": {"en": "Manager"},
           "permissions": {"deal": {"read": True, "update": True}, "account": {"read": True}}}
OUTSIDER = {"kind": "role", "name": "outsider", "label": {"en": "Outsider"},
            "permissions": {"deal": {"read": "own"}}}


#: Who else works at the desk: Mia manages, Olga reads only her own deals.
OTHERS = {"mia": {"roles": ["manager"], "display_name": "Mia Manager"},
          "olga": {"roles": ["outsider"]}}


def setup(app: Flask, *others: str) -> dict[str, Any]:
    """The sales desk: Ann (rep) owns a deal of Acme, and ``others`` (see OTHERS)."""
    ws = app.extensions["blocks"]
    for document in (ACCOUNT, DEAL, FORM, PIPELINE, FLAG, REVIEW, REP, MANAGER, OUTSIDER):
        ws.metadata.create(document)
    ws.metadata.publish()
    ann = ws.accounts.create_user("ann", password="correct horse", roles=["rep"],
                                  display_name="Ann Rep")
    for name in others:
        ws.accounts.create_user(name, password="correct horse", **OTHERS[name])
    acme = ws.records.create("account", {"name": "Acme", "city": "Lyon"}, user=ann)
    deal = ws.records.create("deal", {"title": "Acme renewal", "amount": 0,
                                      "account": acme["id"]}, user=ann)
    return {"ws": ws, "ann": ann, "acme": acme, "deal": deal}


def flash_text(browser: webdriver.Chrome) -> str:
    return " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".flash"))


def transition(browser: webdriver.Chrome, name: str) -> Any:
    return browser.find_element(By.CSS_SELECTOR, f"button[data-transition={name}]")


def test_transitions_and_the_timeline(site: tuple[str, Flask],
                                      browser: webdriver.Chrome) -> None:
    base, app = site
    desk = setup(app)
    ws, ann, deal = desk["ws"], desk["ann"], desk["deal"]
    page = f"/app/deal/{deal['id']}"
    log_in(browser, base, "ann", path=page)
    assert browser.find_element(By.CSS_SELECTOR, ".record-state").text == "New"
    assert browser.find_element(By.CSS_SELECTOR, "dd a").text == "Acme"  # the reference
    labels = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "[data-transition]")]
    assert labels == ["Qualify → Qualified", "Lose → Lost"]
    assert browser.find_element(By.LINK_TEXT, "Edit").get_attribute("href").endswith(
        f"{page}/edit")
    shoot(browser, "record-view")
    ws.records.update("deal", deal["id"], {"title": "Acme renewal 2026"})  # behind her back
    submit(browser, transition(browser, "qualify"))
    assert "is at version 2, not 1" in flash_text(browser)  # stale: refused, with why
    submit(browser, transition(browser, "qualify"))
    assert browser.find_element(By.CSS_SELECTOR, ".record-state").text == "Qualified"
    # Win needs a close date (asked in a dialog) and an amount (a guard): refused first.
    transition(browser, "win").click()
    dialog = browser.find_element(By.ID, "ask-win")
    wait(browser, 5).until(lambda b: dialog.is_displayed())
    dialog.find_element(By.NAME, "close_date").send_keys("06302026")
    follow(browser, dialog.find_element(By.CSS_SELECTOR, "[data-submit=win]"))
    assert "a won deal has an amount" in flash_text(browser)
    dialog = browser.find_element(By.ID, "ask-win")
    assert dialog.is_displayed()  # back open, with what she typed
    assert dialog.find_element(By.NAME, "close_date").get_attribute("value") == "2026-06-30"
    shoot(browser, "record-transition-refused")
    dialog.find_element(By.CSS_SELECTOR, "[data-close]").click()
    ws.records.update("deal", deal["id"], {"amount": 500}, user=ann)  # the rule flags it
    browser.get(f"{base}{page}")
    transition(browser, "win").click()
    dialog = browser.find_element(By.ID, "ask-win")
    wait(browser, 5).until(lambda b: dialog.is_displayed())
    dialog.find_element(By.NAME, "close_date").send_keys("06302026")
    submit(browser, dialog.find_element(By.CSS_SELECTOR, "[data-submit=win]"))
    assert browser.find_element(By.CSS_SELECTOR, ".record-state").text == "Won"
    assert ws.records.get("deal", deal["id"])["close_date"] == "2026-06-30"
    # A note through the form (an empty one is refused), then the timeline and the "why".
    browser.find_element(By.ID, "note-body").send_keys("   ")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "[data-action=note]"))
    assert browser.find_element(By.ID, "note-error").text == "Note: must not be empty"
    browser.find_element(By.ID, "note-body").send_keys("Called <b>Bob</b>")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "[data-action=note]"))
    items = browser.find_elements(By.CSS_SELECTOR, ".timeline > li")
    texts = [i.text for i in items]
    assert "Called <b>Bob</b>" in texts[0]  # newest first, escaped
    assert any("Transition: Win" in t and "Qualified" in t and "Won" in t for t in texts)
    assert any("Transition: Qualify" in t for t in texts)
    update = next(i for i in items if "Ann Rep" in i.text and "Amount" in i.text)
    assert update.find_element(By.CSS_SELECTOR, ".before").text == "0"
    assert update.find_element(By.CSS_SELECTOR, ".after").text == "500"
    assert any("Rule Flag big deals" in t and "Priority" in t for t in texts)  # its write
    assert any("Rule Flag big deals" in t and "Ran on updated" in t for t in texts)
    # the email's subject and addresses may show what Ann may not see: only how many, how
    assert any("Email to 1 recipient (kept)" in t for t in texts)
    assert not any("Big deal" in t or "boss@example.com" in t for t in texts)
    why = browser.find_element(By.ID, "why").text
    assert "Flag big deals" in why and "Set fields" in why and "Send an email" in why
    assert "high" not in why  # what an action wrote is for admins
    shoot(browser, "record-timeline")


def test_submit_and_approve_from_the_record(site: tuple[str, Flask],
                                            browser: webdriver.Chrome) -> None:
    base, app = site
    desk = setup(app, "mia")
    page = f"/app/deal/{desk['deal']['id']}"
    log_in(browser, base, "ann", path=page)
    assert "Not submitted" in browser.find_element(By.ID, "approval").text
    browser.find_element(By.CSS_SELECTOR, "#approval input[name=comment]").send_keys("please")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "[data-action=submit]"))
    panel = browser.find_element(By.ID, "approval")
    assert "Pending" in panel.text and "Step: Manager review" in panel.text
    assert panel.find_element(By.CSS_SELECTOR, ".waiting").text == "Waiting for: Mia Manager"
    assert [b.get_attribute("data-decision")
            for b in panel.find_elements(By.CSS_SELECTOR, "[data-decision]")] == ["recall"]
    assert absent(browser, "[data-action=submit]")
    shoot(browser, "record-approval-pending")
    browser.delete_all_cookies()
    log_in(browser, base, "mia", path=page)
    panel = browser.find_element(By.ID, "approval")
    panel.find_element(By.NAME, "comment").send_keys("fine by me")
    submit(browser, panel.find_element(By.CSS_SELECTOR, "[data-decision=approve]"))
    assert browser.current_url == f"{base}{page}"  # back on the record
    panel = browser.find_element(By.ID, "approval")
    assert panel.find_element(By.CSS_SELECTOR, "[data-status]").text == "Approved"
    assert "Mia Manager · approved · Manager review" in panel.text
    assert "fine by me" in panel.text and "Waiting for" not in panel.text
    timeline = browser.find_element(By.ID, "timeline").text
    assert "Submitted for approval: Deal review" in timeline and "please" in timeline
    assert "Approval Deal review approved" in timeline
    shoot(browser, "record-approval-approved")


def test_related_lists_access_and_a_phone(site: tuple[str, Flask],
                                          browser: webdriver.Chrome) -> None:
    base, app = site
    desk = setup(app, "olga")
    ws, ann, acme = desk["ws"], desk["ann"], desk["acme"]
    ws.records.create("deal", {"title": "Acme upsell", "amount": 70, "account": acme["id"]},
                      user=ann)
    other = ws.records.create("deal", {"title": "Other deal"}, user=ann)
    log_in(browser, base, "ann", path=f"/app/account/{acme['id']}")
    related = browser.find_element(By.CSS_SELECTOR, "[data-related='deal.account']")
    assert related.find_element(By.CSS_SELECTOR, ".count").text == "2"
    titles = {a.text for a in related.find_elements(By.CSS_SELECTOR, "tbody tr a")}
    assert titles == {"Acme renewal", "Acme upsell"}
    headers = [th.text for th in related.find_elements(By.CSS_SELECTOR, "thead th")]
    assert "Account" not in headers  # it is this record
    shoot(browser, "record-related")
    add = related.find_element(By.CSS_SELECTOR, "[data-add]")
    assert add.get_attribute("href") == f"{base}/app/deal/new?account={acme['id']}"
    follow(browser, add)
    assert browser.current_url == f"{base}/app/deal/new?account={acme['id']}"
    # A phone: the panels stack.
    browser.set_window_size(390, 844)
    browser.get(f"{base}/app/deal/{desk['deal']['id']}")
    details = browser.find_element(By.ID, "details")
    timeline = browser.find_element(By.ID, "timeline")
    assert details.rect["x"] == timeline.rect["x"] and timeline.rect["y"] > details.rect["y"]
    assert browser.execute_script(
        "return document.documentElement.scrollWidth") <= browser.execute_script(
        "return window.innerWidth")
    shoot(browser, "record-390px")
    browser.set_window_size(1280, 900)
    # Deleting asks first, then goes back to the list.
    browser.get(f"{base}/app/deal/{other['id']}")
    before = browser.current_url
    browser.find_element(By.CSS_SELECTOR, "[data-action=delete]").click()
    wait(browser, 5).until(alert_is_present()).accept()
    wait(browser).until(lambda b: b.current_url != before)
    assert browser.current_url == f"{base}/app/deal" and "Deleted." in flash_text(browser)
    # Olga may read only her own deals: Ann's does not exist for her.
    browser.delete_all_cookies()
    log_in(browser, base, "olga", path=f"/app/deal/{desk['deal']['id']}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    assert "Acme" not in browser.find_element(By.TAG_NAME, "main").text
    shoot(browser, "record-not-found")


def test_an_admin_sees_what_each_rule_did(site: tuple[str, Flask]) -> None:
    """The "why" in full for an admin (the values a rule wrote, the email's body); the
    page as plain HTML, without a browser."""
    _, app = site
    desk = setup(app)
    ws = desk["ws"]
    ws.records.update("deal", desk["deal"]["id"], {"amount": 500}, user=desk["ann"])
    ada = ws.accounts.create_user("ada", roles=["admin"])
    client = app.test_client()
    with client.session_transaction() as session:
        session["user_id"] = ada.id
    page = client.get(f"/app/deal/{desk['deal']['id']}").get_data(as_text=True)
    assert "Set fields: Priority → <span class=\"chip\">high</span>" in page
    assert "Have a look." in page


def as_user(app: Flask, user: Any) -> FlaskClient:
    """A test client logged in as ``user`` (no browser)."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["user_id"] = user.id
    return client


def test_regression_a_version_or_request_id_that_is_no_number_is_refused_not_a_500(
        site: tuple[str, Flask]) -> None:
    _, app = site
    desk = setup(app)
    ws, deal = desk["ws"], desk["deal"]
    page = f"/app/deal/{deal['id']}"
    client = as_user(app, desk["ann"])
    token = csrf_token(client, page)
    for version in ("²", "\u0661", "99999999999999999999999", "-1"):
        for action in ("transition/qualify", "delete"):
            answer = client.post(f"{page}/{action}", data={"csrf_token": token,
                                                           "version": version})
            assert answer.status_code == 302, (version, action, answer.status_code)
            shown = client.get(page).get_data(as_text=True)
            assert "is at version 1" in shown, (version, action)  # refused as stale
    saved = ws.records.get("deal", deal["id"])
    assert (saved["state"], saved["version"]) == ("new", 1)
    answer = client.post("/app/approvals/99999999999999999999999/approve",
                         data={"csrf_token": token, "next": page})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(page)
    assert "not found" in client.get(page).get_data(as_text=True)


def test_regression_the_inbox_names_the_record_and_the_step(site: tuple[str, Flask]) -> None:
    _, app = site
    desk = setup(app, "mia")
    ws = desk["ws"]
    request = ws.approvals.submit("deal", desk["deal"]["id"], user=desk["ann"])
    # a ticket's title is its fourth field: past the three a summary used to hold
    ws.metadata.create({"kind": "entity", "name": "ticket", "label": {"en": "Tickets"},
                        "x-title-field": "subject", "properties": {
                            "code": {"type": "string"}, "area": {"type": "string"},
                            "size": {"type": "number"}, "subject": {"type": "string"}}})
    ws.metadata.create({"kind": "approval", "name": "triage", "label": {"en": "Triage"},
                        "entity": "ticket", "steps": [{"name": "lead",
                                                       "label": {"en": "Lead check"},
                                                       "approvers": [{"user": "mia"}]}]})
    ws.metadata.replace("role", "rep", {**REP, "permissions": {
        **REP["permissions"], "ticket": {"read": True, "create": True, "update": True}}})
    ws.metadata.replace("role", "manager", {**MANAGER, "permissions": {
        **MANAGER["permissions"], "ticket": {"read": True, "update": True}}})
    ws.metadata.publish()
    ticket = ws.records.create("ticket", {"code": "T-1", "area": "billing", "size": 3,
                                          "subject": "Refund for Acme"}, user=desk["ann"])
    other = ws.approvals.submit("ticket", ticket["id"], user=desk["ann"])
    client = as_user(app, ws.accounts.user("mia"))
    html = client.get("/app/approvals").get_data(as_text=True)
    card = html[html.index(f'data-request="{other["id"]}"'):]
    card = card[:card.index("</article>")]
    assert f'/app/ticket/{ticket["id"]}">Refund for Acme</a>' in card
    assert "Tickets" in card and "step Lead check" in card
    card = html[html.index(f'data-request="{request["id"]}"'):]
    card = card[:card.index("</article>")]
    assert f'/app/deal/{desk["deal"]["id"]}">Acme renewal</a>' in card  # the title
    assert "step Manager review" in card and "step manager" not in card  # the step's label
    assert "Amount: 0" in card and f'/app/account/{desk["acme"]["id"]}">Acme</a>' in card
