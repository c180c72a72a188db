"""Workflow transitions over HTTP: the contract's statuses, the ETag, the OpenAPI paths."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from .conftest import assert_problem

DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deal"}, "required": ["title"],
        "properties": {"title": {"type": "string"}, "amount": {"type": "number"},
                       "close_date": {"type": "string", "format": "date"}}}
PIPELINE = {"kind": "workflow", "name": "pipeline", "label": {"en": "Pipeline"},
            "entity": "deal", "initial": "new",
            "states": [{"name": "new"}, {"name": "won", "category": "won"}],
            "transitions": [{"name": "win", "from": ["new"], "to": "won",
                             "guard": "amount > 0", "require": ["close_date"]}]}


@pytest.fixture
def deal(client: FlaskClient) -> str:
    for kind, document in (("entity", DEAL), ("workflow", PIPELINE)):
        assert client.post(f"/api/v1/meta/{kind}", json=document).status_code == 201
    assert client.post("/api/v1/meta/publish", json={}).status_code == 200
    created = client.post("/api/v1/records/deal", json={"title": "Acme"})
    assert created.get_json()["state"] == "new"
    record_id: str = created.get_json()["id"]
    return record_id


def test_taking_a_transition(client: FlaskClient, deal: str) -> None:
    base = f"/api/v1/records/deal/{deal}"
    listed = client.get(f"{base}/transitions").get_json()["items"]
    assert [(t["name"], t["missing"], t["guard_holds"]) for t in listed] == [
        ("win", ["close_date"], False)]
    missing = assert_problem(client.post(f"{base}/transitions/win"), 422)
    assert missing["errors"] == {"close_date": ["is required to win"]}
    guard = assert_problem(client.post(f"{base}/transitions/win",
                                       json={"values": {"close_date": "2025-01-02"}}), 422)
    assert "amount > 0" in guard["errors"][""][0]
    assert_problem(client.post(f"{base}/transitions/win", headers={"If-Match": '"7"'},
                               json={"values": {"close_date": "2025-01-02", "amount": 3}}),
                   409)
    done = client.post(f"{base}/transitions/win", headers={"If-Match": '"1"'},
                       json={"values": {"close_date": "2025-01-02", "amount": 3}})
    assert done.status_code == 200 and done.get_json()["state"] == "won"
    assert done.headers["ETag"] == '"2"'
    assert_problem(client.post(f"{base}/transitions/win"), 409)  # won is not new
    assert_problem(client.post(f"{base}/transitions/fly"), 404)
    assert_problem(client.post(f"{base}/transitions/win", json={"vals": {}}), 422)
    assert_problem(client.patch(base, json={"state": "new"}), 422)
    history = client.get(f"{base}/history").get_json()["items"]
    assert history[-1]["action"] == "transition" and history[-1]["transition"] == "win"


def test_the_openapi_document_describes_transitions(client: FlaskClient, deal: str) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    take = document["paths"]["/api/v1/records/deal/{id}/transitions/{transition}"]["post"]
    assert {p.get("name") for p in take["parameters"]} >= {"transition"}
    assert document["components"]["schemas"]["deal.record"]["properties"]["state"]["enum"] \
        == ["new", "won"]
