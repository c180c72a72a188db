"""The webhooks plugin: the ``webhook`` action calls a real HTTP server on 127.0.0.1,
signed; incoming calls over HTTP fire the rules of their hook when signed, fresh and new,
their actions' templates reading what the call sent (``payload``), and are refused (as
problem details saying why) when replayed, badly signed or stale."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from blockscrm.engine import ActionFailed, Conflict, DefinitionError, Workspace
from blockscrm.platform.app import create_app
from blockscrm.plugins.webhooks.deliveries import deliveries, ensure_table, take

from conftest import Receiver

TICKET = {"kind": "entity", "name": "ticket", "label": {"en": "Ticket"},
          "properties": {"subject": {"type": "string"}, "status": {"type": "string"},
                         "flag": {"type": "string"}}}
SECRET = "billing-secret-0123456789"
URL = "/api/v1/plugins/webhooks/incoming/billing"


def rule(name: str, trigger: dict[str, Any], actions: list[dict[str, Any]],
         mode: str = "sync") -> dict[str, Any]:
    return {"kind": "automation", "name": name, "label": {"en": name}, "entity": "ticket",
            "trigger": trigger, "mode": mode, "actions": actions}


@pytest.fixture
def desk(workspace: Workspace) -> Workspace:
    workspace.metadata.create(TICKET)
    workspace.metadata.publish()
    return workspace


# --- outgoing: the webhook action ---------------------------------------------------------


def test_the_webhook_action_posts_the_record_signed(
        desk: Workspace, receiver: tuple[str, type[Receiver]]) -> None:
    url, handler = receiver
    desk.plugins.enable("webhooks")
    desk.metadata.create(rule("own", {"on": "created"},
                              [{"type": "webhook", "url": url, "secret": "s3cret",
                                "timeout": 5}]))
    desk.metadata.create(rule("derived", {"on": "updated"},
                              [{"type": "webhook", "url": url, "timeout": 5}]))
    desk.metadata.publish()
    ticket = desk.records.create("ticket", {"subject": "Signed"})
    desk.records.update("ticket", ticket["id"], {"subject": "Again"})
    [(created, body), (updated, again)] = handler.calls
    assert created["Content-Type"] == "application/json"
    assert created["X-Blocks-Signature"] == "sha256=" + hmac.new(
        b"s3cret", body, hashlib.sha256).hexdigest()
    sent = json.loads(body)
    assert (sent["automation"], sent["entity"], sent["trigger"]) == ("own", "ticket",
                                                                      "created")
    assert sent["record"]["id"] == ticket["id"]
    # Without a secret of its own: a key derived from the workspace's, not that key.
    derived = hmac.new(desk.secret, b"blocks-webhooks", hashlib.sha256).hexdigest()
    assert updated["X-Blocks-Signature"] == "sha256=" + hmac.new(
        derived.encode(), again, hashlib.sha256).hexdigest()
    assert json.loads(again)["previous"]["subject"] == "Signed"


def test_a_failing_webhook_rolls_a_sync_rules_save_back(
        desk: Workspace, receiver: tuple[str, type[Receiver]]) -> None:
    url, handler = receiver
    handler.status = 503
    desk.plugins.enable("webhooks")
    desk.metadata.create(rule("hook", {"on": "created"},
                              [{"type": "webhook", "url": url, "timeout": 5}]))
    desk.metadata.publish()
    with pytest.raises(ActionFailed, match=f"webhook {url} answered 503"):
        desk.records.create("ticket", {"subject": "Lost"})
    assert desk.query("ticket").count().value == 0


def test_the_webhook_action_comes_with_the_plugin(desk: Workspace) -> None:
    assert "webhook" not in desk.actions
    desk.metadata.create(rule("hook", {"on": "created"},
                              [{"type": "webhook", "url": "http://127.0.0.1:9/"}]))
    with pytest.raises(DefinitionError, match="unknown action 'webhook'"):
        desk.metadata.publish()
    desk.plugins.enable("webhooks")
    desk.metadata.publish()


# --- incoming: the webhook trigger over HTTP ----------------------------------------------


@pytest.fixture
def app(desk: Workspace) -> Iterator[Flask]:
    app = create_app({"DATABASE_URL": desk.url, "SECRET_KEY": "test-secret",
                      "TESTING": True})
    yield app
    app.extensions["blocks"].close()


@pytest.fixture
def billing(desk: Workspace, app: Flask) -> tuple[FlaskClient, str]:
    """The plugin on with the hook ``billing``; a rule on it marks the ticket paid, one on
    another hook flags it. Answers an HTTP client (no login: the call is signed) and a
    ticket's id."""
    desk.plugins.enable("webhooks", {"incoming": {"billing": {"secret": SECRET},
                                                  "support": {"secret": "x" * 16}}})
    desk.metadata.create(rule("paid", {"on": "webhook", "hook": "billing"},
                              [{"type": "set_fields", "values": {"status": "paid"}}]))
    desk.metadata.create(rule("flagged", {"on": "webhook", "hook": "support"},
                              [{"type": "set_fields", "values": {"flag": "support"}}]))
    desk.metadata.publish()
    return app.test_client(), desk.records.create("ticket", {"subject": "Invoice"})["id"]


