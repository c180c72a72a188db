"""The rule routes a condition builder uses: an entity's fields with their operators,
and a rule turned from text to tree and back, checked against the drafts."""

from __future__ import annotations

from flask.testing import FlaskClient

from .conftest import assert_problem

DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deal"},
        "properties": {
            "title": {"type": "string"},
            "amount": {"x-field": "currency"},
            "stage": {"type": "string", "enum": ["new", "won"], "x-field": "select"},
            "account": {"x-field": "reference", "x-ref": "account"}}}
ACCOUNT = {"kind": "entity", "name": "account", "label": {"en": "Account"},
           "properties": {"name": {"type": "string"}}}


def test_a_drafted_entitys_fields_and_operators(client: FlaskClient) -> None:
    for document in (ACCOUNT, DEAL):
        assert client.post(f"/api/v1/meta/{document['kind']}", json=document).status_code == 201
    answer = client.get("/api/v1/rules/deal").get_json()
    fields = {f["name"]: f for f in answer["fields"]}
    assert fields["amount"]["kind"] == "number"
    assert fields["stage"]["options"] == [["new", "new"], ["won", "won"]]
    assert (fields["account"]["target"], fields["account"]["title"]) == ("account", "name")
    assert "gt" in answer["operators"]["number"]
    assert_problem(client.get("/api/v1/rules/nothing"), 404)


def test_text_to_tree_and_back(client: FlaskClient) -> None:
    client.post("/api/v1/meta/entity", json=ACCOUNT)
    client.post("/api/v1/meta/entity", json=DEAL)
    text = client.post("/api/v1/rules/deal", json={"rule": 'amount > 10 and stage == "won"'})
    assert text.get_json() == {
        "tree": {"and": [{">": [{"var": "amount"}, 10]}, {"==": [{"var": "stage"}, "won"]}]},
        "text": 'amount > 10 and stage == "won"', "type": "boolean"}
    tree = client.post("/api/v1/rules/deal", json={"rule": {"in": [{"var": "account.name"},
                                                                    ["a", "b"]]}})
    assert tree.get_json()["text"] == 'account.name in ["a", "b"]'


def test_a_bad_rule_names_what_is_wrong(client: FlaskClient) -> None:
    client.post("/api/v1/meta/entity", json=ACCOUNT)
    client.post("/api/v1/meta/entity", json=DEAL)
    syntax = assert_problem(client.post("/api/v1/rules/deal", json={"rule": "amount >"}), 422)
    assert "line 1" in syntax["errors"]["/rule"][0]
    typed = assert_problem(client.post("/api/v1/rules/deal",
                                       json={"rule": 'amount > "x"'}), 422)
    assert list(typed["errors"]) == ["/rule"]
    unknown = assert_problem(client.post("/api/v1/rules/deal", json={"rule": "colour == 1"}),
                             422)
    assert "colour" in unknown["errors"]["/rule"][0]
    reads_a_write = {"rule": 'changed("amount")'}
    assert_problem(client.post("/api/v1/rules/deal", json=reads_a_write), 422)
    saving = client.post("/api/v1/rules/deal", json={**reads_a_write, "saving": True})
    assert saving.get_json()["type"] == "boolean"
    assert_problem(client.post("/api/v1/rules/deal", json={"rule": "1", "extra": 1}), 422)
    assert_problem(client.post("/api/v1/rules/deal", json={}), 422)


def test_rules_on_an_entity_as_its_editor_has_it(client: FlaskClient) -> None:
    """The entity editor builds validation rules on fields it has not saved yet."""
    client.post("/api/v1/meta/entity", json=ACCOUNT)
    unsaved = {**DEAL, "properties": {**DEAL["properties"], "discount": {"x-field": "percent"}}}
    fields = client.post("/api/v1/rules/deal/fields", json={"entity": unsaved}).get_json()
    assert "discount" in [f["name"] for f in fields["fields"]]
    answer = client.post("/api/v1/rules/deal", json={"rule": "discount <= 50",
                                                     "entity": unsaved})
    assert answer.get_json()["type"] == "boolean"
    assert_problem(client.post("/api/v1/rules/deal", json={"rule": "discount <= 50"}), 404)
    renamed = assert_problem(client.post("/api/v1/rules/deal", json={
        "rule": "discount <= 50", "entity": {**unsaved, "name": "other"}}), 422)
    assert "/entity/name" in renamed["errors"]
