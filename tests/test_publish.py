"""Draft → plan → publish: every schema change, its effect on rows, versions and restore."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import sqlalchemy as sa

from blockscrm.engine import Conflict, DefinitionError, NotFound, Workspace
from blockscrm.engine.store import ArchivedValue

from conftest import ACCOUNT, DEAL


def _columns(ws: Workspace, table: str) -> dict[str, str]:
    inspector = sa.inspect(ws.engine)
    return {c["name"]: str(c["type"]) for c in inspector.get_columns(table)}


def _indexes(ws: Workspace, table: str) -> dict[tuple[str, ...], bool]:
    """Each index's columns, and whether it is unique."""
    return {tuple(i["column_names"]): bool(i["unique"])
            for i in sa.inspect(ws.engine).get_indexes(table) if None not in i["column_names"]}


def _edit(ws: Workspace, name: str, change: Any) -> None:
    document = copy.deepcopy(ws.metadata.get("entity", name))
    change(document)
    ws.metadata.replace("entity", name, document)


def test_publish_creates_real_tables_with_system_columns_and_indexes(
        sales: Workspace) -> None:
    columns = _columns(sales, "ent_deal")
    assert {"id", "version", "owner_id", "created_at", "created_by", "updated_at",
            "updated_by", "title", "amount", "close_date", "tags"} <= set(columns)
    assert "DATE" in columns["close_date"]
    indexes = _indexes(sales, "ent_deal")
    assert indexes[("email",)] is True
    assert indexes[("account", "id")] is False  # references are indexed
    assert _indexes(sales, "ent_account")[("city", "id")] is False  # x-index
    assert sales.metadata.get("entity", "deal")["version"] == 1


def test_a_plan_with_nothing_to_do_says_so(sales: Workspace) -> None:
    assert str(sales.metadata.plan()) == "No changes."
    sales.metadata.replace("entity", "deal", sales.metadata.get("entity", "deal"))
    assert str(sales.metadata.plan()) == "No changes."


def test_a_definition_read_is_the_callers_to_change(sales: Workspace) -> None:
    sales.metadata.get("entity", "deal")["properties"].clear()
    sales.metadata.list("entity")[0]["properties"].clear()
    assert str(sales.metadata.plan()) == "No changes."
    assert "title" in sales.metadata.get("entity", "deal")["properties"]


def test_drafts_do_not_touch_the_live_metadata_until_published(sales: Workspace) -> None:
    _edit(sales, "deal", lambda d: d["properties"].update(region={"type": "string"}))
    assert "region" not in sales.entity("deal").fields
    assert "region" in sales.metadata.get("entity", "deal")["properties"]
    plan = sales.metadata.plan()
    assert [s.action for s in plan.steps] == ["add_field"]
    assert any("ADD COLUMN region" in sql for sql in plan.steps[0].ddl)
    sales.metadata.publish()
    assert "region" in sales.entity("deal").fields
    assert sales.metadata.get("entity", "deal")["version"] == 2


def test_add_a_field_with_a_default_fills_existing_rows(sales: Workspace) -> None:
    deal = sales.records.create("deal", {"title": "Old"})
    _edit(sales, "deal", lambda d: d["properties"].update(
        priority={"type": "string", "enum": ["low", "high"], "default": "low"}))
    plan = sales.metadata.plan()
    assert "1 rows get the default 'low'" in plan.steps[0].summary
    sales.metadata.publish()
    assert sales.records.get("deal", deal["id"])["priority"] == "low"


def test_a_new_required_field_needs_a_fill_value_for_existing_rows(sales: Workspace) -> None:
    deal = sales.records.create("deal", {"title": "Old"})

    def add_region(d: dict[str, Any]) -> None:
        d["properties"]["region"] = {"type": "string", "maxLength": 10}
        d["required"].append("region")

    _edit(sales, "deal", add_region)
    plan = sales.metadata.plan()
    assert plan.steps[0].needs == "fill" and plan.steps[0].bad_rows == 1
    with pytest.raises(Conflict) as refused:
        sales.metadata.publish()
    assert refused.value.plan.waiting
    assert "region" not in sales.entity("deal").fields
    with pytest.raises(Conflict, match="does not fit"):
        sales.metadata.publish(decisions={"deal.region": {"fill": "far too long a value"}})
    sales.metadata.publish(decisions={"deal.region": {"fill": "EMEA"}})
    assert sales.records.get("deal", deal["id"])["region"] == "EMEA"


