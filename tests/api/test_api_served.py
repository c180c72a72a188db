"""The API as production runs it: gunicorn with two workers on the ``workspace`` database
(SQLite, then PostgreSQL), called over loopback.

Schemathesis fuzzes every operation of the live OpenAPI document (no 5xx, every answer
as documented), and the rest proves the web processes keep no state of their own: a
publish, a revoked token and a cursor made on one worker hold on the other.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from blockscrm.engine import Workspace

SECRET = "served-test-secret"
DOCUMENT = "/api/v1/openapi.json"
START_TIMEOUT = 30.0  # seconds for gunicorn to answer its first request
STOP_TIMEOUT = 10.0  # seconds between terminate and kill
LOG_TIMEOUT = 5.0  # seconds for an answered request to reach the access log
#: Every access-log line: the worker's pid, the X-Probe header, the status.
ACCESS_FORMAT = "%(p)s %({x-probe}i)s %(s)s"

ACCOUNT = {
    "kind": "entity", "name": "account", "label": {"en": "Account"}, "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 100},
        "tier": {"type": "string", "enum": ["gold", "silver"], "x-field": "select"},
        "revenue": {"type": "number", "minimum": 0, "x-field": "currency",
                    "x-currency": "EUR"},
        "founded": {"type": "string", "format": "date"},
        "active": {"type": "boolean"},
        "notes": {"x-field": "long_text"},
    },
}
DEAL = {
    "kind": "entity", "name": "deal", "label": {"en": "Deal"}, "required": ["title"],
    "properties": {
        "title": {"type": "string", "maxLength": 200},
        "amount": {"type": "number", "minimum": 0, "x-field": "currency", "x-currency": "EUR"},
        "probability": {"type": "integer", "minimum": 0, "maximum": 100},
        "stage": {"type": "string", "enum": ["new", "won", "lost"], "x-field": "select",
                  "default": "new"},
        "account": {"type": "string", "x-field": "reference", "x-ref": "account"},
        "close_date": {"type": "string", "format": "date"},
        "tags": {"x-field": "tags"},
        "notes": {"x-field": "long_text"},
        "signed": {"type": "boolean"},
    },
}
REP = {"kind": "role", "name": "rep", "label": {"en": "Rep"},
       "permissions": {"deal": {"create": True, "read": "own", "update": "own"},
                       "account": {"read": True}}}


# --- the server --------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    """A running gunicorn: its address, an admin's API token and its logs."""

    port: int
    token: str
    records: dict[str, str]  # entity: the id of a record of it
    fresh_token: Callable[[], str]  # another token of the admin's
    process: subprocess.Popen[bytes]
    error_log: Path
    access_log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             probe: str = "-") -> Answer:
        """One request on a new connection (sync workers close it after each answer),
        so successive calls are free to land on either worker."""
        headers = {"Authorization": f"Bearer {token or self.token}", "X-Probe": probe,
                   "Connection": "close"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()},
                            response.read())
        finally:
            conn.close()
        assert answer.status < 500, (method, path, answer, self.logs())
        return answer

    def logs(self) -> str:
        return self.error_log.read_text(errors="replace")[-4000:]

    def workers_of(self, probes: list[str]) -> dict[str, str]:
        """The pid of the worker that answered each probe, from the access log (which a
        worker writes just after answering, so it is read until every probe is in)."""
        deadline = time.monotonic() + LOG_TIMEOUT
        while True:
            found = {}
            for line in self.access_log.read_text().splitlines():
                pid, probe, _status = line.split(" ")
                found[probe] = pid
            if set(probes) <= set(found) or time.monotonic() > deadline:
                return {probe: found[probe] for probe in probes}
            time.sleep(0.02)


