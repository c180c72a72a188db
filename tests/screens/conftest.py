"""Browser tests: the real app on a local port, driven by headless Chromium (Debian's
``chromium`` and ``chromedriver``, which ``.ci/run`` installs) through Selenium.

Each test saves screenshots under ``artifacts/screens/`` for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait
from werkzeug.serving import make_server

from blockscrm.engine import Workspace
from blockscrm.platform.app import create_app

from conftest import IN_CI

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screens"
#: Seconds ``find_element`` waits for what is not there yet.
IMPLICIT_WAIT = 5
#: Seconds between two looks of a wait. Selenium's default, half a second, was most of
#: what each wait cost (the page is usually ready a few milliseconds after the first).
POLL = 0.05


@pytest.fixture
def site(workspace: Workspace) -> Iterator[tuple[str, Flask]]:
    """The app served on a free local port, in a thread, for as long as the test runs."""
    app = create_app({"DATABASE_URL": workspace.url, "SECRET_KEY": "test-secret"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # Shutting down waits for the loop's next look: every 50 ms, not the default 500.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    thread.join(timeout=10)
    app.extensions["blocks"].close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the whole run: starting one takes a second or more."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        if IN_CI:
            pytest.fail("chromium and chromedriver are not installed (.ci/run installs them)")
        pytest.skip("chromium and chromedriver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--lang=en-US"):
        options.add_argument(argument)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.implicitly_wait(IMPLICIT_WAIT)
    yield chrome
    chrome.quit()


@pytest.fixture
def browser(chromium: webdriver.Chrome) -> Iterator[webdriver.Chrome]:
    """The browser, as new to each test: no cookies (they ignore the port, so one test's
    session would reach the next test's server), a blank page, a desktop window."""
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chromium.get("about:blank")
    chromium.set_window_size(1280, 900)
    yield chromium
    chromium.get("about:blank")  # leave no page polling a server that is going away


def wait(browser: webdriver.Chrome, timeout: float = 10, **options: Any) -> WebDriverWait:
    """A ``WebDriverWait`` that looks every :data:`POLL` seconds."""
    return WebDriverWait(browser, timeout, poll_frequency=POLL, **options)


def absent(scope: webdriver.Chrome | WebElement, css: str) -> bool:
    """Whether nothing in ``scope`` (the page, or an element of it) matches ``css`` now,
    without the implicit wait for it to come: asked about a page that has loaded."""
    browser = scope.parent if isinstance(scope, WebElement) else scope
    browser.implicitly_wait(0)
    try:
        return not scope.find_elements(By.CSS_SELECTOR, css)
    finally:
        browser.implicitly_wait(IMPLICIT_WAIT)


def shoot(browser: webdriver.Chrome, name: str) -> None:
    """Keep a screenshot of what the browser shows now."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def follow(browser: webdriver.Chrome, element: WebElement, *keys: str) -> None:
    """Click (or type into) what leads to another address, and wait until the page there
    has loaded (watching the address, not the old page's nodes, which Chromium may be
    tearing down while it is asked about them)."""
    before = browser.current_url
    if keys:
        element.send_keys(*keys)
    else:
        element.click()
    wait(browser, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.current_url != before
        and b.execute_script("return document.readyState") == "complete")


def log_in(browser: webdriver.Chrome, base: str, username: str, path: str = "/app/deal",
           password: str = "correct horse") -> None:
    """Open ``path``, which sends the browser to the login form, and log in."""
    browser.get(f"{base}{path}")
    browser.find_element(By.NAME, "username").send_keys(username)
    follow(browser, browser.find_element(By.NAME, "password"), password, Keys.ENTER)


def submit(browser: webdriver.Chrome, element: WebElement) -> None:
    """Click what posts and may come back to the same address, and wait for the page it
    answers: the old document carries a mark the new one does not (watching the old
    nodes go stale trips over Chromium tearing them down)."""
    browser.execute_script("window.blocksOldPage = true")
    element.click()
    wait(browser, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script(
            "return !window.blocksOldPage && document.readyState === 'complete'"))


# --- Flask's test client (no browser) --------------------------------------------------------


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token in the page at ``path``, as its forms post it."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(True))
    assert found is not None, path
    return found.group(1)


def logged_in_client(app: Flask, username: str, password: str = "correct horse"
                     ) -> FlaskClient:
    """A test client logged in through the login form, as a person would (a session
    cookie, not a forged session)."""
    client = app.test_client()
    answer = client.post("/login", data={"username": username, "password": password,
                                         "csrf_token": csrf_token(client, "/login")})
    assert answer.status_code == 302, (username, answer.status_code)
    return client