def test_rename_a_field_keeps_its_data(sales: Workspace) -> None:
    deal = sales.records.create("deal", {"title": "Keep me", "close_date": "2025-01-02"})

    def rename(d: dict[str, Any]) -> None:
        d["properties"]["expected_close"] = {**d["properties"].pop("close_date"),
                                             "x-renamed-from": "close_date"}

    _edit(sales, "deal", rename)
    plan = sales.metadata.plan()
    assert [s.action for s in plan.steps] == ["rename_field"]
    assert not plan.destructive
    sales.metadata.publish()
    record = sales.records.get("deal", deal["id"])
    assert record["expected_close"] == "2025-01-02" and "close_date" not in record
    assert "x-renamed-from" not in sales.metadata.get("entity", "deal")["properties"][
        "expected_close"]


def test_change_type_counts_rows_that_do_not_convert_and_needs_a_decision(
        sales: Workspace) -> None:
    sales.metadata.create({"kind": "entity", "name": "ticket", "label": {"en": "Ticket"},
                           "properties": {"code": {"type": "string"}}})
    sales.metadata.publish()
    good = sales.records.create("ticket", {"code": "42"})
    bad = sales.records.create("ticket", {"code": "forty-two"})
    _edit(sales, "ticket", lambda d: d["properties"].update(code={"type": "integer"}))
    step = sales.metadata.plan().steps[0]
    assert (step.action, step.bad_rows, step.needs) == ("change_field", 1, "fill")
    assert "1 rows have values that do not fit" in step.summary
    with pytest.raises(Conflict):
        sales.metadata.publish()
    assert sales.records.get("ticket", bad["id"])["code"] == "forty-two"
    sales.metadata.publish(decisions={"ticket.code": {"fill": None}})
    assert sales.records.get("ticket", good["id"])["code"] == 42
    assert sales.records.get("ticket", bad["id"])["code"] is None
    assert "INT" in _columns(sales, "ent_ticket")["code"].upper()


def test_tightening_a_rule_counts_the_rows_it_would_break(sales: Workspace) -> None:
    sales.records.create("deal", {"title": "Small", "amount": 5})
    sales.records.create("deal", {"title": "Big", "amount": 500})
    _edit(sales, "deal", lambda d: d["properties"]["amount"].update(maximum=100))
    step = sales.metadata.plan().steps[0]
    assert step.bad_rows == 1
    sales.metadata.publish(decisions={"deal.amount": {"fill": 100}})
    assert sorted(r["amount"] for r in sales.query("deal").page().items) == [5, 100]


def test_drop_a_field_archives_its_values_and_needs_confirmation(sales: Workspace) -> None:
    deal = sales.records.create("deal", {"title": "Deal", "notes": "remember me"})
    _edit(sales, "deal", lambda d: d["properties"].pop("notes"))
    plan = sales.metadata.plan()
    assert plan.destructive and plan.steps[0].rows == 1
    with pytest.raises(Conflict, match="confirm"):
        sales.metadata.publish()
    assert "notes" in sales.entity("deal").fields
    sales.metadata.publish(confirm=True)
    assert "notes" not in _columns(sales, "ent_deal")
    with sales.reading() as conn:
        archived = conn.execute(sa.select(ArchivedValue.record_id, ArchivedValue.value)
                                .where(ArchivedValue.field == "notes")).all()
    assert archived == [(deal["id"], "remember me")]


def test_add_unique_is_blocked_while_rows_share_a_value(sales: Workspace) -> None:
    for _ in range(2):
        sales.records.create("deal", {"title": "Twin"})
    _edit(sales, "deal", lambda d: d["properties"]["title"].update({"x-unique": True}))
    step = sales.metadata.plan().steps[-1]
    assert step.action == "add_unique" and step.blocked
    with pytest.raises(Conflict):
        sales.metadata.publish()


