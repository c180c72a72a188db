"""The ``blocks`` command line, run as a user runs it (click's runner, the real config)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from blockscrm.engine import Workspace
from blockscrm.platform.cli import main

REDIS_URL = os.environ.get("BLOCKS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def run(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", workspace.url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return CliRunner()


def test_init_and_user_create(run: CliRunner, workspace: Workspace) -> None:
    done = run.invoke(main, ["init"])
    assert done.exit_code == 0 and "Workspace ready" in done.output
    done = run.invoke(main, ["user", "create", "ann", "--password", "correct horse",
                             "--role", "admin", "--email", "ann@example.com"])
    assert done.exit_code == 0, done.output
    assert "Created user ann (admin)" in done.output
    assert workspace.accounts.authenticate("ann", "correct horse").is_admin
    again = run.invoke(main, ["user", "create", "ann", "--password", "correct horse"])
    assert again.exit_code == 1 and "exists" in again.output
    bad = run.invoke(main, ["user", "create", "bo", "--password", "short", "--role", "ghost"])
    assert bad.exit_code == 1
    assert "password: must be at least 8" in bad.output and "no role 'ghost'" in bad.output


def test_the_password_is_asked_for_when_not_given(run: CliRunner, workspace: Workspace) -> None:
    done = run.invoke(main, ["user", "create", "cy"], input="correct horse\ncorrect horse\n")
    assert done.exit_code == 0, done.output
    assert "correct horse" not in done.output.split("Created")[-1]
    assert workspace.accounts.authenticate("cy", "correct horse").username == "cy"


def test_the_worker_needs_redis_and_runs_with_it(run: CliRunner,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    without = run.invoke(main, ["worker"])
    assert without.exit_code == 1 and "REDIS_URL is not set" in without.output
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    burst = run.invoke(main, ["worker", "--burst", "--queue", "blocks-test"])
    assert burst.exit_code == 0, burst.output


def test_jobs_and_dry_runs_from_the_command_line(run: CliRunner, workspace: Workspace) -> None:
    workspace.metadata.create({"kind": "entity", "name": "ticket", "label": {"en": "T"},
                               "properties": {"amount": {"type": "number"}}})
    workspace.metadata.create({"kind": "automation", "name": "hook", "label": {"en": "H"},
                               "entity": "ticket", "trigger": {"on": "created"},
                               "condition": "amount > 1", "mode": "async",
                               "actions": [{"type": "webhook", "url": "http://127.0.0.1:9/x",
                                            "timeout": 1}]})
    workspace.plugins.enable("webhooks")  # the webhook action is the plugin's
    workspace.metadata.publish()
    workspace.records.create("ticket", {"amount": 5})
    listed = run.invoke(main, ["jobs", "list", "ticket", "--status", "queued"])
    assert listed.exit_code == 0 and "hook" in listed.output and "webhook" in listed.output
    run_id = int(listed.output.split()[0])
    refused = run.invoke(main, ["jobs", "rerun", str(run_id)])
    assert refused.exit_code == 1 and f"no failed run {run_id}" in refused.output
    preview = run.invoke(main, ["dry-run", "hook"])
    assert preview.exit_code == 0 and "1 records" in preview.output
