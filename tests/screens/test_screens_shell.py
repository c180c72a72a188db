"""The shell in a real browser: log in, the navigation from the published entities, a
list with search, sort and the next page, and the same list as cards at 390 px."""

from __future__ import annotations

from flask import Flask
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from .conftest import follow, log_in, shoot

DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deals", "zh": "交易"},
        "required": ["title"],
        "properties": {"title": {"type": "string", "x-label": {"en": "Title", "zh": "标题"}},
                       "amount": {"type": "number", "x-label": {"en": "Amount"}}}}
SECRET = {"kind": "entity", "name": "payroll", "label": {"en": "Payroll"},
          "properties": {"who": {"type": "string"}}}
REP = {"kind": "role", "name": "rep", "label": {"en": "Rep"},
       "permissions": {"deal": {"read": True, "create": True}}}


def test_log_in_and_walk_a_list(site: tuple[str, Flask], browser: webdriver.Chrome) -> None:
    base, app = site
    ws = app.extensions["blocks"]
    for document in (DEAL, SECRET, REP):
        ws.metadata.create(document)
    ws.metadata.publish()
    ws.accounts.create_user("ann", password="correct horse", roles=["rep"])
    ws.records.bulk_insert("deal", [{"title": f"Deal {i:03}", "amount": i} for i in range(60)]
                           + [{"title": "Acme renewal", "amount": 999}])
    browser.get(f"{base}/app/")
    assert "/login" in browser.current_url
    shoot(browser, "login")
    log_in(browser, base, "ann")
    WebDriverWait(browser, 10).until(expected_conditions.url_to_be(f"{base}/app/deal"))
    nav = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "nav a")]
    assert nav == ["Deals"]  # payroll is not hers to see
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "thead th")]
    assert headers == ["Title", "Amount"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "tbody tr")) == 50
    shoot(browser, "list")
    follow(browser, browser.find_element(By.LINK_TEXT, "Next page"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "tbody tr")) == 11
    search = browser.find_element(By.CSS_SELECTOR, "main input[name=q]")
    follow(browser, search, "acme", Keys.ENTER)
    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == ["Acme renewal"]
    browser.get(f"{base}/app/deal")
    follow(browser, browser.find_element(By.LINK_TEXT, "Amount"))  # ascending
    follow(browser, browser.find_element(By.LINK_TEXT, "Amount"))  # then descending
    first = browser.find_element(By.CSS_SELECTOR, "tbody tr td").text
    assert first == "Acme renewal"
    browser.set_window_size(390, 844)
    card = browser.find_element(By.CSS_SELECTOR, "tbody tr")
    assert card.size["width"] <= 390 and not browser.find_element(
        By.CSS_SELECTOR, "thead").is_displayed()
    shoot(browser, "list-390px")
