"""The OpenAPI document: valid, generated from the published metadata, and true to the
responses the API gives."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from blockscrm.engine import Workspace

DOCUMENT = "/api/v1/openapi.json"


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A component schema with the document's components, so its $refs resolve."""
    return {**document["components"]["schemas"][name], "components": document["components"]}


def test_the_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    response = client.get(DOCUMENT)
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    validate(document)
    assert f"{DOCUMENT}" in document["paths"]
    assert "/api/v1/meta/{kind}/{name}" in document["paths"]


def test_the_document_changes_when_an_entity_is_published(
        client: FlaskClient, workspace: Workspace) -> None:
    before = client.get(DOCUMENT).get_json()
    assert not any(p.startswith("/api/v1/records/") for p in before["paths"])
    client.post("/api/v1/meta/entity", json={
        "name": "ticket", "label": {"en": "Ticket"},
        "properties": {"subject": {"type": "string"}}})
    assert client.get(DOCUMENT).get_json() == before  # a draft is not published
    assert client.post("/api/v1/meta/publish").status_code == 200
    after = client.get(DOCUMENT).get_json()
    validate(after)
    assert after["info"]["version"] != before["info"]["version"]
    assert {"/api/v1/records/ticket", "/api/v1/records/ticket/{id}",
            "/api/v1/records/ticket/{id}/history"} <= set(after["paths"])
    assert "subject" in after["components"]["schemas"]["ticket.record"]["properties"]


def test_every_route_answers_its_errors_as_problems(client: FlaskClient,
                                                    sales: Workspace) -> None:
    document = client.get(DOCUMENT).get_json()
    validate(document)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path == DOCUMENT:
                continue
            errors = {s: r for s, r in operation["responses"].items() if s.startswith("4")}
            assert "401" in errors or operation.get("security") == [], (method, path)
            assert all(r["$ref"].startswith("#/components/responses/")
                       for r in errors.values()), (method, path)
    problem = document["components"]["responses"]["Unprocessable"]
    assert "application/problem+json" in problem["content"]


def test_the_schemas_describe_what_the_api_answers_and_takes(
        client: FlaskClient, sales: Workspace) -> None:
    document = client.get(DOCUMENT).get_json()
    account = client.post("/api/v1/records/account", json={"name": "Acme"}).get_json()
    values = {"title": "Renewal", "amount": 12.5, "account": account["id"],
              "close_date": "2025-01-31", "email": "a@example.com", "tags": ["x"]}
    Draft202012Validator(_schema(document, "deal.create")).validate(values)
    record = client.post("/api/v1/records/deal", json=values).get_json()
    Draft202012Validator(_schema(document, "deal.record")).validate(record)
    Draft202012Validator(_schema(document, "deal.patch")).validate({"amount": None})
    create = Draft202012Validator(_schema(document, "deal.create"))
    assert not create.is_valid({"amount": 1})  # title is required
    assert not create.is_valid({"title": "x", "version": 3})  # system keys are not input


def test_the_document_is_built_once_per_published_version(client: FlaskClient) -> None:
    client.get(DOCUMENT)
    version, first = client.application.extensions["blocks.openapi"]
    client.get(DOCUMENT)
    assert client.application.extensions["blocks.openapi"][1] is first
    assert version == client.application.extensions["blocks"].catalog().version