def assert_status(answer: Answer, status: int) -> None:
    assert answer.status == status, (answer.status, answer.body[:2000])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def prepare(workspace: Workspace) -> tuple[str, dict[str, str], Callable[[], str]]:
    """Publish ``account`` and ``deal`` and the ``rep`` role, add a record of each, and
    answer an admin's API token, the records' ids and a way to get more tokens."""
    for document in (ACCOUNT, DEAL, REP):
        workspace.metadata.create(document)
    workspace.metadata.publish()
    accounts = workspace.accounts
    admin = accounts.create_user("root", password="correct horse", roles=["admin"])
    accounts.create_user("ann", password="correct horse", roles=["rep"])
    acme = workspace.records.create("account", {
        "name": "Acme", "tier": "gold", "revenue": 1200.5, "founded": "1999-04-01",
        "active": True, "notes": "long\ntext"})
    deal = workspace.records.create("deal", {
        "title": "Renewal", "amount": 99.95, "probability": 40, "stage": "won",
        "account": acme["id"], "close_date": "2025-01-31", "tags": ["big", "q1"],
        "notes": "call back", "signed": False})
    return (accounts.issue_token(admin), {"account": acme["id"], "deal": deal["id"]},
            lambda: accounts.issue_token(admin))


def start(workspace: Workspace, tmp_path: Path) -> Server:
    """gunicorn with two sync workers on ``workspace``'s database, answering."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in {"REDIS_URL", "BLOCKS_INSTANCE_PATH", "GUNICORN_CMD_ARGS"}}
    environment.update(DATABASE_URL=workspace.url, BLOCKS_SECRET_KEY=SECRET)
    port = free_port()
    error_log, access_log = tmp_path / "gunicorn.log", tmp_path / "access.log"
    token, records, fresh_token = prepare(workspace)
    with error_log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
             "--access-logfile", str(access_log), "--access-logformat", ACCESS_FORMAT,
             "--graceful-timeout", "5", "blockscrm.platform.wsgi:app"],
            env=environment, stdout=output, stderr=subprocess.STDOUT,
            cwd=tmp_path)
    server = Server(port, token, records, fresh_token, process, error_log, access_log)
    try:
        wait_until_answering(server)
    except BaseException:
        stop(process)
        raise
    return server


def wait_until_answering(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while server.process.poll() is None:
        try:
            if server.call("GET", DOCUMENT).status == 200:
                return
        except OSError:  # not listening yet
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"gunicorn did not answer in {START_TIMEOUT} s:\n{server.logs()}")
        time.sleep(0.1)
    pytest.fail(f"gunicorn exited with {server.process.returncode}:\n{server.logs()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def server(workspace: Workspace, tmp_path: Path) -> Iterator[Server]:
    """The platform under gunicorn with two workers, stopped after the test."""
    running = start(workspace, tmp_path)
    try:
        yield running
    finally:
        stop(running.process)


# --- schemathesis: every operation, as documented -----------------------------------------

#: What a response must pass: no 5xx; a status, content type, headers and body as documented.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
EXAMPLES = 40  # cases per operation, valid and invalid mixed


def fuzz(operation: APIOperation, server: Server) -> None:
    """Call ``operation`` with cases the document allows and cases it refuses (drawn as
    schemathesis's own runner draws them), checking every answer; an operation on one
    record or definition also gets cases naming one that exists."""
    names = {p.name for p in operation.path_parameters}
    pinned: list[dict[str, str]] = [{}]
    if "id" in names:
        entity = operation.path.split("/")[4]
        pinned.append({"id": server.records[entity]})
    if "name" in names:
        pinned += [{"kind": "entity", "name": "account"}, {"kind": "role", "name": "rep"}]
    cases = strategies.one_of(*(operation.as_strategy(generation_mode=mode, path_parameters=p)
                                for mode in GenerationMode for p in pinned))
    # Revoking the token in use would leave every later case a mere 401: each revocation
    # gets a token of its own.
    revokes = operation.method.upper() == "DELETE" and operation.path.endswith("/current")

    @hypothesis.settings(max_examples=EXAMPLES, derandomize=True, database=None,
                         deadline=None, suppress_health_check=list(hypothesis.HealthCheck),
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
    @hypothesis.given(case=cases)
    def run(case: Case) -> None:
        own = {"Authorization": f"Bearer {server.fresh_token()}"} if revokes else None
        case.call_and_validate(base_url=server.base_url, headers=own, checks=CHECKS,
                               timeout=15)

    run()


def test_every_operation_answers_as_documented(server: Server,
                                               subtests: pytest.Subtests) -> None:
    """No input the document allows (or refuses) makes a 5xx or an undocumented answer."""
    schema = schemathesis.openapi.from_url(f"{server.base_url}{DOCUMENT}", timeout=15)
    schema.config.update(base_url=server.base_url,
                         headers={"Authorization": f"Bearer {server.token}"})
    operations = [result.ok() for result in schema.get_all_operations()]
    # Every documented operation but the document itself, which schemathesis leaves out.
    documented = {f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items()
                  for method in item if path != DOCUMENT}
    assert {operation.label for operation in operations} == documented
    assert {f"{method} /api/v1/records/{entity}{tail}" for entity in ("account", "deal")
            for method, tail in [("GET", ""), ("POST", ""), ("GET", "/{id}"),
                                 ("PATCH", "/{id}"), ("DELETE", "/{id}"),
                                 ("GET", "/{id}/history")]} <= documented
    assert {"GET /api/v1/meta/{kind}/{name}", "POST /api/v1/meta/publish"} <= documented
    for operation in operations:
        with subtests.test(msg=operation.label):
            try:
                fuzz(operation, server)
            except (Exception, FailureGroup) as exc:  # with the server's side: a traceback
                raise AssertionError(f"gunicorn's log ends with:\n{server.logs()}") from exc
            # Still the admin: the cases were answered as such, not all refused (401).
            assert_status(server.call("GET", "/api/v1/auth/me"), 200)
    assert server.process.poll() is None, server.logs()


# --- several workers, no state of their own ------------------------------------------------

CONCURRENCY = 8  # requests in flight at once, so both workers take some
PROBES = itertools.count()
ROUNDS = 20  # batches of requests tried before concluding one worker took them all


def spread(server: Server, calls: list[Callable[[str], Answer]]) -> list[tuple[Answer, str]]:
    """Make the calls concurrently, each on its own connection and tagged with its own
    probe; answer each answer with the pid of the worker that gave it."""
    tags = [f"p{next(PROBES)}" for _ in calls]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(lambda call, tag: call(tag), calls, tags))
    workers = server.workers_of(tags)
    return [(answer, workers[tag]) for answer, tag in zip(answers, tags, strict=True)]


def on_both_workers(server: Server, call: Callable[[str], Answer],
                    check: Callable[[Answer], None], count: int = 20) -> Counter[str]:
    """Make ``count`` calls (more batches until both workers answered some), check every
    answer, and count the answers by worker."""
    served: Counter[str] = Counter()
    for _ in range(ROUNDS):
        for answer, worker in spread(server, [call] * count):
            check(answer)
            served[worker] += 1
        if len(served) == 2:
            return served
    pytest.fail(f"one worker answered all {sum(served.values())} calls: {served}")


def test_a_publish_through_the_api_reaches_every_worker(server: Server) -> None:
    """Each worker caches the catalog and the OpenAPI document; a publish made on one
    must show on both at once, not when a cache happens to expire."""
    def document(tag: str) -> Answer:
        return server.call("GET", DOCUMENT, probe=tag)

    old_version = server.call("GET", DOCUMENT).json()["info"]["version"]

    def documents_no_ticket(answer: Answer) -> None:
        assert_status(answer, 200)
        assert answer.json()["info"]["version"] == old_version
        assert "/api/v1/records/ticket" not in answer.json()["paths"]

    on_both_workers(server, document, documents_no_ticket)  # each caches the old one
    on_both_workers(server, lambda tag: server.call("GET", "/api/v1/records/ticket",
                                                    probe=tag),
                    lambda answer: assert_status(answer, 404))
    drafted = server.call("POST", "/api/v1/meta/entity", {
        "name": "ticket", "label": {"en": "Ticket"}, "required": ["subject"],
        "properties": {"subject": {"type": "string"}, "due": {"type": "string",
                                                              "format": "date"}}})
    assert_status(drafted, 201)
    assert_status(server.call("POST", "/api/v1/meta/publish"), 200)
    created = server.call("POST", "/api/v1/records/ticket", {"subject": "Printer"})
    assert_status(created, 201)

    def sees_the_ticket(answer: Answer) -> None:
        assert_status(answer, 200)
        assert [item["subject"] for item in answer.json()["items"]] == ["Printer"]

    on_both_workers(server, lambda tag: server.call("GET", "/api/v1/records/ticket",
                                                    probe=tag), sees_the_ticket)

    def documents_the_ticket(answer: Answer) -> None:
        assert_status(answer, 200)
        document = answer.json()
        assert document["info"]["version"] != old_version
        assert "/api/v1/records/ticket/{id}" in document["paths"]
        assert "due" in document["components"]["schemas"]["ticket.record"]["properties"]

    on_both_workers(server, document, documents_the_ticket)


def test_a_revoked_token_is_refused_by_every_worker(server: Server) -> None:
    """Tokens are looked up on every request: one revoked on one worker is refused by
    both from the next request on, though both accepted it just before."""
    issued = server.call("POST", "/api/v1/auth/tokens",
                         {"username": "root", "password": "correct horse"})
    assert_status(issued, 201)
    token = issued.json()["token"]

    def me(tag: str) -> Answer:
        return server.call("GET", "/api/v1/auth/me", token=token, probe=tag)

    def accepted(answer: Answer) -> None:
        assert_status(answer, 200)
        assert answer.json()["username"] == "root"

    on_both_workers(server, me, accepted)
    assert_status(server.call("DELETE", "/api/v1/auth/tokens/current", token=token), 204)

    def refused(answer: Answer) -> None:
        assert_status(answer, 401)
        assert answer.headers["content-type"] == "application/problem+json"

    served = on_both_workers(server, me, refused)
    assert sum(served.values()) >= 20
    assert_status(server.call("GET", "/api/v1/auth/me"), 200)  # other tokens still work


def test_a_cursor_from_one_worker_pages_on_the_other(server: Server,
                                                     workspace: Workspace) -> None:
    """Cursors are signed with the shared secret and carry their position, so any worker
    takes any cursor: paging 121 records by 10, each page asked of two workers at once,
    gives every record exactly once."""
    rows = [{"name": f"Account {i:03}", "tier": [None, "gold", "silver"][i % 3],
             "revenue": i % 7} for i in range(120)]
    assert not workspace.records.bulk_insert("account", rows).errors

    def get(path: str, tag: str) -> Answer:
        return server.call("GET", path, probe=tag)

    query = "/api/v1/records/account?limit=10&sort=tier,-revenue&fields=name"
    for _ in range(ROUNDS):
        names, crossed, cursor = [], 0, None
        while True:
            path = query + (f"&cursor={quote(cursor)}" if cursor else "")
            pair = spread(server, [partial(get, path)] * 2)
            (first, _), (second, _) = pair
            assert_status(first, 200)
            assert first.json() == second.json()
            if cursor is not None:
                crossed += len({worker for _, worker in pair}) == 2
            page = first.json()
            names += [item["name"] for item in page["items"]]
            if page["next_cursor"] is None:
                break
            cursor = page["next_cursor"]
        assert sorted(names) == sorted(["Acme", *(row["name"] for row in rows)])
        if crossed:  # a cursor both workers took: one of them had not made it
            return
    pytest.fail("every page was answered by one worker only")
