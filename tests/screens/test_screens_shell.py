"""The shell in a real browser: log in, the navigation from the published entities, a
list with search, sort and the next page, and the same list as cards at 390 px."""

from __future__ import annotations

from flask import Flask
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select

from .conftest import absent, follow, log_in, shoot, wait

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
    wait(browser).until(expected_conditions.url_to_be(f"{base}/app/deal"))
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


QUOTE = {"kind": "entity", "name": "quote", "label": {"en": "Quotes", "zh": "报价"},
         "required": ["title"], "x-title-field": "title",
         "properties": {"title": {"type": "string", "x-label": {"en": "Title", "zh": "标题"}},
                        "discount": {"type": "number", "x-field": "percent",
                                     "x-label": {"en": "Discount", "zh": "折扣"}},
                        "total": {"type": "number", "x-field": "currency",
                                  "x-currency": "CNY", "x-label": {"en": "Total",
                                                                   "zh": "总额"}}}}
DISCOUNT = {"kind": "approval", "name": "discount", "label": {"en": "Discount"},
            "entity": "quote", "entry": "discount > 20",
            "steps": [{"name": "manager", "approvers": [{"user": "max"}]}]}
SELLER = {"kind": "role", "name": "seller", "label": {"en": "Seller"},
          "permissions": {"quote": {"create": True, "read": "all", "update": "own"}}}


def test_inbox_search_and_chinese(site: tuple[str, Flask], browser: webdriver.Chrome) -> None:
    """A manager finds a quote by search, approves it from the inbox (the badge counts
    it), then switches to Chinese and reads the same screens in it."""
    base, app = site
    ws = app.extensions["blocks"]
    for document in (QUOTE, SELLER, DISCOUNT):
        ws.metadata.create(document)
    ws.metadata.publish()
    sam = ws.accounts.create_user("sam", password="correct horse", roles=["seller"])
    ws.accounts.create_user("max", password="correct horse", roles=["seller"],
                            display_name="Max")
    quote = ws.records.create("quote", {"title": "Acme rollout", "discount": 25,
                                        "total": 123456.5}, user=sam)
    ws.records.create("quote", {"title": "Other", "discount": 5}, user=sam)
    ws.approvals.submit("quote", quote["id"], user=sam)
    log_in(browser, base, "max", path="/app/")
    badge = browser.find_element(By.CSS_SELECTOR, "[data-count=approvals]")
    assert badge.text == "1"
    shoot(browser, "home")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "header input[name=q]"),
           "acme", Keys.ENTER)
    hits = browser.find_elements(By.CSS_SELECTOR, "main li a")
    assert [h.text for h in hits] == ["Acme rollout"]
    shoot(browser, "search")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "a.counter[href$='/app/approvals']"))
    [card] = browser.find_elements(By.CSS_SELECTOR, "article.approval")
    assert "Acme rollout" in card.text
    shoot(browser, "approval-inbox")
    card.find_element(By.NAME, "comment").send_keys("Fine by me")
    card.find_element(By.CSS_SELECTOR, "button.primary").click()  # back to the inbox
    flash = wait(browser).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".flash")))
    assert flash.text == "Approved."
    counts = browser.find_element(By.CSS_SELECTOR, "#shell-counts[data-loaded]")  # loaded
    assert absent(counts, "[data-count]")
    assert ws.approvals.for_record("quote", quote["id"])[-1]["status"] == "approved"

    browser.get(f"{base}/app/preferences")
    Select(browser.find_element(By.NAME, "language")).select_by_value("zh")
    zones = browser.find_element(By.NAME, "time_zone")  # 600 options: pick it as a script
    browser.execute_script("arguments[0].value = 'Asia/Shanghai'", zones)
    browser.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    wait(browser, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script("return document.documentElement.lang") == "zh"
        and b.execute_script("return document.readyState") == "complete")
    assert browser.find_element(By.CSS_SELECTOR, ".flash").text == "偏好已保存。"
    browser.get(f"{base}/app/quote")
    assert browser.find_element(By.TAG_NAME, "h1").text == "报价"
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "thead th")]
    assert headers[:3] == ["标题", "折扣", "总额"]
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{quote['id']}']").text
    assert "¥123,456.50" in row and "25%" in row
    assert browser.find_element(By.CSS_SELECTOR, "header .logout button").text == "退出登录"
    shoot(browser, "list-zh")
    assert ws.accounts.user("max").time_zone == "Asia/Shanghai"
