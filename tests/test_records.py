"""Records through the engine's API: validation, versions, audit trail, delete rules, bulk."""

from __future__ import annotations

import copy

import pytest
import sqlalchemy as sa

from blockscrm.engine import Conflict, NotFound, ValidationError, Workspace


def test_create_answers_the_stored_record_with_system_keys(sales: Workspace) -> None:
    account = sales.records.create("account", {"name": "Acme"}, actor="ann")
    deal = sales.records.create("deal", {
        "title": "Renewal", "amount": 1200.5, "account": account["id"],
        "close_date": "2025-03-31", "tags": ["vip"], "email": "buyer@acme.test"},
        actor="ann")
    assert deal["stage"] == "new"  # the field's default
    assert deal["version"] == 1
    assert deal["owner_id"] == deal["created_by"] == "ann"
    assert isinstance(deal["id"], str) and deal["created_at"].endswith("Z")
    assert sales.records.get("deal", deal["id"]) == deal


def test_every_bad_field_is_reported_at_once_and_nothing_is_written(sales: Workspace) -> None:
    sales.records.create("deal", {"title": "First", "email": "taken@acme.test"})
    with pytest.raises(ValidationError) as caught:
        sales.records.create("deal", {
            "title": "x" * 201, "amount": -1, "stage": "maybe", "account": "missing",
            "close_date": "31/03/2025", "email": "taken@acme.test", "probability": 1.5,
            "colour": "red"})
    assert caught.value.errors == {
        "title": ["must be at most 200 characters long"],
        "amount": ["must be ≥ 0"],
        "stage": ["must be one of: new, won, lost"],
        "close_date": ["must be a valid date"],
        "probability": ["must be of type integer"],
        "colour": ["is not a field of this entity"],
        "account": ["no account record with id 'missing'"],
        "email": ["must be unique; another record has it"],
    }
    assert sales.query("deal").count().value == 1


@pytest.mark.parametrize(("field", "value", "message"), [
    ("email", "not-an-email", "must be a valid email"),
    ("close_date", "2025-02-30", "must be a valid date"),
    ("title", None, "is required"),
    ("title", "", "is required"),
    ("tags", ["a", "a"], "must not repeat an item"),
], ids=["email", "date", "required-null", "required-blank", "unique-items"])
def test_formats_and_required_are_asserted(sales: Workspace, field: str, value: object,
                                           message: str) -> None:
    values = {"title": "Deal", field: value}
    with pytest.raises(ValidationError) as caught:
        sales.records.create("deal", values)
    assert caught.value.errors[field] == [message]


def test_update_checks_the_version_and_changes_nothing_when_stale(sales: Workspace) -> None:
    deal = sales.records.create("deal", {"title": "Deal", "amount": 10})
    updated = sales.records.update("deal", deal["id"], {"amount": 20}, version=1, actor="bo")
    assert (updated["amount"], updated["version"], updated["updated_by"]) == (20, 2, "bo")
    with pytest.raises(Conflict):
        sales.records.update("deal", deal["id"], {"amount": 30}, version=1)
    assert sales.records.get("deal", deal["id"])["amount"] == 20


def test_update_with_null_clears_a_field_and_a_bad_update_writes_nothing(
        sales: Workspace) -> None:
    deal = sales.records.create("deal", {"title": "Deal", "amount": 10, "notes": "hi"})
    cleared = sales.records.update("deal", deal["id"], {"notes": None})
    assert cleared["notes"] is None
    with pytest.raises(ValidationError) as caught:
        sales.records.update("deal", deal["id"], {"title": None, "amount": -5})
    assert set(caught.value.errors) == {"title", "amount"}
    assert sales.records.get("deal", deal["id"])["version"] == 2


def test_state_changes_only_through_a_transition(sales: Workspace) -> None:
    with pytest.raises(ValidationError) as caught:
        sales.records.create("deal", {"title": "Deal", "state": "won"})
    assert "state" in caught.value.errors


def test_every_write_lands_in_the_audit_trail(sales: Workspace) -> None:
    deal = sales.records.create("deal", {"title": "Deal", "amount": 10}, actor="ann")
    sales.records.update("deal", deal["id"], {"amount": 15}, actor="bo")
    sales.records.delete("deal", deal["id"], actor="cy")
    history = sales.records.history("deal", deal["id"])
    assert [(h["action"], h["actor"], h["version"]) for h in history] == [
        ("create", "ann", 1), ("update", "bo", 2), ("delete", "cy", 2)]
    assert history[0]["changes"] == {"title": {"before": None, "after": "Deal"},
                                     "amount": {"before": None, "after": 10},
                                     "stage": {"before": None, "after": "new"}}
    assert history[1]["changes"] == {"amount": {"before": 10, "after": 15}}
    assert history[2]["changes"]["title"] == {"before": "Deal", "after": None}
    assert history[2]["changes"]["amount"] == {"before": 15, "after": None}


