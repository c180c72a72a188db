"""Jobs on a real Redis with real RQ workers (``blocks worker`` processes): each job runs
exactly once, and a job whose worker dies is run again.

The workers are started as a user starts them; their records and runs are read back
from the database, which is what says what happened.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from redis import Redis

from blockscrm.engine import Workspace
from blockscrm.engine.automations import LEASE
from blockscrm.engine.store import utcnow

from conftest import IN_CI, REDIS_URL

TICKET = {"kind": "entity", "name": "ticket", "label": {"en": "Ticket"},
          "properties": {"subject": {"type": "string"}, "score": {"type": "integer"}}}
COUNT = {"kind": "automation", "name": "count", "label": {"en": "Count"}, "entity": "ticket",
         "trigger": {"on": "created"}, "mode": "async",
         "actions": [{"type": "set_fields",
                      "values": {"score": {"formula": "if(score == null, 1, score + 1)"}}}]}


@pytest.fixture
def redis() -> Iterator[Redis]:
    connection = Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"Redis unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}")
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture
def queued(workspace: Workspace, redis: Redis) -> Iterator[Workspace]:
    """The workspace, opened a second time as a web process with Redis would open it."""
    ws = Workspace(workspace.url, secret="test-secret", redis_url=REDIS_URL)
    yield ws
    ws.close()


def worker(ws: Workspace, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": ws.url, "REDIS_URL": REDIS_URL,
           "BLOCKS_SECRET_KEY": "test-secret"}
    return subprocess.Popen([sys.executable, "-m", "blockscrm.platform.cli", "worker", *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def statuses(ws: Workspace) -> dict[str, int]:
    with ws.reading() as conn:
        return dict(conn.execute(sa.text("SELECT status, count(*) FROM blocks_runs "
                                         "GROUP BY status")).all())


def test_a_thousand_saves_make_a_thousand_jobs_each_run_once(queued: Workspace) -> None:
    queued.metadata.create(TICKET)
    queued.metadata.create(COUNT)
    queued.metadata.publish()
    result = queued.records.bulk_insert("ticket", ({"subject": f"t{i}"} for i in range(1000)),
                                        batch_size=250)
    assert result.inserted == 1000
    assert statuses(queued) == {"queued": 1000}
    workers = [worker(queued, "--burst") for _ in range(2)]
    for process in workers:
        _, errors = process.communicate(timeout=240)
        assert process.returncode == 0, errors.decode()[-2000:]
    assert statuses(queued) == {"done": 1000}
    with queued.reading() as conn:
        scores = dict(conn.execute(sa.text("SELECT score, count(*) FROM ent_ticket "
                                           "GROUP BY score")).all())
        attempts = set(conn.scalars(sa.text("SELECT attempts FROM blocks_runs")))
    assert scores == {1: 1000} and attempts == {1}  # each rule's job ran exactly once


class _Slow(BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).calls == 1:
            time.sleep(30)  # the worker is killed meanwhile
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_job_whose_worker_dies_runs_again(queued: Workspace) -> None:
    handler = type("Slow", (_Slow,), {"calls": 0, "release": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        queued.plugins.enable("webhooks")  # the webhook action is the plugin's
        queued.metadata.create(TICKET)
        queued.metadata.create({**COUNT, "name": "hook",
                                "actions": [{"type": "webhook", "url": url, "timeout": 60}]})
        queued.metadata.publish()
        queued.records.create("ticket", {"subject": "slow"})
        first = worker(queued)
        deadline = time.monotonic() + 60
        while handler.calls < 1:  # mid-job: its webhook call is in flight
            assert time.monotonic() < deadline, statuses(queued)
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        handler.release.set()
        assert statuses(queued) == {"running": 1}  # a dead worker leaves it running
        assert queued.automations.tick(utcnow() + LEASE + dt.timedelta(seconds=1)) == 1
        second = worker(queued, "--burst")
        _, errors = second.communicate(timeout=120)
        assert second.returncode == 0, errors.decode()[-2000:]
        assert statuses(queued) == {"done": 1}
        with queued.reading() as conn:
            assert conn.scalar(sa.text("SELECT attempts FROM blocks_runs")) == 2
        assert handler.calls == 2
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()
