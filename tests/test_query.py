"""Queries: filter trees, reference paths, sort, keyset cursors, counts, reports, search."""

from __future__ import annotations

from typing import Any

import pytest

from blockscrm.engine import QueryError, Workspace


@pytest.fixture
def deals(sales: Workspace) -> Workspace:
    paris = sales.records.create("account", {"name": "Acme", "city": "Paris", "tier": "gold"})
    lyon = sales.records.create("account", {"name": "Birch", "city": "Lyon"})
    rows = [
        {"title": "Alpha renewal", "amount": 5000, "stage": "won", "account": paris["id"],
         "close_date": "2025-01-15", "tags": ["vip", "renewal"], "probability": 100},
        {"title": "Beta upsell", "amount": 12000, "stage": "new", "account": lyon["id"],
         "close_date": "2025-02-03", "tags": ["upsell"], "probability": 40},
        {"title": "Gamma 100% deal", "amount": 12000, "stage": "lost",
         "close_date": "2025-02-20", "probability": 0},
        {"title": "delta", "stage": "new", "account": paris["id"], "notes": "call back"},
        {"title": "Epsilon", "amount": 300, "stage": "won", "close_date": "2025-03-01",
         "tags": ["vip"]},
    ]
    assert sales.records.bulk_insert("deal", rows).inserted == 5
    return sales


def titles(ws: Workspace, tree: Any = None, *sort: str) -> list[str]:
    query = ws.query("deal")
    if tree is not None:
        query = query.filter(tree)
    if sort:
        query = query.sort(*sort)
    return [r["title"] for r in query.limit(100).page().items]


V = {"var": "amount"}


@pytest.mark.parametrize(("tree", "expected"), [
    ({">": [V, 1000]}, {"Alpha renewal", "Beta upsell", "Gamma 100% deal"}),
    ({"<=": [V, 300]}, {"Epsilon"}),
    ({"==": [{"var": "stage"}, "won"]}, {"Alpha renewal", "Epsilon"}),
    ({"!=": [{"var": "stage"}, "won"]}, {"Beta upsell", "Gamma 100% deal", "delta"}),
    ({"!=": [V, 12000]}, {"Alpha renewal", "delta", "Epsilon"}),  # empty is != 12000
    ({"!": {">": [V, 1000]}}, {"Epsilon"}),  # not of unknown (no amount) is unknown
    ({"in": [{"var": "stage"}, ["won", "lost"]]}, {"Alpha renewal", "Gamma 100% deal",
                                                   "Epsilon"}),
    ({"between": [{"var": "close_date"}, {"date": ["2025-02-01"]}, {"date": ["2025-02-28"]}]},
     {"Beta upsell", "Gamma 100% deal"}),
    ({"<=": [1000, V, 6000]}, {"Alpha renewal"}),
    ({"contains": [{"var": "title"}, "ALPHA"]}, {"Alpha renewal"}),
    ({"contains": [{"var": "title"}, "100%"]}, {"Gamma 100% deal"}),  # % is literal
    ({"starts_with": [{"var": "title"}, "de"]}, {"delta"}),
    ({"contains": [{"var": "tags"}, "vip"]}, {"Alpha renewal", "Epsilon"}),
    ({"is_empty": [{"var": "amount"}]}, {"delta"}),
    ({"!": {"is_empty": {"var": "tags"}}}, {"Alpha renewal", "Beta upsell", "Epsilon"}),
    ({"==": [{"var": "account.city"}, "Paris"]}, {"Alpha renewal", "delta"}),
    ({"==": [{"var": "account.tier"}, None]}, {"Beta upsell", "Gamma 100% deal",
                                               "Epsilon"}),
    ({"or": [{"==": [{"var": "stage"}, "lost"]},
             {"and": [{"==": [{"var": "stage"}, "won"]}, {"<": [V, 1000]}]}]},
     {"Gamma 100% deal", "Epsilon"}),
    ({"==": [{"var": "probability"}, {"var": "probability"}]},  # empty == empty
     {"Alpha renewal", "Beta upsell", "Gamma 100% deal", "delta", "Epsilon"}),
    ({">": [{"var": "probability"}, {"var": "probability"}]}, set()),
    ('amount >= 5000 and account.city == "Paris"', {"Alpha renewal"}),
    ('days_between(date("2025-01-01"), close_date) < 40', {"Alpha renewal", "Beta upsell"}),
    ('"vip" in tags and not (stage == "won" and amount < 1000)', {"Alpha renewal"}),
    ("year(close_date) == 2025 and month(close_date) == 2",
     {"Beta upsell", "Gamma 100% deal"}),
    ('if(amount > 10000, "big", "small") == "small"', {"Alpha renewal", "delta", "Epsilon"}),
    ("coalesce(amount, 0) == 0", {"delta"}),
], ids=lambda v: str(v)[:40] if isinstance(v, dict) else None)
def test_filters(deals: Workspace, tree: Any, expected: set[str]) -> None:
    assert set(titles(deals, tree)) == expected


