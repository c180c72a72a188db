"""Record routes through HTTP: CRUD, versions, lists, history."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from blockscrm.engine import Workspace

from .conftest import assert_problem

DEALS = "/api/v1/records/deal"


@pytest.fixture
def api(sales: Workspace, client: FlaskClient) -> FlaskClient:
    """The client, on a workspace with ``account`` and ``deal`` published."""
    return client


def create(api: FlaskClient, **values: Any) -> dict[str, Any]:
    response = api.post(DEALS, json={"title": "Deal", **values})
    assert response.status_code == 201, response.get_json()
    record: dict[str, Any] = response.get_json()
    return record


def test_create_answers_201_with_location_and_etag(api: FlaskClient) -> None:
    response = api.post(DEALS, json={"title": "Acme renewal", "amount": 1200})
    assert response.status_code == 201
    record = response.get_json()
    assert record["title"] == "Acme renewal" and record["amount"] == 1200
    assert record["stage"] == "new" and record["version"] == 1
    assert response.headers["Location"] == f"{DEALS}/{record['id']}"
    assert response.headers["ETag"] == '"1"'
    again = api.get(response.headers["Location"])
    assert again.status_code == 200
    assert again.get_json() == record
    assert again.headers["ETag"] == '"1"'


def test_a_refused_create_lists_every_bad_field_and_writes_nothing(api: FlaskClient) -> None:
    response = api.post(DEALS, json={"amount": -1, "close_date": "tomorrow", "nope": 1,
                                     "account": "missing"})
    body = assert_problem(response, 422)
    assert set(body["errors"]) == {"title", "amount", "close_date", "nope", "account"}
    assert body["errors"]["amount"] == ["must be ≥ 0"]
    assert api.get(DEALS).get_json()["items"] == []


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "42"], ids=["list", "string", "number"])
def test_a_body_that_is_not_an_object_is_refused(api: FlaskClient, body: str) -> None:
    created = assert_problem(api.post(DEALS, data=body, content_type="application/json"), 422)
    assert created["errors"][""]
    record = create(api)
    patched = api.patch(f"{DEALS}/{record['id']}", data=body,
                        content_type="application/json")
    assert assert_problem(patched, 422)["errors"] == {"": ["must be a JSON object"]}


@pytest.mark.parametrize("body", ["{", "", "NaN", b"\xff"], ids=["broken", "empty", "nan",
                                                              "not-utf8"])
def test_a_body_that_is_not_json_is_a_400(api: FlaskClient, body: str | bytes) -> None:
    response = api.post(DEALS, data=body, content_type="application/json")
    assert assert_problem(response, 400)["errors"][""]


def test_read_update_and_delete(api: FlaskClient) -> None:
    record = create(api, amount=10, notes="first")
    url = f"{DEALS}/{record['id']}"
    patched = api.patch(url, json={"amount": 20, "notes": None})
    assert patched.status_code == 200
    assert patched.get_json()["amount"] == 20
    assert patched.get_json()["notes"] is None  # null clears a field
    assert patched.headers["ETag"] == '"2"'
    deleted = api.delete(url, headers={"If-Match": '"2"'})
    assert deleted.status_code == 204 and deleted.get_data() == b""
    assert_problem(api.get(url), 404)
    assert_problem(api.patch(url, json={"amount": 1}), 404)
    assert_problem(api.delete(url), 404)


def test_a_stale_if_match_is_a_409_and_changes_nothing(api: FlaskClient) -> None:
    record = create(api, amount=10)
    url = f"{DEALS}/{record['id']}"
    assert api.patch(url, json={"amount": 11}, headers={"If-Match": '"1"'}).status_code == 200
    stale = api.patch(url, json={"amount": 12}, headers={"If-Match": '"1"'})
    assert "version 2" in assert_problem(stale, 409)["detail"]
    assert_problem(api.delete(url, headers={"If-Match": '"1"'}), 409)
    current = api.get(url)
    assert current.get_json()["amount"] == 11
    assert current.headers["ETag"] == '"2"'
    history = api.get(f"{url}/history").get_json()["items"]
    assert [entry["action"] for entry in history] == ["create", "update"]


def test_if_match_star_writes_whatever_the_version(api: FlaskClient) -> None:
    record = create(api)
    response = api.patch(f"{DEALS}/{record['id']}", json={"amount": 3},
                         headers={"If-Match": "*"})
    assert response.status_code == 200 and response.get_json()["version"] == 2


@pytest.mark.parametrize("header", ['"abc"', 'W/"1"', '"1", "2"'],
                         ids=["not-a-version", "weak", "two"])
def test_a_malformed_if_match_is_a_400(api: FlaskClient, header: str) -> None:
    record = create(api)
    response = api.patch(f"{DEALS}/{record['id']}", json={"amount": 3},
                         headers={"If-Match": header})
    assert "If-Match" in assert_problem(response, 400)["errors"]
    assert api.get(f"{DEALS}/{record['id']}").get_json()["version"] == 1


def test_a_write_that_breaks_a_rule_is_a_422(api: FlaskClient) -> None:
    record = create(api, email="a@example.com")
    other = create(api)
    response = api.patch(f"{DEALS}/{other['id']}", json={"email": "a@example.com",
                                                        "state": "won"})
    errors = assert_problem(response, 422)["errors"]
    assert set(errors) == {"email", "state"}
    assert api.get(f"{DEALS}/{record['id']}").get_json()["version"] == 1


def test_deleting_a_referenced_record_is_a_409(api: FlaskClient) -> None:
    account = api.post("/api/v1/records/account", json={"name": "Acme"}).get_json()
    create(api, account=account["id"])
    assert_problem(api.delete(f"/api/v1/records/account/{account['id']}"), 409)
    assert api.get(f"/api/v1/records/account/{account['id']}").status_code == 200


def test_an_unknown_entity_is_a_404(api: FlaskClient) -> None:
    assert_problem(api.get("/api/v1/records/nothing"), 404)
    assert_problem(api.post("/api/v1/records/nothing", json={}), 404)
    assert_problem(api.get("/api/v1/records/nothing/1"), 404)


def test_history_lists_every_change_and_outlives_the_record(api: FlaskClient) -> None:
    record = create(api, amount=1)
    url = f"{DEALS}/{record['id']}"
    api.patch(url, json={"amount": 2})
    api.delete(url)
    response = api.get(f"{url}/history")
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [(e["action"], e["version"]) for e in items] == [
        ("create", 1), ("update", 2), ("delete", 2)]
    assert items[1]["changes"] == {"amount": {"before": 1, "after": 2}}
    assert_problem(api.get(f"{DEALS}/never-was/history"), 404)


# --- lists ----------------------------------------------------------------------------

def test_a_cursor_pages_through_the_whole_list(api: FlaskClient) -> None:
    made = {create(api, title=f"Deal {i}", amount=i)["id"] for i in range(7)}
    seen: list[dict[str, Any]] = []
    url = f"{DEALS}?sort=-amount&limit=3&count=true"
    pages = 0
    while url:
        body = api.get(url).get_json()
        assert body["count"] == 7
        assert len(body["items"]) <= 3
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        url = f"{DEALS}?sort=-amount&limit=3&count=true&cursor={cursor}" if cursor else ""
    assert pages == 3
    assert {r["id"] for r in seen} == made
    assert [r["amount"] for r in seen] == [6, 5, 4, 3, 2, 1, 0]


def test_a_list_without_count_has_none(api: FlaskClient) -> None:
    create(api)
    body = api.get(DEALS).get_json()
    assert set(body) == {"items", "next_cursor"}
    assert body["next_cursor"] is None


@pytest.mark.parametrize("condition", [
    "amount > 15 and stage == \"new\"",
    json.dumps({"and": [{">": [{"var": "amount"}, 15]}, {"==": [{"var": "stage"}, "new"]}]}),
    "  " + json.dumps({">": [{"var": "amount"}, 15]}),
], ids=["text", "tree", "tree-after-blanks"])
def test_filter_takes_text_or_a_json_tree(api: FlaskClient, condition: str) -> None:
    create(api, title="small", amount=10)
    create(api, title="big", amount=20)
    response = api.get(DEALS, query_string={"filter": condition, "count": "true"})
    assert response.status_code == 200
    body = response.get_json()
    assert [r["title"] for r in body["items"]] == ["big"] and body["count"] == 1


def test_filter_follows_a_reference(api: FlaskClient) -> None:
    paris = api.post("/api/v1/records/account", json={"name": "A", "city": "Paris"})
    create(api, title="in paris", account=paris.get_json()["id"])
    create(api, title="nowhere")
    body = api.get(DEALS, query_string={"filter": 'account.city == "Paris"'}).get_json()
    assert [r["title"] for r in body["items"]] == ["in paris"]


def test_fields_and_search(api: FlaskClient) -> None:
    create(api, title="Acme renewal", amount=5)
    create(api, title="Globex upsell", amount=6)
    body = api.get(DEALS, query_string={"q": "acme", "fields": "title"}).get_json()
    assert body["items"] == [{"id": body["items"][0]["id"], "version": 1,
                              "title": "Acme renewal"}]


@pytest.mark.parametrize(("query", "parameter"), [
    ({"limit": "x"}, "limit"),
    ({"limit": "0"}, "limit"),
    ({"limit": "1001"}, "limit"),
    ({"filter": "{not json"}, "filter"),
    ({"filter": "amount >"}, "filter"),
    ({"filter": 'amount == "text"'}, "filter"),
    ({"filter": "nope > 1"}, "filter"),
    ({"sort": "nope"}, "sort"),
    ({"fields": "title,nope"}, "fields"),
    ({"cursor": "forged.cursor"}, "cursor"),
    ({"count": "maybe"}, "count"),
], ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items()))
def test_a_malformed_query_parameter_is_a_400_naming_it(
        api: FlaskClient, query: dict[str, str], parameter: str) -> None:
    body = assert_problem(api.get(DEALS, query_string=query), 400)
    assert list(body["errors"]) == [parameter]


def test_a_cursor_of_another_query_is_a_400(api: FlaskClient) -> None:
    for i in range(3):
        create(api, amount=i)
    cursor = api.get(f"{DEALS}?sort=amount&limit=1").get_json()["next_cursor"]
    assert cursor
    response = api.get(DEALS, query_string={"sort": "-amount", "limit": 1, "cursor": cursor})
    assert list(assert_problem(response, 400)["errors"]) == ["cursor"]
