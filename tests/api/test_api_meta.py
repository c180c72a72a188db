"""Metadata routes through HTTP: meta-schemas, drafts, plan and publish."""

from __future__ import annotations

import copy
from typing import Any

from flask.testing import FlaskClient

from blockscrm.engine.definitions import meta_schema

from .conftest import assert_problem

META = "/api/v1/meta"
TICKET: dict[str, Any] = {
    "kind": "entity", "name": "ticket", "label": {"en": "Ticket"}, "required": ["subject"],
    "properties": {"subject": {"type": "string", "maxLength": 200},
                   "priority": {"type": "integer", "minimum": 1, "maximum": 5}}}


def publish(client: FlaskClient, **body: Any) -> Any:
    return client.post(f"{META}/publish", json=body)


def test_the_meta_schema_of_each_kind(client: FlaskClient) -> None:
    response = client.get(f"{META}/schemas/entity")
    assert response.status_code == 200
    assert response.get_json() == meta_schema("entity")
    assert_problem(client.get(f"{META}/schemas/spaceship"), 404)


def test_a_draft_is_created_read_replaced_and_listed(client: FlaskClient) -> None:
    created = client.post(f"{META}/entity", json=TICKET)
    assert created.status_code == 201
    assert created.headers["Location"] == f"{META}/entity/ticket"
    assert created.get_json() == TICKET
    read = client.get(created.headers["Location"])
    assert read.status_code == 200 and read.get_json() == TICKET
    changed = copy.deepcopy(read.get_json())
    changed["label"] = {"en": "Support ticket"}
    replaced = client.put(f"{META}/entity/ticket", json=changed)
    assert replaced.status_code == 200
    assert replaced.get_json()["label"] == {"en": "Support ticket"}
    listed = client.get(f"{META}/entity").get_json()
    assert [d["label"] for d in listed["items"]] == [{"en": "Support ticket"}]
    assert client.get(f"{META}/workflow").get_json() == {"items": []}


def test_the_kind_in_the_address_fills_the_document(client: FlaskClient) -> None:
    without_kind = {k: v for k, v in TICKET.items() if k != "kind"}
    assert client.post(f"{META}/entity", json=without_kind).get_json()["kind"] == "entity"
    other = client.post(f"{META}/role", json=TICKET)
    assert list(assert_problem(other, 422)["errors"]) == ["/kind"]


def test_an_existing_name_is_a_409(client: FlaskClient) -> None:
    assert client.post(f"{META}/entity", json=TICKET).status_code == 201
    assert_problem(client.post(f"{META}/entity", json=TICKET), 409)


def test_a_bad_definition_is_a_422_keyed_by_json_pointer(client: FlaskClient) -> None:
    bad = copy.deepcopy(TICKET)
    bad["properties"]["priority"]["x-field"] = "spaceship"
    errors = assert_problem(client.post(f"{META}/entity", json=bad), 422)["errors"]
    assert "/properties/priority/x-field" in errors
    assert list(assert_problem(client.post(f"{META}/entity", json=[]), 422)["errors"]) == ["/"]
    assert_problem(client.get(f"{META}/entity/ticket"), 404)


def test_put_refuses_a_name_other_than_the_address(client: FlaskClient) -> None:
    response = client.put(f"{META}/entity/other", json=TICKET)
    assert list(assert_problem(response, 422)["errors"]) == ["/name"]


def test_unknown_kinds_and_names_are_404(client: FlaskClient) -> None:
    assert_problem(client.get(f"{META}/spaceship"), 404)
    assert_problem(client.post(f"{META}/spaceship", json=TICKET), 404)
    assert_problem(client.get(f"{META}/entity/nothing"), 404)
    assert_problem(client.delete(f"{META}/entity/nothing"), 404)


