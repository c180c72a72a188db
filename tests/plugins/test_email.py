"""The email plugin against a real SMTP server (aiosmtpd on 127.0.0.1): a rule's email is
delivered with its headers, kept only while the plugin is off, a failed delivery fails the
run (retried) or rolls the save back naming the server, and the test-connection command
says what worked."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from click.testing import CliRunner

from blockscrm.engine import ActionFailed, DefinitionError, Workspace
from blockscrm.engine.store import utcnow
from blockscrm.platform.cli import main

TICKET = {"kind": "entity", "name": "ticket", "label": {"en": "Ticket"},
          "properties": {"subject": {"type": "string"},
                         "contact": {"type": "string", "format": "email"}}}
MAIL = {"type": "send_email", "to": ["{{ record.contact }}"],
        "subject": "About {{ record.subject }}", "body": "Hello, {{ record.subject }}."}


class Inbox:
    """An aiosmtpd handler that keeps what it receives, and logs in one account."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    @property
    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(e.original_content or b"", policy=policy.default)
                for e in self.envelopes]

    @staticmethod
    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        good = isinstance(auth_data, LoginPassword) and \
            (auth_data.login, auth_data.password) == (b"crm", b"s3cret")
        return AuthResult(success=good, handled=False)  # handled=False: answer 535


def free_port() -> int:
    """A port nothing listens on (once its probe socket is closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on 127.0.0.1 (plain, with AUTH allowed without TLS), and its
    port."""
    handler, port = Inbox(), free_port()
    server = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10,
                        authenticator=Inbox.authenticate, auth_require_tls=False)
    server.start()
    yield handler, port
    server.stop()


def settings(port: int, **more: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "from": "CRM <crm@example.com>",
            "starttls": False, "timeout": 5, **more}


def desk_with(ws: Workspace, mode: str) -> Workspace:
    ws.metadata.create(TICKET)
    ws.metadata.create({"kind": "automation", "name": "welcome", "label": {"en": "Welcome"},
                        "entity": "ticket", "trigger": {"on": "created"}, "mode": mode,
                        "actions": [MAIL]})
    ws.metadata.publish()
    return ws


def outbox(ws: Workspace) -> list[tuple[str, str]]:
    with ws.reading() as conn:
        return [tuple(row) for row in conn.execute(sa.text(
            "SELECT subject, status FROM blocks_outbox ORDER BY id"))]


def test_a_rules_email_is_sent_with_its_headers(workspace: Workspace,
                                                inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    desk = desk_with(workspace, "sync")
    desk.plugins.enable("email", settings(port, username="crm", password="s3cret"))
    desk.records.create("ticket", {"subject": "Renewal", "contact": "ann@example.com"})
    [envelope] = handler.envelopes
    assert (envelope.mail_from, envelope.rcpt_tos) == ("crm@example.com", ["ann@example.com"])
    [message] = handler.messages
    assert message["From"] == "CRM <crm@example.com>"
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "About Renewal"
    assert message.get_content().strip() == "Hello, Renewal."
    assert outbox(desk) == [("About Renewal", "sent")]


def test_a_disabled_plugin_sends_nothing_and_the_email_is_kept(
        workspace: Workspace, inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    desk = desk_with(workspace, "sync")
    desk.plugins.enable("email", settings(port))
    desk.plugins.disable("email")
    desk.records.create("ticket", {"subject": "Quiet", "contact": "ann@example.com"})
    assert handler.envelopes == []
    assert outbox(desk) == [("About Quiet", "kept")]


def test_a_refused_connection_fails_the_async_run_which_is_retried(
        workspace: Workspace, inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    desk = desk_with(workspace, "async")
    closed = free_port()
    desk.plugins.enable("email", settings(closed))
    ticket = desk.records.create("ticket", {"subject": "Later", "contact": "bo@example.com"})
    [run] = desk.automations.runs("ticket", ticket["id"])
    assert run["status"] == "queued" and run["attempts"] == 1
    assert f"could not send through 127.0.0.1:{closed}" in run["error"]
    assert "ConnectionRefusedError" in run["error"]
    assert outbox(desk) == [] and handler.envelopes == []

    desk.plugins.enable("email", settings(port))  # the server is back (here: fixed)
    desk.automations.tick(utcnow() + dt.timedelta(hours=1))
    [run] = desk.automations.runs("ticket", ticket["id"])
    assert run["status"] == "done" and run["attempts"] == 2
    assert [m["To"] for m in handler.messages] == ["bo@example.com"]
    assert outbox(desk) == [("About Later", "sent")]


def test_a_sync_rules_failed_delivery_rolls_the_save_back(workspace: Workspace) -> None:
    desk = desk_with(workspace, "sync")
    closed = free_port()
    desk.plugins.enable("email", settings(closed))
    with pytest.raises(ActionFailed) as failed:
        desk.records.create("ticket", {"subject": "Lost", "contact": "cy@example.com"})
    assert "rule 'welcome'" in str(failed.value)
    assert f"the email plugin could not send through 127.0.0.1:{closed}" in str(failed.value)
    assert desk.query("ticket").count().value == 0 and outbox(desk) == []


def test_settings_need_a_host_and_a_sender(workspace: Workspace) -> None:
    with pytest.raises(DefinitionError) as refused:
        workspace.plugins.enable("email", {"port": 70000, "from": "x@y\r\nBcc: z@w"})
    assert {"/", "/port", "/from"} <= set(refused.value.errors)
    assert "email" not in workspace.plugins.enabled()


@pytest.fixture
def cli(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", workspace.url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return CliRunner()


def test_the_test_connection_command_says_what_worked(
        cli: CliRunner, workspace: Workspace, inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    off = cli.invoke(main, ["email", "test-connection"])
    assert off.exit_code == 1 and "'email' is not enabled" in off.output

    workspace.plugins.enable("email", settings(port, username="crm", password="s3cret"))
    done = cli.invoke(main, ["email", "test-connection", "--to", "me@example.com"])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        f"ok: connected to 127.0.0.1:{port}", "ok: logged in as crm",
        "ok: sent a test message to me@example.com",
        f"The SMTP settings work (127.0.0.1:{port})."]
    assert [m["Subject"] for m in handler.messages] == ["Blocks CRM: test message"]


def test_the_test_connection_command_says_what_failed(
        cli: CliRunner, workspace: Workspace, inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    workspace.plugins.enable("email", settings(port, username="crm", password="wrong"))
    refused = cli.invoke(main, ["email", "test-connection"])
    assert refused.exit_code == 1
    assert f"ok: connected to 127.0.0.1:{port}" in refused.output
    assert f"failed with 127.0.0.1:{port}: SMTPAuthenticationError: 535" in refused.output

    closed = free_port()
    workspace.plugins.enable("email", settings(closed, starttls=True))
    down = cli.invoke(main, ["email", "test-connection"])
    assert down.exit_code == 1 and "ok:" not in down.output
    assert f"failed with 127.0.0.1:{closed}: ConnectionRefusedError" in down.output
    assert handler.envelopes == []