def call(client: FlaskClient, document: Any, *, secret: str = SECRET,
         timestamp: int | None = None, delivery: str | None = None, url: str = URL,
         body: bytes | None = None, headers: dict[str, str] | None = None) -> TestResponse:
    """POST ``document`` signed as a sender does: HMAC-SHA256 of
    ``<timestamp>.<delivery>.<body>``; ``body`` sends other bytes under that signature."""
    signed_body = json.dumps(document).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    delivery = delivery or uuid.uuid4().hex
    digest = hmac.new(secret.encode(), f"{stamp}.{delivery}.".encode() + signed_body,
                      hashlib.sha256).hexdigest()
    sent = {"Content-Type": "application/json", "X-Blocks-Timestamp": stamp,
            "X-Blocks-Delivery": delivery, "X-Blocks-Signature": f"sha256={digest}",
            **(headers or {})}
    return client.post(url, data=signed_body if body is None else body, headers=sent)


def refused(response: TestResponse, status: int) -> str:
    """Check a refusal is problem details with ``status``; answer why it says."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json(force=True)
    assert problem["status"] == status
    return str(problem["detail"])


def test_a_signed_call_fires_the_rules_of_its_hook(billing: tuple[FlaskClient, str],
                                                   desk: Workspace) -> None:
    client, ticket = billing
    answer = call(client, {"entity": "ticket", "id": ticket, "data": {"invoice": 7}},
                  delivery="evt-1")
    assert answer.status_code == 202, answer.get_data(as_text=True)
    body = answer.get_json()
    assert (body["hook"], body["delivery"], body["entity"], body["id"]) == (
        "billing", "evt-1", "ticket", ticket)
    assert [(r["automation"], r["status"]) for r in body["runs"]] == [("paid", "done")]
    record = desk.records.get("ticket", ticket)
    assert (record["status"], record["flag"]) == ("paid", None)  # not the other hook's rule


def test_the_rules_templates_read_what_the_call_sent_as_payload(
        billing: tuple[FlaskClient, str], desk: Workspace) -> None:
    client, ticket = billing
    mia = desk.accounts.create_user("mia")
    desk.metadata.create(rule("told", {"on": "webhook", "hook": "billing"}, [
        {"type": "notify", "user": "mia",
         "title": "Invoice {{ payload.data.invoice }} of {{ record.subject }} paid",
         "body": "{{ payload.hook }} call {{ payload.delivery }}"}]))
    desk.metadata.publish()
    answer = call(client, {"entity": "ticket", "id": ticket, "data": {"invoice": 7}},
                  delivery="evt-9")
    assert answer.status_code == 202, answer.get_data(as_text=True)
    told = [(n["title"], n["body"]) for n in desk.accounts.notifications(mia)["items"]]
    assert told == [("Invoice 7 of Invoice paid", "billing call evt-9")]


def test_a_replayed_call_is_refused(billing: tuple[FlaskClient, str],
                                    desk: Workspace) -> None:
    client, ticket = billing
    document = {"entity": "ticket", "id": ticket}
    stamp = int(time.time())
    assert call(client, document, timestamp=stamp, delivery="evt-1").status_code == 202
    desk.records.update("ticket", ticket, {"status": "open"})
    why = refused(call(client, document, timestamp=stamp, delivery="evt-1"), 409)
    assert "'evt-1'" in why and "received before" in why
    # the same id signed anew is still the same delivery
    refused(call(client, document, timestamp=stamp + 1, delivery="evt-1"), 409)
    assert desk.records.get("ticket", ticket)["status"] == "open"


def test_a_badly_signed_call_is_refused(billing: tuple[FlaskClient, str],
                                        desk: Workspace) -> None:
    client, ticket = billing
    document = {"entity": "ticket", "id": ticket}
    assert "signature does not match" in refused(
        call(client, document, secret="not-the-billing-secret"), 401)
    other = json.dumps({"entity": "ticket", "id": ticket, "data": {"x": 1}}).encode()
    assert "signature does not match" in refused(call(client, document, body=other), 401)
    unsigned = client.post(URL, json=document, headers={"X-Blocks-Timestamp": "1"})
    assert "X-Blocks-Delivery, X-Blocks-Signature missing" in refused(unsigned, 401)
    # it says how to authenticate here: by signing, not with an API token
    assert unsigned.headers["WWW-Authenticate"].startswith("Blocks-Signature ")
    stamp = int(time.time())
    moved = call(client, document, timestamp=stamp,
                 headers={"X-Blocks-Timestamp": str(stamp + 5)})  # the signed one was stamp
    assert "signature does not match" in refused(moved, 401)
    assert desk.records.get("ticket", ticket)["status"] is None


def test_a_stale_call_is_refused(billing: tuple[FlaskClient, str], desk: Workspace) -> None:
    client, ticket = billing
    document = {"entity": "ticket", "id": ticket}
    old = refused(call(client, document, timestamp=int(time.time()) - 301), 401)
    assert "s old; at most 300 s is accepted" in old
    ahead = refused(call(client, document, timestamp=int(time.time()) + 3600), 401)
    assert "in the future" in ahead
    assert "Unix time" in refused(call(client, document, headers={
        "X-Blocks-Timestamp": "yesterday"}), 401)
    assert desk.records.get("ticket", ticket)["status"] is None


def test_a_call_that_fails_can_be_sent_again(billing: tuple[FlaskClient, str]) -> None:
    """A call refused for what it names (its delivery is not taken) may be retried."""
    client, ticket = billing
    refused(call(client, {"entity": "ticket", "id": "nope"}, delivery="evt-9"), 404)
    assert "body" in call(client, [1], delivery="evt-9").get_json()["errors"]
    missing = call(client, {"entity": "ticket"}, delivery="evt-9")
    assert refused(missing, 422) and missing.get_json()["errors"]["id"]
    assert call(client, {"entity": "ticket", "id": ticket},
                delivery="evt-9").status_code == 202
    refused(call(client, {"entity": "ticket", "id": ticket, "data": {"x": "y" * (1 << 20)}}),
            413)
    assert "no incoming webhook named 'nobody'" in refused(
        call(client, {"entity": "ticket", "id": ticket},
             url="/api/v1/plugins/webhooks/incoming/nobody"), 404)


def test_a_disabled_plugin_answers_404(desk: Workspace, app: Flask) -> None:
    client = app.test_client()
    ticket = desk.records.create("ticket", {"subject": "x"})["id"]
    refused(call(client, {"entity": "ticket", "id": ticket}), 404)
    desk.plugins.enable("webhooks", {"incoming": {"billing": {"secret": SECRET}}})
    assert call(client, {"entity": "ticket", "id": ticket}).status_code == 202
    desk.plugins.disable("webhooks")
    assert "not enabled" in refused(call(client, {"entity": "ticket", "id": ticket}), 404)


def test_deliveries_are_remembered_as_long_as_their_timestamp_is_accepted(
        desk: Workspace) -> None:
    ensure_table(desk)
    tolerance = dt.timedelta(minutes=5)
    sent = dt.datetime(2030, 1, 1, 12, 0)
    with desk.transaction() as conn:
        take(conn, "billing", "evt-1", sent, sent, tolerance)
    with pytest.raises(Conflict), desk.transaction() as conn:
        take(conn, "billing", "evt-1", sent, sent + tolerance, tolerance)
    later = sent + tolerance + dt.timedelta(seconds=1)  # a call stamped `sent` is stale now
    with desk.transaction() as conn:
        take(conn, "billing", "evt-2", later, later, tolerance)
    with desk.reading() as conn:
        assert list(conn.execute(deliveries.select().with_only_columns(
            deliveries.c.delivery))) == [("evt-2",)]