def test_plan_then_publish_makes_the_records_route(client: FlaskClient) -> None:
    client.post(f"{META}/entity", json=TICKET)
    plan = client.get(f"{META}/plan")
    assert plan.status_code == 200
    assert plan.get_json()["definitions"] == [
        {"kind": "entity", "name": "ticket", "action": "create"}]
    assert_problem(client.get("/api/v1/records/ticket"), 404)
    published = publish(client)
    assert published.status_code == 200
    assert published.get_json()["steps"][0]["action"] == "create_entity"
    assert client.get(f"{META}/plan").get_json()["definitions"] == []
    created = client.post("/api/v1/records/ticket", json={"subject": "Printer on fire"})
    assert created.status_code == 201


def test_a_destructive_publish_needs_confirm(client: FlaskClient) -> None:
    client.post(f"{META}/entity", json=TICKET)
    publish(client)
    client.post("/api/v1/records/ticket", json={"subject": "Keep me", "priority": 2})
    smaller = copy.deepcopy(TICKET)
    del smaller["properties"]["priority"]
    client.put(f"{META}/entity/ticket", json=smaller)
    refused = assert_problem(publish(client), 409)
    assert refused["plan"]["destructive"] is True
    assert any(step.get("destructive") for step in refused["plan"]["steps"])
    assert "priority" in client.get("/api/v1/records/ticket").get_json()["items"][0]
    applied = publish(client, confirm=True)
    assert applied.status_code == 200 and applied.get_json()["destructive"] is True
    assert "priority" not in client.get("/api/v1/records/ticket").get_json()["items"][0]


def test_a_publish_waiting_for_a_decision_takes_it(client: FlaskClient) -> None:
    client.post(f"{META}/entity", json=TICKET)
    publish(client)
    client.post("/api/v1/records/ticket", json={"subject": "No priority"})
    stricter = copy.deepcopy(TICKET)
    stricter["required"] = ["subject", "priority"]
    client.put(f"{META}/entity/ticket", json=stricter)
    waiting = assert_problem(publish(client), 409)
    assert waiting["plan"]["ready"] is False
    applied = publish(client, decisions={"ticket.priority": {"fill": 3}})
    assert applied.status_code == 200
    assert client.get("/api/v1/records/ticket").get_json()["items"][0]["priority"] == 3


def test_a_malformed_publish_request_is_refused(client: FlaskClient) -> None:
    client.post(f"{META}/entity", json=TICKET)
    body = assert_problem(publish(client, confirm="yes", decisions=[], extra=1), 422)
    assert set(body["errors"]) == {"confirm", "decisions", "extra"}
    assert_problem(client.post(f"{META}/publish", data="[]",
                               content_type="application/json"), 422)
    assert client.get(f"{META}/plan").get_json()["definitions"]  # nothing was published


def test_deleting_a_draft_and_a_published_definition(client: FlaskClient) -> None:
    client.post(f"{META}/entity", json=TICKET)
    assert client.delete(f"{META}/entity/ticket").status_code == 204
    assert client.get(f"{META}/entity").get_json() == {"items": []}
    client.post(f"{META}/entity", json=TICKET)
    publish(client)
    assert client.delete(f"{META}/entity/ticket").status_code == 204
    assert client.get(f"{META}/plan").get_json()["definitions"] == [
        {"kind": "entity", "name": "ticket", "action": "delete"}]
    assert publish(client, confirm=True).status_code == 200
    assert_problem(client.get("/api/v1/records/ticket"), 404)


def test_two_designers_do_not_overwrite_each_other(client: FlaskClient) -> None:
    client.post(f"{META}/entity", json=TICKET)
    first = client.get(f"{META}/entity/ticket")
    second = client.get(f"{META}/entity/ticket")
    assert first.headers["ETag"] == second.headers["ETag"]
    mine = {**TICKET, "label": {"en": "Mine"}}
    saved = client.put(f"{META}/entity/ticket", json=mine,
                       headers={"If-Match": first.headers["ETag"]})
    assert saved.status_code == 200 and saved.headers["ETag"] != first.headers["ETag"]
    theirs = {**TICKET, "label": {"en": "Theirs"}}
    stale = client.put(f"{META}/entity/ticket", json=theirs,
                       headers={"If-Match": second.headers["ETag"]})
    problem = assert_problem(stale, 409)
    assert "changed since it was loaded" in problem["detail"]
    assert client.get(f"{META}/entity/ticket").get_json()["label"] == {"en": "Mine"}
    refused = client.delete(f"{META}/entity/ticket", headers={"If-Match": second.headers["ETag"]})
    assert_problem(refused, 409)
    assert_problem(client.put(f"{META}/entity/ticket", json=theirs,
                              headers={"If-Match": '"a", "b"'}), 400)
    # Without If-Match a save stays unconditional, as before.
    assert client.put(f"{META}/entity/ticket", json=theirs).status_code == 200


