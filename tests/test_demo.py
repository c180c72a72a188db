"""``blocks demo``: the core sales CRM with its sample data, set up from nothing and
served, as the README's first command leaves it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from blockscrm.engine import Workspace
from blockscrm.platform.cli import main

PASSWORD = "demo-password-1"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo set up once by the command, for the tests that only look at it."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    done = CliRunner().invoke(main, ["demo", "--no-serve", "--database", str(path)],
                              env={"BLOCKS_ADMIN_PASSWORD": PASSWORD, "REDIS_URL": ""})
    assert done.exit_code == 0, done.output
    assert "applying core-sales" in done.output and "sample records loaded" in done.output
    assert f"Password for each: {PASSWORD}" in done.output
    return path


def test_the_demo_has_the_blueprint_its_data_and_its_accounts(demo_db: Path) -> None:
    ws = Workspace(f"sqlite:///{demo_db}")
    try:
        assert ws.blueprints.installed()["core-sales"]["version"]
        counts = {name: ws.query(name).count(exact=True).value
                  for name in ("account", "contact", "lead", "opportunity", "activity",
                               "product", "quote")}
        assert sum(counts.values()) >= 300 and min(counts.values()) > 0, counts
        assert ws.accounts.authenticate("admin", PASSWORD).is_admin
        ann = ws.accounts.authenticate("ann", PASSWORD)
        assert ann.roles == {"sales_rep"} and "sales" in ann.teams
        assert ws.accounts.authenticate("mia", PASSWORD).roles == {"sales_manager"}
        # Every stage of the pipeline has deals, so the funnel is worth looking at.
        stages = {row["state"] for row in ws.query("opportunity").aggregate("state")}
        assert {"qualification", "needs_analysis", "proposal", "negotiation", "won",
                "lost"} <= stages
        # A rep sees her own deals only; the manager sees the team's.
        mine = ws.query("opportunity", user=ann).count(exact=True).value
        team = ws.query("opportunity", user=ws.accounts.user("mia")).count(exact=True).value
        assert 0 < mine < team
    finally:
        ws.close()


def test_running_the_demo_again_keeps_what_is_there(demo_db: Path) -> None:
    ws = Workspace(f"sqlite:///{demo_db}")
    before = ws.query("lead").count(exact=True).value
    ws.close()
    done = CliRunner().invoke(main, ["demo", "--no-serve", "--database", str(demo_db)],
                              env={"BLOCKS_ADMIN_PASSWORD": "", "REDIS_URL": ""})
    assert done.exit_code == 0, done.output
    assert "0 definitions changed" in done.output and "0 sample records loaded" in done.output
    generated = re.search(r"Password for each: (\S+)", done.output)
    assert generated and generated.group(1) != PASSWORD
    ws = Workspace(f"sqlite:///{demo_db}")
    try:
        assert ws.query("lead").count(exact=True).value == before
        assert ws.accounts.authenticate("admin", generated.group(1)).is_admin
        ws.accounts.set_password("admin", PASSWORD)
    finally:
        ws.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_demo_serves_the_screens(demo_db: Path) -> None:
    port = _free_port()
    env = {**os.environ, "BLOCKS_ADMIN_PASSWORD": PASSWORD}
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "blockscrm.platform.cli", "demo", "--port", str(port),
         "--database", str(demo_db)], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/login", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, \
                    server.stdout.read() if server.stdout else ""
                time.sleep(0.2)
        with httpx.Client(base_url=base, follow_redirects=True) as browser:
            form = browser.get("/login").text
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
            assert token
            home = browser.post("/login", data={"username": "mia", "password": PASSWORD,
                                                "csrf_token": token.group(1)})
            assert home.status_code == 200 and "/app/" in str(home.url)
            board = browser.get("/app/opportunity/kanban")
            assert board.status_code == 200 and "Negotiation" in board.text
            assert browser.get("/app/dashboards/sales_overview").status_code == 200
            # Owners show by name, on the dashboards and in the lists, never by id.
            team = browser.get("/app/dashboards/team_activity")
            assert team.status_code == 200 and "Ann" in team.text and "Bob" in team.text
            accounts = browser.get("/app/account")
            assert accounts.status_code == 200 and ">Ann<" in accounts.text
    finally:
        server.terminate()
        server.communicate(timeout=10)  # waits, and closes its output pipe
