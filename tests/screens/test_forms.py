"""Forms in a real browser: create with an error then fix it (the input kept), a rule that
shows a field as the user picks an option, a reference found by typing, a date and time
saved in UTC, a stale edit shown as a conflict, and the create flow at 390 px."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from .conftest import csrf_token, log_in, logged_in_client, shoot, submit, wait

ACCOUNT = {"kind": "entity", "name": "account", "label": {"en": "Accounts"},
           "required": ["name"],
           "properties": {"name": {"type": "string", "x-label": {"en": "Name"}},
                          "city": {"type": "string"}}}
DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deals"}, "required": ["title"],
        "properties": {
            "title": {"type": "string", "maxLength": 200, "x-label": {"en": "Title"}},
            "account": {"type": "string", "x-field": "reference", "x-ref": "account",
                        "x-label": {"en": "Account"}},
            "amount": {"type": "number", "minimum": 0, "x-field": "currency",
                       "x-currency": "EUR", "x-scale": 2, "x-label": {"en": "Amount"}},
            "stage": {"type": "string", "x-field": "select", "x-label": {"en": "Stage"},
                      "x-options": {"new": {"label": {"en": "New"}, "color": "gray"},
                                    "proposal": {"label": {"en": "Proposal"},
                                                 "color": "#2563eb"},
                                    "won": {"label": {"en": "Won"}, "color": "green"}}},
            "discount": {"type": "number", "x-field": "percent", "x-label": {"en": "Discount"}},
            "email": {"type": "string", "format": "email", "x-label": {"en": "Email"}},
            "meeting": {"type": "string", "format": "date-time", "x-label": {"en": "Meeting"}},
            "tags": {"type": "array", "items": {"type": "string"}, "x-field": "tags"},
            "notes": {"type": "string", "x-field": "long_text", "x-label": {"en": "Notes"}}}}
FORM = {"kind": "form", "name": "deal_form", "label": {"en": "Deal"}, "entity": "deal",
        "tabs": [{"label": {"en": "Main"},
                  "sections": [{"label": {"en": "The deal"}, "columns": 2,
                                "fields": ["title", "account", "amount", "stage",
                                           "discount", "email"]}]},
                 {"label": {"en": "More"},
                  "sections": [{"columns": 2, "fields": ["meeting", "tags", "notes"]}]}],
        "rules": {"discount": {"visible": 'stage == "proposal"',
                               "required": "amount > 1000"}}}


def _set_up(app: Flask, time_zone: str = "UTC", *more: dict[str, Any]) -> Any:
    ws = app.extensions["blocks"]
    for document in (ACCOUNT, DEAL, FORM, *more):
        ws.metadata.create(document)
    ws.metadata.publish()
    ws.accounts.create_user("ann", password="correct horse", roles=["admin"],
                            time_zone=time_zone)
    ws.records.bulk_insert("account", [{"name": "Acme Corp", "city": "Lyon"},
                                       {"name": "Globex", "city": "Paris"}])
    return ws


def _field(browser: webdriver.Chrome, name: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, f'.field[data-field="{name}"]')


def _errors(browser: webdriver.Chrome, name: str) -> list[str]:
    return [e.text for e in _field(browser, name).find_elements(By.CLASS_NAME, "field-error")]


def _wait(browser: webdriver.Chrome, condition: Any) -> None:
    wait(browser).until(condition)


def _submit(browser: webdriver.Chrome, button_id: str = "save") -> None:
    """Save, and wait for the next page (a refused save answers at the same address, so
    watch the old form go, not the address)."""
    submit(browser, browser.find_element(By.ID, button_id))


def _pick_account(browser: webdriver.Chrome, typed: str, title: str) -> None:
    """Type into the account lookup and click the match."""
    search = _field(browser, "account").find_element(By.CSS_SELECTOR, "input[data-lookup]")
    search.clear()
    search.send_keys(typed)
    _wait(browser, lambda b: _field(b, "account").find_elements(
        By.CSS_SELECTOR, "[data-pick]"))
    picks = _field(browser, "account").find_elements(By.CSS_SELECTOR, "[data-pick]")
    assert [p.text for p in picks] == [title]
    picks[0].click()


def test_create_with_errors_rules_and_a_lookup(site: tuple[str, Flask],
                                                browser: webdriver.Chrome) -> None:
    base, app = site
    ws = _set_up(app, time_zone="Europe/Paris")
    log_in(browser, base, "ann", path="/app/deal/new")
    assert browser.current_url == f"{base}/app/deal/new"
    assert not _field(browser, "discount").is_displayed()  # stage is not "proposal" yet
    assert "€" in _field(browser, "amount").text
    browser.find_element(By.NAME, "amount").send_keys("1500")
    browser.find_element(By.NAME, "email").send_keys("not-an-email")
    _submit(browser)  # title left empty
    assert _errors(browser, "title") == ["is required"]
    assert _errors(browser, "email")
    assert browser.find_element(By.NAME, "amount").get_attribute("value") == "1500"
    assert browser.find_element(By.NAME, "email").get_attribute("value") == "not-an-email"
    shoot(browser, "form-errors")

    browser.find_element(By.NAME, "title").send_keys("Big deal")
    email = browser.find_element(By.NAME, "email")
    email.clear()
    email.send_keys("buyer@example.com")
    _pick_account(browser, "acm", "Acme Corp")
    Select(browser.find_element(By.NAME, "stage")).select_by_value("proposal")
    _wait(browser, lambda b: _field(b, "discount").is_displayed())
    assert "is-required" in _field(browser, "discount").get_attribute("class")  # 1500 > 1000
    shoot(browser, "form-rule-shown")
    Select(browser.find_element(By.NAME, "stage")).select_by_value("won")
    _wait(browser, lambda b: not _field(b, "discount").is_displayed())
    Select(browser.find_element(By.NAME, "stage")).select_by_value("proposal")
    _wait(browser, lambda b: _field(b, "discount").is_displayed())
    _submit(browser)  # discount required by the rule
    assert _errors(browser, "discount") == ["Required"]
    assert browser.find_element(By.CSS_SELECTOR, "input[data-lookup]").get_attribute(
        "value") == "Acme Corp"  # the reference keeps its title

    browser.find_element(By.NAME, "discount").send_keys("5")
    browser.find_element(By.ID, "tab-1").click()
    meeting = browser.find_element(By.NAME, "meeting")
    browser.execute_script("arguments[0].value = '2026-05-01T10:30'", meeting)
    browser.find_element(By.NAME, "tags").send_keys("hot, q2")
    _submit(browser)
    record_id = browser.current_url.rsplit("/", 1)[1]
    assert browser.current_url == f"{base}/app/deal/{record_id}"
    saved = ws.records.get("deal", record_id)
    acme = ws.query("account").filter('name == "Acme Corp"').page().items[0]
    assert (saved["title"], saved["account"], saved["amount"], saved["stage"],
            saved["discount"], saved["tags"]) == ("Big deal", acme["id"], 1500, "proposal",
                                                 5, ["hot", "q2"])
    assert saved["meeting"] == "2026-05-01T08:30:00Z"  # Paris wall clock, stored in UTC
    shoot(browser, "form-saved")

    browser.get(f"{base}/app/deal/{record_id}/edit")  # and back, in the user's time zone
    assert browser.find_element(By.NAME, "meeting").get_attribute(
        "value") == "2026-05-01T10:30"
    assert _field(browser, "discount").is_displayed()


def test_a_stale_edit_shows_the_conflict(site: tuple[str, Flask],
                                         browser: webdriver.Chrome) -> None:
    base, app = site
    ws = _set_up(app)
    deal = ws.records.create("deal", {"title": "Renewal", "amount": 100, "stage": "new"})
    log_in(browser, base, "ann", path=f"/app/deal/{deal['id']}/edit")
    title = browser.find_element(By.NAME, "title")
    assert title.get_attribute("value") == "Renewal"
    ws.records.update("deal", deal["id"], {"amount": 250})  # someone saves first
    title.clear()
    title.send_keys("Renewal 2027")
    _submit(browser)
    conflict = browser.find_element(By.ID, "conflict")
    assert "Someone else saved this record while you were editing" in conflict.text
    rows = conflict.find_elements(By.CSS_SELECTOR, "tbody tr")
    differences = {r.get_attribute("data-field"): (
        r.find_element(By.CLASS_NAME, "mine").text, r.find_element(By.CLASS_NAME, "stored").text)
        for r in rows}
    assert differences == {"title": ("Renewal 2027", "Renewal"), "amount": ("€100.00", "€250.00")}
    assert browser.find_element(By.NAME, "title").get_attribute("value") == "Renewal 2027"
    assert ws.records.get("deal", deal["id"])["title"] == "Renewal"  # nothing lost, yet
    shoot(browser, "form-conflict")
    _submit(browser, "save-over")
    assert browser.current_url == f"{base}/app/deal/{deal['id']}"
    saved = ws.records.get("deal", deal["id"])
    assert (saved["title"], saved["amount"], saved["version"]) == ("Renewal 2027", 100, 3)


def test_create_at_390px(site: tuple[str, Flask], browser: webdriver.Chrome) -> None:
    base, app = site
    ws = _set_up(app)
    acme = ws.query("account").filter('name == "Acme Corp"').page().items[0]
    browser.set_window_size(390, 844)
    log_in(browser, base, "ann", path=f"/app/deal/new?account={acme['id']}")
    title, amount = _field(browser, "title"), _field(browser, "amount")
    assert title.location["x"] == amount.location["x"]  # one column
    assert amount.location["y"] > title.location["y"]
    assert browser.execute_script(
        "return document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    lookup = browser.find_element(By.CSS_SELECTOR, "input[data-lookup]")
    assert lookup.get_attribute("value") == "Acme Corp"  # prefilled from the address
    browser.find_element(By.NAME, "title").send_keys("Phone deal")
    shoot(browser, "form-390px")
    _submit(browser)
    record_id = browser.current_url.rsplit("/", 1)[1]
    saved = ws.records.get("deal", record_id)
    assert (saved["title"], saved["account"]) == ("Phone deal", acme["id"])


REP = {"kind": "role", "name": "rep", "label": {"en": "Rep"},
       "permissions": {"deal": {"read": True, "create": True, "update": True,
                                "fields": {"amount": "read_only", "email": "hidden"}}}}
VIEWER = {"kind": "role", "name": "viewer", "label": {"en": "Viewer"},
          "permissions": {"deal": {"read": True}}}


def _client_as(app: Flask, username: str) -> tuple[Any, dict[str, str]]:
    """A test client logged in as ``username``, and the CSRF header its posts carry."""
    client = logged_in_client(app, username)
    return client, {"X-CSRFToken": csrf_token(client, "/app/")}


def test_the_form_follows_access_rules(site: tuple[str, Flask]) -> None:
    """A read-only field is shown disabled and never sent, a hidden one is not on the form,
    the lookup offers only what the user may read, and a user who may not create is told
    so on the error page."""
    _, app = site
    ws = _set_up(app, "UTC", REP, VIEWER)
    ws.accounts.create_user("bob", password="correct horse", roles=["rep"])
    ws.accounts.create_user("vic", password="correct horse", roles=["viewer"])
    client, csrf = _client_as(app, "bob")
    page = client.get("/app/deal/new").text
    assert re.search(r'<input type="number" id="f-amount" name="amount" data-control disabled',
                     page)
    assert 'name="email"' not in page
    answer = client.post("/app/deal/new", headers=csrf,
                         data={"title": "Mine", "amount": "999", "stage": "new"})
    assert answer.status_code == 302
    saved = ws.records.get("deal", answer.headers["Location"].rsplit("/", 1)[1])
    assert (saved["title"], saved["amount"]) == ("Mine", None)
    assert "No matches" in client.get("/app/deal/lookup/account?q=acme").text  # no account
    assert client.get("/app/deal/lookup/title?q=x").status_code == 404
    flags = client.post("/app/deal/flags", headers=csrf, data={"stage": "proposal"}).json
    assert flags == {"discount": {"visible": True, "required": False, "read_only": False}}
    viewer, _ = _client_as(app, "vic")
    refused = viewer.get("/app/deal/new")
    assert refused.status_code == 403 and "Not allowed" in refused.text


GADGET = {"kind": "entity", "name": "gadget", "label": {"en": "Gadget"},
          "properties": {
              "name": {"type": "string"},
              "phone": {"type": "string", "x-field": "phone"},
              "site": {"type": "string", "x-field": "url"},
              "count": {"type": "integer"},
              "weight": {"type": "number", "x-field": "decimal", "x-scale": 3},
              "price": {"type": "number", "x-field": "currency", "x-currency-field": "cur"},
              "cur": {"type": "string", "enum": ["USD", "EUR"]},
              "active": {"type": "boolean", "default": True},
              "day": {"type": "string", "format": "date"},
              "colors": {"type": "array", "x-field": "multi_select",
                         "items": {"enum": ["red", "blue"]},
                         "x-options": {"red": {"label": {"en": "Red"}, "color": "red"},
                                       "blue": {"label": {"en": "Blue"}, "color": "blue"}}},
              "keeper": {"type": "string", "x-field": "user"},
              "body": {"type": "string", "x-field": "rich_text"},
              "extra": {"type": "object", "x-field": "json"},
              "double": {"x-field": "formula", "x-formula": "count * 2"}}}


def test_every_widget_takes_and_gives_back_its_value(site: tuple[str, Flask]) -> None:
    _, app = site
    ws = _set_up(app, "UTC", GADGET)
    client, csrf = _client_as(app, "ann")
    page = client.get("/app/gadget/new").text
    for snippet in ('type="tel"', 'type="url"', 'step="1"', 'step="0.001"', 'type="date"',
                    'name="colors" value="red"', '<textarea id="f-body"',
                    '<textarea id="f-extra"', 'name="active" data-control checked'):
        assert snippet in page, snippet
    keeper = ws.accounts.users()[0].id
    answer = client.post("/app/gadget/new", headers=csrf, data={
        "name": "Widget", "phone": "+33 1 23", "site": "https://example.com", "count": "3",
        "weight": "1.250", "price": "9.5", "cur": "USD", "_active_present": "1",
        "day": "2026-02-03", "colors": ["red", "blue"], "_colors_present": "1",
        "keeper": keeper, "body": "<p>Hi</p>", "extra": '{"a": 1}'})
    assert answer.status_code == 302, answer.text
    record_id = answer.headers["Location"].rsplit("/", 1)[1]
    saved = ws.records.get("gadget", record_id)
    assert {k: saved[k] for k in ("count", "weight", "price", "active", "colors", "keeper",
                                  "extra", "double")} == {
        "count": 3, "weight": 1.25, "price": 9.5, "active": False, "colors": ["red", "blue"],
        "keeper": keeper, "extra": {"a": 1}, "double": 6}
    edit = client.get(f"/app/gadget/{record_id}/edit").text
    for snippet in ('value="1.25"', 'value="2026-02-03"', "$ USD", '&lt;p&gt;Hi&lt;/p&gt;',
                    'value="blue" data-control checked', f'value="{keeper}" selected'):
        assert snippet in edit, snippet
    bad = client.post(f"/app/gadget/{record_id}/edit", headers=csrf, data={
        "version": "1", "name": "Widget", "extra": "{oops", "count": "x"})
    assert bad.status_code == 422
    assert "Not valid JSON" in bad.text and 'value="x"' in bad.text


def test_a_date_and_time_before_the_calendar_starts(site: tuple[str, Flask]) -> None:
    """0001-01-01 00:00 in Shanghai is in the year 0 in UTC, which no timestamp holds: the
    form shows it (GET, flags) and refuses to save it next to the field, never a 500."""
    _, app = site
    ws = _set_up(app, "Asia/Shanghai")
    client, csrf = _client_as(app, "ann")
    early = "0001-01-01T00:00"
    page = client.get(f"/app/deal/new?meeting={early}&title=Old")
    assert page.status_code == 200
    assert f'name="meeting" data-control value="{early}"' in page.text
    flags = client.post("/app/deal/flags", headers=csrf,
                        data={"meeting": early, "stage": "proposal"})
    assert flags.status_code == 200 and flags.json["discount"]["visible"] is True
    answer = client.post("/app/deal/new", headers=csrf,
                         data={"title": "Old", "meeting": early})
    assert answer.status_code == 422
    errors = re.search(r'data-field="meeting".*?<p class="field-error" id="f-meeting-error">'
                       r'([^<]*)</p>', answer.text, re.S)
    assert errors is not None and errors.group(1) == "Not a date and time"
    assert f'value="{early}"' in answer.text  # what the user typed, kept
    assert ws.query("deal").page().items == []
    later = client.post("/app/deal/new", headers=csrf,
                        data={"title": "Fine", "meeting": "0001-01-02T00:00"})
    assert later.status_code == 302
    saved = ws.records.get("deal", later.headers["Location"].rsplit("/", 1)[1])
    assert saved["meeting"] == "0001-01-01T15:54:17Z"  # Shanghai's local mean time then
    edit = client.get(f"/app/deal/{saved['id']}/edit")
    assert edit.status_code == 200 and 'value="0001-01-02T00:00"' in edit.text
    first = ws.records.create("deal", {"title": "First", "meeting": "0001-01-01T00:00:00Z"})
    ws.accounts.create_user("ned", password="correct horse", roles=["admin"],
                            time_zone="America/New_York")
    west, _ = _client_as(app, "ned")  # the year 0 on his clock: the stored text, as it is
    assert west.get(f"/app/deal/{first['id']}/edit").status_code == 200
