"""Views, forms and dashboards: checked against their entity at publish, compiled for the
screens; and what the screens keep beside them (saved views, notes, preferences)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from blockscrm.engine import (
    DefinitionError,
    NotFound,
    PermissionDenied,
    ValidationError,
    Workspace,
)

VIEW = {"kind": "view", "name": "open_deals", "label": {"en": "Open deals"}, "entity": "deal",
        "columns": ["title", "amount", "stage"], "filter": 'stage != "lost"',
        "sort": ["-amount"], "page_size": 25, "default": True,
        "kanban": {"group_by": "stage", "fields": ["amount"], "sum": "amount"}}
FORM = {"kind": "form", "name": "deal_form", "label": {"en": "Deal"}, "entity": "deal",
        "tabs": [{"label": {"en": "Main"},
                  "sections": [{"label": {"en": "Deal"}, "columns": 2,
                                "fields": ["title", "amount", "stage"]}]},
                 {"label": {"en": "More"}, "sections": [{"fields": ["notes", "close_date"]}]}],
        "rules": {"close_date": {"visible": 'stage == "won"', "required": 'stage == "won"'},
                  "amount": {"read_only": "stage == \"lost\""},
                  "notes": {"visible": "amount > 1000"}}}
BOARD = {"kind": "dashboard", "name": "sales", "label": {"en": "Sales"}, "roles": ["admin"],
         "cards": [{"type": "number", "entity": "deal", "filter": 'stage == "won"',
                    "metric": "sum:amount"},
                   {"type": "bar", "entity": "deal", "group_by": "close_date:month"},
                   {"type": "table", "entity": "deal", "columns": ["title", "amount"],
                    "sort": ["-amount"], "limit": 5}]}


def test_views_forms_and_dashboards_compile_onto_the_catalog(sales: Workspace) -> None:
    for document in (VIEW, FORM, BOARD):
        sales.metadata.create(document)
    sales.metadata.publish()
    catalog = sales.catalog()
    view = catalog.view_for("deal")
    assert view is not None and view.name == "open_deals"
    assert (view.columns, view.sort, view.page_size) == (("title", "amount", "stage"),
                                                         ("-amount",), 25)
    assert (view.kanban_group, view.kanban_sum) == ("stage", "amount")
    assert catalog.view_for("account") is None
    form = catalog.form_for("deal")
    assert form is not None
    assert form.fields == ["title", "amount", "stage", "notes", "close_date"]
    assert form.flags({"stage": "won"})["close_date"] == {
        "visible": True, "required": True, "read_only": False}
    assert form.flags({"stage": "lost"})["close_date"]["visible"] is False
    assert form.flags({"stage": "lost"})["amount"]["read_only"] is True
    assert form.flags({"amount": 5000})["notes"]["visible"] is True
    assert form.flags({"amount": "50a"})["notes"]["visible"] is False  # typing, not a number yet
    board = catalog.dashboards["sales"]
    assert [c.type for c in board.cards] == ["number", "bar", "table"]
    assert board.roles == {"admin"} and board.cards[0].metric == "sum:amount"


@pytest.mark.parametrize(("document", "pointer"), [
    ({**VIEW, "entity": "ghost"}, "/view/open_deals/entity"),
    ({**VIEW, "columns": ["title", "colour"]}, "/view/open_deals/columns/1"),
    ({**VIEW, "filter": "amount > "}, "/view/open_deals/filter"),
    ({**VIEW, "filter": 'amount == "ten"'}, "/view/open_deals/filter"),
    ({**VIEW, "sort": ["-size"]}, "/view/open_deals/sort/0"),
    ({**VIEW, "kanban": {"group_by": "title"}}, "/view/open_deals/kanban/group_by"),
    ({**VIEW, "kanban": {"group_by": "state"}}, "/view/open_deals/kanban/group_by"),
    ({**VIEW, "kanban": {"group_by": "stage", "sum": "title"}}, "/view/open_deals/kanban/sum"),
    ({**FORM, "sections": [{"fields": ["title"]}, {"fields": ["title"]}], "tabs": None},
     "/form/deal_form/sections/1/fields"),
    ({**FORM, "rules": {"ghost": {"visible": "true"}}}, "/form/deal_form/rules/ghost"),
    ({**FORM, "rules": {"amount": {"visible": "stage"}}}, "/form/deal_form/rules/amount/visible"),
    ({**BOARD, "cards": [{"type": "funnel", "entity": "deal"}]},
     "/dashboard/sales/cards/0/type"),
    ({**BOARD, "cards": [{"type": "pie", "entity": "deal", "group_by": "colour"}]},
     "/dashboard/sales/cards/0/group_by/0"),
    ({**BOARD, "cards": [{"type": "number", "entity": "deal", "metric": "sum:title"}]},
     "/dashboard/sales/cards/0/metric"),
])
def test_a_definition_naming_what_is_not_there_is_refused_at_publish(
        sales: Workspace, document: dict[str, Any], pointer: str) -> None:
    document = {k: v for k, v in document.items() if v is not None}
    sales.metadata.create(document)
    with pytest.raises(DefinitionError) as caught:
        sales.metadata.publish()
    assert pointer in caught.value.errors, caught.value.errors


@pytest.mark.parametrize("document", [
    {**VIEW, "columns": []},
    {**VIEW, "page_size": 1000},
    {**FORM, "sections": [{"fields": ["title"]}]},  # both tabs and sections
    {**BOARD, "cards": [{"type": "bar", "entity": "deal"}]},  # a bar needs its group
    {**BOARD, "cards": [{"type": "table", "entity": "deal"}]},  # a table its columns
    {**BOARD, "cards": [{"type": "gauge", "entity": "deal"}]},
])
def test_the_meta_schemas_refuse_a_malformed_definition(sales: Workspace,
                                                        document: dict[str, Any]) -> None:
    with pytest.raises(DefinitionError):
        sales.metadata.create(document)


def test_saved_views_are_personal_or_shared_and_checked_as_their_user(sales: Workspace) -> None:
    ann = sales.accounts.create_user("ann", roles=["admin"])
    bob = sales.accounts.create_user("bob", roles=["admin"])
    mine = sales.saved_views.save(ann, "deal", "Big ones", filter="amount > 1000",
                                  sort=["-amount"], columns=["title", "amount"])
    shared = sales.saved_views.save(ann, "deal", "Won", filter={"==": [{"var": "stage"}, "won"]},
                                    shared=True)
    assert [v["name"] for v in sales.saved_views.list(ann, "deal")] == ["Big ones", "Won"]
    assert [v["name"] for v in sales.saved_views.list(bob, "deal")] == ["Won"]
    assert sales.saved_views.get(ann, mine["id"])["sort"] == ["-amount"]
    with pytest.raises(NotFound):
        sales.saved_views.get(bob, mine["id"])
    with pytest.raises(ValidationError) as caught:
        sales.saved_views.save(ann, "deal", "Bad", filter="amount >")
    assert "filter" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        sales.saved_views.save(ann, "deal", "  ")
    assert "name" in caught.value.errors
    rep = sales.accounts.create_user("rep")
    with pytest.raises(PermissionDenied):
        sales.saved_views.delete(rep, shared["id"])
    sales.saved_views.delete(bob, shared["id"])  # an admin may
    assert sales.saved_views.list(ann, "deal")[0]["name"] == "Big ones"


def test_notes_are_for_those_who_may_read_the_record(sales: Workspace) -> None:
    deal = sales.records.create("deal", {"title": "Acme"})
    sales.notes.add("deal", deal["id"], "  Called them.  ")
    sales.notes.add("deal", deal["id"], "Sent the quote.")
    assert [n["body"] for n in sales.notes.for_record("deal", deal["id"])] == [
        "Sent the quote.", "Called them."]
    with pytest.raises(ValidationError):
        sales.notes.add("deal", deal["id"], " ")
    with pytest.raises(NotFound):
        sales.notes.add("deal", "0" * 26, "Lost?")
    stranger = sales.accounts.create_user("stranger")
    with pytest.raises((NotFound, PermissionDenied)):
        sales.notes.for_record("deal", deal["id"], user=stranger)


def test_a_user_sets_language_and_time_zone(sales: Workspace) -> None:
    sales.accounts.create_user("ann")
    user = sales.accounts.set_preferences("ann", language="zh", time_zone="Asia/Shanghai")
    assert (user.language, user.time_zone) == ("zh", "Asia/Shanghai")
    with pytest.raises(ValidationError) as caught:
        sales.accounts.set_preferences("ann", language="chinese!", time_zone="Mars/Olympus")
    assert set(caught.value.errors) == {"language", "time_zone"}


def test_a_snapshot_sees_one_state_of_the_data(sales: Workspace) -> None:
    """Every read in a snapshot joins it, and a write committed meanwhile (here from
    another thread) stays out of it until it ends, on both databases."""
    sales.records.create("deal", {"title": "First"})
    with sales.snapshot():
        before = sales.query("deal").count().value
        writer = threading.Thread(target=sales.records.create, args=("deal", {"title": "New"}))
        writer.start()
        writer.join()
        assert sales.query("deal").count().value == before == 1
        assert [d["title"] for d in sales.query("deal").page().items] == ["First"]
    assert sales.query("deal").count().value == 2


@pytest.mark.parametrize("name", ["search", "approvals", "dashboards"])
def test_an_entity_may_not_take_the_name_of_a_screen(sales: Workspace, name: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        sales.metadata.create({"kind": "entity", "name": name, "label": {"en": "X"},
                               "properties": {"x": {"type": "string"}}})
    assert "/name" in caught.value.errors
