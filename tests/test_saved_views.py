"""Saved views through the engine: checked when saved (as the saver), personal or shared,
opened and deleted only by whom they belong to."""

from __future__ import annotations

import pytest

from blockscrm.engine import NotFound, PermissionDenied, User, ValidationError, Workspace

FLOW = {"kind": "workflow", "name": "flow", "label": {"en": "Flow"}, "entity": "deal",
        "initial": "open", "states": [{"name": "open"}, {"name": "done"}],
        "transitions": [{"name": "finish", "from": ["open"], "to": "done"}]}
REP = {"kind": "role", "name": "rep", "label": {"en": "Rep"},
       "permissions": {"deal": {"read": True, "fields": {"amount": "hidden"}}}}


@pytest.fixture
def views(sales: Workspace) -> Workspace:
    sales.metadata.create(FLOW)
    sales.metadata.create(REP)
    sales.metadata.publish()
    return sales


def rep(ws: Workspace, name: str) -> User:
    return ws.accounts.create_user(name, roles=["rep"])


def test_a_view_saves_its_columns_filter_and_sort(views: Workspace) -> None:
    ann = rep(views, "ann")
    saved = views.saved_views.save(ann, "deal", " Open deals ", columns=["title", "state"],
                                   filter={"==": [{"var": "stage"}, "won"]},
                                   sort=["-created_at"])
    assert saved["name"] == "Open deals" and saved["columns"] == ["title", "state"]
    again = views.saved_views.get(ann, saved["id"])
    assert again["filter"] == {"==": [{"var": "stage"}, "won"]}
    assert again["sort"] == ["-created_at"] and again["shared"] is False


@pytest.mark.parametrize(("changes", "key"), [
    ({"name": ""}, "name"),
    ({"columns": ["title", "nope"]}, "columns"),
    ({"columns": ["amount"]}, "columns"),  # hidden from a rep
    ({"columns": "title"}, "columns"),
    ({"sort": ["nope"]}, "sort"),
    ({"filter": "amount >"}, "filter"),
    ({"filter": "amount > 5"}, "filter"),  # hidden fields filter nothing either
], ids=["no name", "unknown column", "hidden column", "columns not a list", "bad sort",
        "bad filter", "hidden filter"])
def test_a_view_the_saver_could_not_run_is_refused(views: Workspace, changes: dict,
                                                    key: str) -> None:
    values = {"name": "x", "columns": ["title"], **changes}
    with pytest.raises(ValidationError) as caught:
        views.saved_views.save(rep(views, "ann"), "deal", values.pop("name"), **values)
    assert key in caught.value.errors


def test_personal_views_are_their_owners_and_shared_ones_everyones(views: Workspace) -> None:
    ann, bob = rep(views, "ann"), rep(views, "bob")
    mine = views.saved_views.save(ann, "deal", "Mine", columns=["title"])
    ours = views.saved_views.save(ann, "deal", "Ours", columns=["title"], shared=True)
    assert [v["name"] for v in views.saved_views.list(ann, "deal")] == ["Mine", "Ours"]
    assert [v["name"] for v in views.saved_views.list(bob, "deal")] == ["Ours"]
    with pytest.raises(NotFound):
        views.saved_views.get(bob, mine["id"])
    with pytest.raises(PermissionDenied):
        views.saved_views.delete(bob, ours["id"])
    views.saved_views.delete(ann, ours["id"])
    assert views.saved_views.list(bob, "deal") == []