def test_drop_an_entity_is_refused_while_references_point_at_it(sales: Workspace) -> None:
    sales.records.create("account", {"name": "Acme"})
    sales.metadata.delete("entity", "account")
    plan = sales.metadata.plan()
    assert plan.steps[0].blocked == "still referenced by deal"
    with pytest.raises(Conflict):
        sales.metadata.publish(confirm=True)
    _edit(sales, "deal", lambda d: d["properties"].pop("account"))
    sales.metadata.publish(confirm=True)
    assert "ent_account" not in sa.inspect(sales.engine).get_table_names()
    with sales.reading() as conn:
        archived = conn.scalar(sa.select(ArchivedValue.value).where(
            ArchivedValue.entity == "account", ArchivedValue.field.is_(None)))
    assert archived["name"] == "Acme"
    with pytest.raises(NotFound):
        sales.metadata.get("entity", "account")


def test_every_version_is_kept_diffed_and_restorable(sales: Workspace) -> None:
    sales.records.create("deal", {"title": "Deal"})
    _edit(sales, "deal", lambda d: d["properties"].update(region={"type": "string"}))
    sales.metadata.publish()
    assert [v["version"] for v in sales.metadata.versions("entity", "deal")] == [1, 2]
    assert sales.metadata.diff("entity", "deal", 1, 2) == [
        {"op": "add", "path": "/properties/region", "after": {"type": "string"}}]
    sales.metadata.restore("entity", "deal", 1)
    plan = sales.metadata.plan()
    assert [s.action for s in plan.steps] == ["drop_field"]
    sales.metadata.publish(confirm=True)
    assert "region" not in sales.entity("deal").fields
    assert sales.metadata.get("entity", "deal")["version"] == 3


def test_definition_errors_name_the_json_pointer_and_the_rule(workspace: Workspace) -> None:
    bad = copy.deepcopy(DEAL)
    bad["name"] = "Deal!"
    bad["properties"]["amount"]["x-field"] = "money"
    bad["properties"]["title"]["maxLenght"] = 3
    bad["properties"]["id"] = {"type": "string"}
    with pytest.raises(DefinitionError) as caught:
        workspace.metadata.create(bad)
    errors = caught.value.errors
    assert "/name" in errors and "pattern" in errors["/name"][0]
    assert errors["/properties/title/maxLenght"] == ["is not a known keyword here"]
    with pytest.raises(DefinitionError) as caught:
        workspace.metadata.create({**DEAL, "properties": {
            **DEAL["properties"], "amount": {"x-field": "money"},
            "version": {"type": "integer"}}})
    assert caught.value.errors["/properties/amount/x-field"] == ["unknown field type"]
    assert "system field" in caught.value.errors["/properties/version"][0]


def test_a_reference_to_a_missing_entity_is_refused_at_publish(workspace: Workspace) -> None:
    workspace.metadata.create(DEAL)
    with pytest.raises(DefinitionError) as caught:
        workspace.metadata.plan()
    assert caught.value.errors == {
        "/entity/deal/properties/account/x-ref": ["no entity named 'account'"]}
    workspace.metadata.create(ACCOUNT)
    workspace.metadata.publish()


def test_names_are_unique_per_kind(sales: Workspace) -> None:
    with pytest.raises(Conflict):
        sales.metadata.create(DEAL)
    assert [d["name"] for d in sales.metadata.list("entity")] == ["account", "deal"]


def test_search_follows_renamed_dropped_and_unsearched_fields(sales: Workspace) -> None:
    """Each searched field has its own full-text index on PostgreSQL: a rename moves it,
    leaving ``x-search`` drops it, and search answers from what is published."""
    sales.records.create("deal", {"title": "Harbour", "notes": "lighthouse"})

    def rename(d: dict[str, Any]) -> None:
        d["properties"]["headline"] = {**d["properties"].pop("title"),
                                       "x-renamed-from": "title"}
        d["required"] = ["headline"]

    _edit(sales, "deal", rename)
    sales.metadata.publish()
    assert sales.query("deal").search("harbour lighthouse").count().value == 1

    def only_notes(d: dict[str, Any]) -> None:
        d["x-search"] = ["notes"]

    _edit(sales, "deal", only_notes)
    sales.metadata.publish()
    assert sales.query("deal").search("harbour").count().value == 0
    assert sales.query("deal").search("lighthouse").count().value == 1
    if sales.dialect == "postgresql":
        with sales.reading() as conn:
            names = set(conn.scalars(sa.text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'ent_deal' "
                "AND indexname LIKE 'ft_%'")))
        assert {n.rsplit("_", 1)[0] for n in names} == {"ft_ent_deal_notes"}