def test_versions_their_diff_restore_and_the_publish_history(client: FlaskClient) -> None:
    client.post(f"{META}/entity", json=TICKET)
    assert publish(client).status_code == 200
    client.put(f"{META}/entity/ticket", json={**TICKET, "label": {"en": "Case"}})
    assert publish(client).status_code == 200
    versions = client.get(f"{META}/entity/ticket/versions").get_json()["items"]
    assert [v["version"] for v in versions] == [1, 2] and versions[0]["published_by"]
    assert client.get(f"{META}/entity/ticket/versions/1").get_json()["label"] == {
        "en": "Ticket"}
    diff = client.get(f"{META}/entity/ticket/diff?from=1&to=2").get_json()["changes"]
    assert diff == [{"op": "replace", "path": "/label/en", "before": "Ticket",
                     "after": "Case"}]
    assert_problem(client.get(f"{META}/entity/ticket/diff?from=1&to=x"), 400)
    assert_problem(client.get(f"{META}/entity/ticket/versions/9"), 404)
    restored = client.post(f"{META}/entity/ticket/versions/1/restore")
    assert restored.status_code == 200 and restored.get_json()["label"] == {"en": "Ticket"}
    plan = client.get(f"{META}/plan").get_json()
    assert plan["definitions"] == [{"kind": "entity", "name": "ticket", "action": "update",
                                    "changes": [{"op": "replace", "path": "/label/en",
                                                 "before": "Case", "after": "Ticket"}]}]
    history = client.get(f"{META}/publishes").get_json()["items"]
    assert [[(d["name"], d["action"]) for d in h["definitions"]] for h in history] == [
        [("ticket", "update")], [("ticket", "create")]]
    assert history[0]["definitions"][0]["changes"][0]["after"] == "Case"


def test_a_definition_keeps_the_order_of_its_fields(client: FlaskClient) -> None:
    ordered = {**TICKET, "properties": {"zeta": {"type": "string"}, "subject": {
        "type": "string"}, "alpha": {"type": "integer"}}}
    created = client.post(f"{META}/entity", json=ordered)
    assert created.status_code == 201 and created.headers["ETag"]
    read = client.get(f"{META}/entity/ticket")
    assert list(read.get_json()["properties"]) == ["zeta", "subject", "alpha"]
    assert read.headers["ETag"] == created.headers["ETag"]


def test_a_drafts_problems_before_publishing(client: FlaskClient) -> None:
    """A draft that passes its meta-schema is saved; what publishing would refuse in it is
    asked separately, by pointer into it, without publishing."""
    ticket = {"kind": "entity", "name": "ticket", "label": {"en": "Ticket"},
              "properties": {"subject": {"type": "string"}}}
    assert client.post("/api/v1/meta/entity", json=ticket).status_code == 201
    view = {"kind": "view", "name": "tickets", "label": {"en": "Tickets"}, "entity": "ticket",
            "columns": ["subject", "colour"]}
    assert client.post("/api/v1/meta/view", json=view).status_code == 201
    problems = client.get("/api/v1/meta/view/tickets/problems").get_json()["errors"]
    assert list(problems) == ["/columns/1"]
    assert client.get("/api/v1/meta/entity/ticket/problems").get_json() == {"errors": {}}
    view["columns"] = ["subject"]
    client.put("/api/v1/meta/view/tickets", json=view)
    assert client.get("/api/v1/meta/view/tickets/problems").get_json() == {"errors": {}}
    assert client.get("/api/v1/meta/view/nothing/problems").status_code == 404