def test_a_failed_write_leaves_no_audit_entry(sales: Workspace) -> None:
    deal = sales.records.create("deal", {"title": "Deal"})
    with pytest.raises(ValidationError):
        sales.records.update("deal", deal["id"], {"amount": -1})
    assert len(sales.records.history("deal", deal["id"])) == 1


def test_missing_records_and_entities_are_not_found(sales: Workspace) -> None:
    with pytest.raises(NotFound):
        sales.records.get("deal", "nope")
    with pytest.raises(NotFound):
        sales.records.create("invoice", {})
    with pytest.raises(NotFound):
        sales.records.delete("deal", "nope")


@pytest.fixture
def linked(sales: Workspace) -> Workspace:
    """``contact`` references ``account`` with one rule per field."""
    sales.metadata.create({
        "kind": "entity", "name": "contact", "label": {"en": "Contact"},
        "properties": {
            "name": {"type": "string"},
            "employer": {"x-field": "reference", "x-ref": "account",
                         "x-on-delete": "cascade"},
            "referrer": {"x-field": "reference", "x-ref": "account",
                         "x-on-delete": "set_null"},
        }})
    sales.metadata.publish()
    return sales


def test_delete_is_refused_while_a_restrict_reference_points_at_the_record(
        linked: Workspace) -> None:
    acme = linked.records.create("account", {"name": "Acme"})
    linked.records.create("deal", {"title": "Deal", "account": acme["id"]})
    with pytest.raises(Conflict, match="1 deal record"):
        linked.records.delete("account", acme["id"])
    assert linked.records.get("account", acme["id"])["name"] == "Acme"


def test_delete_cascades_and_sets_null_as_each_reference_says(linked: Workspace) -> None:
    acme = linked.records.create("account", {"name": "Acme"})
    other = linked.records.create("account", {"name": "Other"})
    staff = linked.records.create("contact", {"name": "Sam", "employer": acme["id"]})
    fan = linked.records.create("contact", {"name": "Fan", "employer": other["id"],
                                            "referrer": acme["id"]})
    linked.records.delete("account", acme["id"], actor="admin")
    with pytest.raises(NotFound):
        linked.records.get("contact", staff["id"])
    kept = linked.records.get("contact", fan["id"])
    assert (kept["referrer"], kept["version"]) == (None, 2)
    assert linked.records.history("contact", fan["id"])[-1]["changes"] == {
        "referrer": {"before": acme["id"], "after": None}}


def test_bulk_insert_keeps_good_rows_and_reports_each_bad_one(sales: Workspace) -> None:
    rows = [{"title": f"Deal {i}", "amount": i, "email": f"d{i}@x.test"} for i in range(25)]
    rows[3] = {"title": "Bad", "amount": -3}
    rows[11] = {"title": "Dup", "email": "d10@x.test"}
    rows[20] = {"amount": 5, "account": "ghost"}
    result = sales.records.bulk_insert("deal", rows, batch_size=10, actor="import")
    assert result.inserted == 22
    assert len(result.ids) == 22
    assert result.errors == {
        3: {"amount": ["must be ≥ 0"]},
        11: {"email": ["must be unique; another record has it"]},
        20: {"title": ["is required"], "account": ["no account record with id 'ghost'"]},
    }
    assert sales.query("deal").count().value == 22
    assert sales.records.history("deal", result.ids[0])[0]["actor"] == "import"


def test_the_database_refuses_what_a_race_would_let_through(sales: Workspace) -> None:
    """The unique index holds even if the engine's own check were skipped."""
    sales.records.create("deal", {"title": "A", "email": "same@x.test"})
    table = sales.entity("deal").table
    with pytest.raises(sa.exc.IntegrityError), sales.transaction() as conn:
        conn.execute(table.insert().values(id="forged", version=1, title="B",
                                           email="same@x.test", created_at=sa.func.now(),
                                           updated_at=sa.func.now()))


def test_two_workspaces_in_one_process_do_not_see_each_other(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import DEAL  # type: ignore[import-not-found]

    first = Workspace(f"sqlite:///{tmp_path / 'one.db'}")
    second = Workspace(f"sqlite:///{tmp_path / 'two.db'}")
    deal = copy.deepcopy(DEAL)
    del deal["properties"]["account"]
    first.metadata.create(deal)
    first.metadata.publish()
    first.records.create("deal", {"title": "Only here"})
    with pytest.raises(NotFound):
        second.query("deal")
    assert first.query("deal").count().value == 1
    first.close()
    second.close()