@pytest.mark.parametrize(("tree", "message"), [
    ({">": [{"var": "amout"}, 1]}, "deal has no field 'amout'"),
    ({"~=": [{"var": "amount"}, 1]}, "unknown operator or function '~='"),
    ({">": [{"var": "amount"}, "lots"]}, "cannot compare number and text"),
    ({"==": [{"var": "close_date"}, "soon"]}, 'write a date as date("2025-01-31")'),
    ({"==": [{"var": "close_date"}, {"date": ["soon"]}]}, "'soon' is not a valid date"),
    ({"contains": [{"var": "amount"}, "1"]}, "argument 1 is number, where text is expected"),
    ({">": [{"var": "tags"}, "a"]}, "cannot compare list of text and text"),
    ({"changed": ["amount"]}, "unknown operator or function 'changed' here"),
    ("amount > ", "expected"),
    ("stage", "where boolean is expected"),
    ({"==": [{"var": "title.city"}, "x"]}, "'title' is not a reference field"),
    ({"==": [{"var": "account.owner.city"}, "x"]}, "one hop only"),
    ({"and": []}, "and takes 1 or more arguments"),
    (["amount", ">", 1], "a list holds values of one type"),
    ({"!": {"!": {"!": {"!": {"!": {"!": {"!": {"!": {"!": {"!": {"!": {"!": {"!": {
        "!": {"!": {"!": {"!": {"!": {"!": {"!": {"!": {"!": {"!": {"!": {"!": {"!": {
            "!": {"!": {"!": {"!": {"!": {"!": {"!": True}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}},
     "may nest 32 deep"),
], ids=lambda v: str(v)[:30])
def test_bad_filters_are_refused_before_any_sql(sales: Workspace, tree: Any,
                                                message: str) -> None:
    with pytest.raises(QueryError) as caught:
        sales.query("deal").filter(tree)
    assert message in caught.value.errors["filter"][0]


def test_a_filter_may_come_as_a_json_string(deals: Workspace) -> None:
    assert titles(deals, '{"==": [{"var": "stage"}, "lost"]}') == ["Gamma 100% deal"]
    with pytest.raises(QueryError, match="not valid JSON"):
        deals.query("deal").filter("{nope")


def test_sort_on_several_fields_with_empty_values_greatest(deals: Workspace) -> None:
    assert titles(deals, None, "-amount", "title") == [
        "delta", "Beta upsell", "Gamma 100% deal", "Alpha renewal", "Epsilon"]
    assert titles(deals, None, "amount,-title") == [
        "Epsilon", "Alpha renewal", "Gamma 100% deal", "Beta upsell", "delta"]
    with pytest.raises(QueryError, match="no field 'size'"):
        deals.query("deal").sort("size")
    with pytest.raises(QueryError, match="cannot sort"):
        deals.query("deal").sort("tags")


@pytest.mark.parametrize("sort", [(), ("-amount", "title"), ("close_date",),
                                  ("-close_date",), ("stage", "-created_at")])
def test_cursor_pages_walk_every_record_once_in_order(deals: Workspace,
                                                      sort: tuple[str, ...]) -> None:
    query = deals.query("deal").sort(*sort)
    everything = [r["id"] for r in query.limit(100).page().items]
    walked: list[str] = []
    page = query.limit(2).page()
    while True:
        walked += [r["id"] for r in page.items]
        if page.next_cursor is None:
            break
        page = query.limit(2).page(page.next_cursor)
    assert walked == everything and len(walked) == 5


def test_cursors_are_refused_when_forged_or_reused_with_another_query(
        deals: Workspace) -> None:
    cursor = deals.query("deal").sort("title").limit(1).page().next_cursor
    assert cursor
    with pytest.raises(QueryError, match="another filter or sort"):
        deals.query("deal").sort("-title").page(cursor)
    body, signature = cursor.rsplit(".", 1)
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
    for bad in (forged, "garbage", cursor + "x", "a.b"):
        with pytest.raises(QueryError, match="cursor"):
            deals.query("deal").sort("title").page(bad)


def test_field_selection_and_limits(deals: Workspace) -> None:
    item = deals.query("deal").fields("title", "amount").limit(1).page().items[0]
    assert set(item) == {"id", "version", "title", "amount"}
    with pytest.raises(QueryError):
        deals.query("deal").fields("title", "secret")
    for bad in (0, 1001, "10", True):
        with pytest.raises(QueryError):
            deals.query("deal").limit(bad)  # type: ignore[arg-type]


def test_count_is_capped_unless_exact(deals: Workspace) -> None:
    query = deals.query("deal")
    assert query.count().value == 5 and query.count().exact
    capped = query.count(cap=3)
    assert (capped.value, capped.exact) == (3, False)
    assert query.count(exact=True, cap=3).value == 5
    assert query.filter({"==": [{"var": "stage"}, "won"]}).count().value == 2


def test_aggregates_group_by_a_field_or_a_date_bucket(deals: Workspace) -> None:
    by_stage = deals.query("deal").aggregate("stage", {"n": "count", "total": "sum:amount",
                                                        "top": "max:amount"})
    assert by_stage == [
        {"stage": "lost", "n": 1, "total": 12000, "top": 12000},
        {"stage": "new", "n": 2, "total": 12000, "top": 12000},
        {"stage": "won", "n": 2, "total": 5300, "top": 5000},
    ]
    by_month = deals.query("deal").filter({"!": {"is_empty": {"var": "close_date"}}}) \
        .aggregate("close_date:month", {"n": "count", "avg": "avg:amount"})
    assert by_month == [{"close_date:month": "2025-01", "n": 1, "avg": 5000},
                        {"close_date:month": "2025-02", "n": 2, "avg": 12000},
                        {"close_date:month": "2025-03", "n": 1, "avg": 300}]
    assert deals.query("deal").aggregate((), {"n": "count"}) == [{"n": 5}]
    for group, metrics in (("nope", None), ("title:month", None), ("stage", {"x": "sum:title"}),
                           ("stage", {"x": "median:amount"})):
        with pytest.raises(QueryError):
            deals.query("deal").aggregate(group, metrics)


def test_full_text_search_over_text_fields(deals: Workspace) -> None:
    assert [r["title"] for r in deals.query("deal").search("renewal").page().items] == [
        "Alpha renewal"]
    assert [r["title"] for r in deals.query("deal").search("call").page().items] == ["delta"]
    assert deals.query("deal").search("nothing-like-this").count().value == 0
    with pytest.raises(QueryError):
        deals.query("deal").search("  ")


def test_search_finds_every_word_across_fields(deals: Workspace) -> None:
    """Each word must be in some searchable field, not all in the same one."""
    assert [r["title"] for r in deals.query("deal").search("delta call").page().items] == [
        "delta"]
    assert deals.query("deal").search("delta renewal").count().value == 0
    assert [r["title"] for r in deals.query("deal").search("epsilon !").page().items] == [
        "Epsilon"]


def test_a_text_field_added_later_is_searched(deals: Workspace) -> None:
    document = deals.metadata.get("entity", "deal")
    document["properties"]["region"] = {"type": "string", "maxLength": 50}
    deals.metadata.replace("entity", "deal", document)
    deals.metadata.publish()
    deal = deals.query("deal").search("delta").page().items[0]
    deals.records.update("deal", deal["id"], {"region": "Brittany"})
    assert [r["title"] for r in deals.query("deal").search("brittany delta").page().items] == [
        "delta"]


@pytest.mark.parametrize("workspace", ["postgresql"], indirect=True)
def test_postgresql_search_uses_the_gin_index(deals: Workspace) -> None:
    query = deals.query("deal").search("renewal")
    with deals.reading() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        compiled = query.statement().compile(conn, compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled}"))
    assert "ft_ent_deal_title_" in plan


def test_a_query_follows_a_publish_made_by_another_process(deals: Workspace) -> None:
    """Two workspaces on one database stand for two web processes."""
    other = Workspace(deals.url, secret="test-secret")
    assert other.query("deal").count().value == 5  # this process caches version 1
    document = deals.metadata.get("entity", "deal")
    document["properties"]["region"] = {"type": "string"}
    deals.metadata.replace("entity", "deal", document)
    deals.metadata.publish()
    deals.records.create("deal", {"title": "Zeta", "region": "EMEA"})
    query = other.query("deal").filter('region == "EMEA"')  # a field it has not seen yet
    assert [r["title"] for r in query.page().items] == ["Zeta"]
    stale = other.query("deal")  # compiled on what it knew, checked when it runs
    assert "region" in stale.page().items[0]
    other.close()


@pytest.mark.parametrize("sort", ["-close_date", "close_date"])
def test_a_filtered_sorted_page_reads_the_index_without_sorting(
        sqlite_workspace: Workspace, sort: str) -> None:
    """``stage == "won"`` sorted by close date is read straight from the (stage,
    close_date, id) index, first page and cursor pages alike, so its cost does not grow
    with the table. SQLite sorts instead when the equality has a NULL branch or the id
    that ends the sort carries a NULLS clause."""
    ws = sqlite_workspace
    ws.metadata.create({
        "kind": "entity", "name": "lead", "label": {"en": "Lead"},
        "properties": {"stage": {"type": "string", "enum": ["new", "won"],
                                 "x-field": "select"},
                       "close_date": {"type": "string", "format": "date"}},
        "x-indexes": [["stage", "close_date"]]})
    ws.metadata.publish()
    ws.records.bulk_insert("lead", [{"stage": "won", "close_date": f"2025-01-{d:02}"}
                                    for d in range(1, 29)] + [{"stage": "won"}])
    query = ws.query("lead").filter('stage == "won"').sort(sort).limit(5)
    page = query.page()
    statements = [query.statement(), query.statement(page.next_cursor)]
    with ws.reading() as conn:
        for statement in statements:
            compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
            plan = " ".join(row[3] for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}"))
            assert "USING INDEX ix_ent_lead_stage_close_date" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
    assert page.next_cursor is not None
