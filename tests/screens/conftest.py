"""Browser tests: the real app on a local port, driven by headless Chromium (Debian's
``chromium`` and ``chromedriver``, which ``.ci/run`` installs) through Selenium.

Each test saves screenshots under ``artifacts/screens/`` for a person to look at.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
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


@pytest.fixture
def site(workspace: Workspace) -> Iterator[tuple[str, Flask]]:
    """The app served on a free local port, in a thread, for as long as the test runs."""
    app = create_app({"DATABASE_URL": workspace.url, "SECRET_KEY": "test-secret"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
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
    chrome.implicitly_wait(5)
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
    WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,)).until(
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
    WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script(
            "return !window.blocksOldPage && document.readyState === 'complete'"))
