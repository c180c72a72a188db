"""The rule language in the engine: type checks, both compilers, formulas, defaults,
validation rules, and a plugin's function."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pluggy
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blockscrm.engine import (
    DefinitionError,
    QueryError,
    User,
    ValidationError,
    Workspace,
    hookimpl,
)
from blockscrm.engine.plugins import PluginInfo, add_plugin, create_plugin_manager
from blockscrm.engine.rules import Env, RuleFunction, parse_rule
from blockscrm.engine.rules.python import PythonCompiler
from blockscrm.engine.rules.sql import SqlCompiler
from blockscrm.engine.rules.types import NUMBER, RuleError, expect_all

ORDER = {
    "kind": "entity", "name": "order", "label": {"en": "Order", "zh": "订单"},
    "required": ["customer"],
    "properties": {
        "customer": {"type": "string"},
        "quantity": {"type": "integer", "minimum": 0},
        "price": {"x-field": "currency"},
        "discount": {"x-field": "percent", "minimum": 0, "maximum": 100},
        "ordered_on": {"type": "string", "format": "date", "x-default": "today()"},
        "ships_on": {"type": "string", "format": "date"},
        "approved_by": {"x-field": "user"},
        "total": {"x-field": "formula",
                  "x-formula": "round(quantity * price * (100 - coalesce(discount, 0)) / 100, 2)"},
        "big": {"x-field": "formula", "x-formula": "total > 1000"},
        "label": {"x-field": "formula", "x-formula": 'concat(upper(customer), " #", "x")'},
        "lead_days": {"x-field": "formula", "x-formula": "days_between(ordered_on, ships_on)"},
    },
    "x-validations": [
        {"assert": "discount <= 50 or approved_by != null",
         "message": {"en": "A discount over 50% needs an approver", "zh": "折扣超过50%需要审批人"},
         "fields": ["discount"]},
        {"assert": "ships_on == null or ships_on >= ordered_on",
         "message": {"en": "Ships before it is ordered"}, "fields": ["ships_on"]},
        {"assert": 'not changed("customer") or previous("customer") == null',
         "message": {"en": "The customer cannot change"}, "fields": ["customer"]},
    ],
}


@pytest.fixture
def orders(workspace: Workspace) -> Workspace:
    workspace.metadata.create(ORDER)
    workspace.metadata.publish()
    return workspace


def test_formula_fields_are_computed_on_read_and_can_be_filtered_and_sorted(
        orders: Workspace) -> None:
    first = orders.records.create("order", {"customer": "acme", "quantity": 3, "price": 500,
                                            "discount": 10, "ordered_on": "2025-01-01",
                                            "ships_on": "2025-01-11"})
    assert (first["total"], first["big"], first["label"]) == (1350, True, "ACME #x")
    assert first["lead_days"] == 10
    orders.records.create("order", {"customer": "birch", "quantity": 1, "price": 99.5})
    assert orders.records.get("order", first["id"])["total"] == 1350
    big = orders.query("order").filter("big").page().items
    assert [r["customer"] for r in big] == ["acme"]
    by_total = orders.query("order").sort("-total").page().items
    assert [r["total"] for r in by_total] == [1350, 99.5]
    assert orders.query("order").aggregate((), {"sum": "sum:total"}) == [{"sum": 1449.5}]


def test_formula_fields_cannot_be_written(orders: Workspace) -> None:
    with pytest.raises(ValidationError) as caught:
        orders.records.create("order", {"customer": "acme", "total": 5})
    assert caught.value.errors == {"total": ["is computed by a formula and cannot be written"]}


def test_defaults_may_be_formulas(orders: Workspace) -> None:
    created = orders.records.create("order", {"customer": "acme"})
    assert created["ordered_on"] == dt.datetime.now(dt.UTC).date().isoformat()


def test_validation_rules_are_reported_with_the_other_field_errors(orders: Workspace) -> None:
    with pytest.raises(ValidationError) as caught:
        orders.records.create("order", {"customer": "acme", "discount": 60, "quantity": -1,
                                        "ordered_on": "2025-02-01", "ships_on": "2025-01-01"})
    assert caught.value.errors == {
        "quantity": ["must be ≥ 0"],
        "discount": ["A discount over 50% needs an approver"],
        "ships_on": ["Ships before it is ordered"],
    }
    assert orders.query("order").count().value == 0
    fine = orders.records.create("order", {"customer": "acme", "discount": 60,
                                           "approved_by": "boss"})
    assert fine["discount"] == 60


def test_changed_and_previous_see_the_record_before_the_write(orders: Workspace) -> None:
    order = orders.records.create("order", {"customer": "acme"})
    orders.records.update("order", order["id"], {"quantity": 2})
    with pytest.raises(ValidationError) as caught:
        orders.records.update("order", order["id"], {"customer": "other"})
    assert caught.value.errors == {"customer": ["The customer cannot change"]}


@pytest.mark.parametrize(("change", "pointer", "message"), [
    ({"x-formula": "quantity * customer"}, "/properties/total/x-formula",
     "argument 2 is text, where number is expected"),
    ({"x-formula": "quantity +"}, "/properties/total/x-formula", "expected"),
    ({"x-formula": "nope + 1"}, "/properties/total/x-formula", "order has no field 'nope'"),
    ({"x-formula": "if(quantity, 1, 2)"}, "/properties/total/x-formula",
     "where a condition is expected"),
    ({"x-formula": "round(1, 2, 3)"}, "/properties/total/x-formula", "round takes 1 to 2"),
    ({"x-formula": "big"}, "/properties/total/x-formula", "cycle: total → big → total"),
], ids=["types", "syntax", "unknown-field", "condition", "arity", "cycle"])
def test_formulas_are_checked_when_the_definition_is_saved(
        workspace: Workspace, change: dict[str, Any], pointer: str, message: str) -> None:
    document = {**ORDER, "properties": {**ORDER["properties"],
                                        "total": {"x-field": "formula", **change}}}
    with pytest.raises(DefinitionError) as caught:
        workspace.metadata.create(document)
    assert pointer in caught.value.errors
    assert message in caught.value.errors[pointer][0]


def test_a_validation_rule_is_checked_too(workspace: Workspace) -> None:
    document = {**ORDER, "x-validations": [
        {"assert": "ships_on > 5", "message": {"en": "x"}, "fields": ["ships_on"]}]}
    with pytest.raises(DefinitionError) as caught:
        workspace.metadata.create(document)
    assert "cannot compare date and number" in caught.value.errors["/x-validations/0/assert"][0]


def test_the_acting_user_in_a_filter(orders: Workspace) -> None:
    orders.records.create("order", {"customer": "mine", "approved_by": "u1"})
    orders.records.create("order", {"customer": "theirs", "approved_by": "u2"})
    ann = User("u1", "ann", roles=frozenset({"sales", "admin"}), teams=frozenset({"t"}))
    query = orders.query("order", user=ann)
    assert [r["customer"] for r in query.filter("approved_by == user.id").page().items] == [
        "mine"]
    assert query.filter('"sales" in user.roles').count().value == 2
    assert query.filter('"boss" in user.roles').count().value == 0
    assert query.filter('"t" in user.teams and user.username == "ann"').count().value == 2
    with pytest.raises(QueryError, match="the user has no 'name'"):
        query.filter("user.name == 'x'")


def test_rules_have_size_and_depth_limits(orders: Workspace) -> None:
    deep = "quantity" + " + 1" * 600
    with pytest.raises(QueryError):
        orders.query("order").filter(f"{deep} > 0")


def test_a_plugin_adds_a_function_with_its_sql_and_python(tmp_path) -> None:  # type: ignore[no-untyped-def]
    class Plugin:
        @hookimpl
        def blocks_plugin_info(self) -> PluginInfo:
            return PluginInfo("doubler", "1.0", ">=0.1")

        @hookimpl
        def blocks_rule_functions(self) -> list[RuleFunction]:
            return [RuleFunction("double", 1, 1, expect_all(NUMBER), lambda x: 2 * x,
                                 sql=lambda args: args.values[0] * 2)]

    pm: pluggy.PluginManager = create_plugin_manager(load_entry_points=False)
    add_plugin(pm, Plugin())
    ws = Workspace(f"sqlite:///{tmp_path / 'p.db'}", pm=pm)
    ws.plugins.enable("doubler")
    ws.metadata.create({**ORDER, "properties": {
        **ORDER["properties"], "twice": {"x-field": "formula", "x-formula": "double(quantity)"}}})
    ws.metadata.publish()
    ws.records.create("order", {"customer": "a", "quantity": 4})
    assert ws.query("order").filter("double(quantity) == 8").page().items[0]["twice"] == 8
    ws.close()


# --- both compilers agree -----------------------------------------------------------------

THING = {
    "kind": "entity", "name": "thing", "label": {"en": "Thing"},
    "properties": {
        "n": {"type": "integer"}, "x": {"type": "number"}, "s": {"type": "string"},
        "d": {"type": "string", "format": "date"}, "b": {"type": "boolean"},
        "tags": {"x-field": "tags"},
    },
}
WORDS = ["", "a", "ab", "B", "abc", "Zed", "b a"]


SIMPLE_CONDITIONS = [{"var": "b"}, {">": [{"var": "n"}, 0]}, {"contains": [{"var": "s"}, "a"]},
                     {"is_empty": [{"var": "x"}]}]


def number_tree(depth: int = 2) -> st.SearchStrategy[Any]:
    leaf = st.one_of(st.sampled_from([{"var": "n"}, {"var": "x"}]), st.integers(-3, 3),
                     st.just(None), st.just({"len": [{"var": "s"}]}),
                     st.just({"days_between": [{"date": ["2025-01-01"]}, {"var": "d"}]}),
                     st.just({"year": [{"var": "d"}]}))
    if depth == 0:
        return leaf
    inner = number_tree(depth - 1)
    return st.one_of(
        leaf,
        st.builds(lambda op, a, b: {op: [a, b]}, st.sampled_from(["+", "-", "*", "/", "%"]),
                  inner, inner),
        st.builds(lambda a: {"-": [a]}, inner),
        st.builds(lambda a: {"abs": [a]}, inner),
        st.builds(lambda a, b: {"coalesce": [a, b]}, inner, inner),
        st.builds(lambda a, b: {"min": [a, b]}, inner, inner),
        st.builds(lambda c, a, b: {"if": [c, a, b]}, st.sampled_from(SIMPLE_CONDITIONS),
                  inner, inner),
    )


def text_tree() -> st.SearchStrategy[Any]:
    leaf = st.one_of(st.just({"var": "s"}), st.sampled_from(WORDS))
    return st.one_of(leaf, st.builds(lambda a: {"lower": [a]}, leaf),
                     st.builds(lambda a: {"upper": [a]}, leaf),
                     st.builds(lambda a, b: {"concat": [a, b]}, leaf, leaf))


def condition_tree(depth: int = 2) -> st.SearchStrategy[Any]:
    comparisons = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    leaf = st.one_of(
        st.builds(lambda op, a, b: {op: [a, b]}, comparisons, number_tree(1), number_tree(1)),
        st.builds(lambda op, a, b: {op: [a, b]}, comparisons, text_tree(), text_tree()),
        st.builds(lambda op, d: {op: [{"var": "d"}, {"date": [d]}]}, comparisons,
                  st.sampled_from(["2025-01-01", "2025-02-01"])),
        st.builds(lambda a, b: {"contains": [a, b]}, text_tree(), text_tree()),
        st.builds(lambda a, b: {"starts_with": [a, b]}, text_tree(), text_tree()),
        st.builds(lambda t: {"contains": [{"var": "tags"}, t]}, st.sampled_from(["a", "b"])),
        st.builds(lambda t: {"in": [{"var": "s"}, t]},
                  st.lists(st.sampled_from(WORDS[1:]), max_size=3)),
        st.builds(lambda f: {"is_empty": [{"var": f}]}, st.sampled_from(list(THING["properties"]))),
        st.just({"var": "b"}),
        st.just({"==": [{"var": "b"}, True]}),
        st.builds(lambda a, b, c: {"between": [a, b, c]}, number_tree(0), number_tree(0),
                  number_tree(0)),
    )
    if depth == 0:
        return leaf
    inner = condition_tree(depth - 1)
    return st.one_of(
        leaf,
        st.builds(lambda op, xs: {op: xs}, st.sampled_from(["and", "or"]),
                  st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda a: {"!": [a]}, inner),
    )


@pytest.fixture
def things(workspace: Workspace) -> tuple[Workspace, list[dict[str, Any]]]:
    workspace.metadata.create(THING)
    workspace.metadata.publish()
    rng = random.Random(11)
    rows = []
    for _ in range(40):
        rows.append({
            "n": rng.choice([None, *range(-5, 6)]),
            "x": rng.choice([None, 0, 0.5, -2.5, 10.0, 3]),
            "s": rng.choice([None, *WORDS[1:]]),
            "d": rng.choice([None, "2025-01-01", "2025-02-28", "2024-12-31"]),
            "b": rng.choice([None, True, False]),
            "tags": rng.choice([None, ["a"], ["b", "c"], ["a", "c"]]),
        })
    result = workspace.records.bulk_insert("thing", rows)
    assert not result.errors
    stored = [workspace.records.get("thing", i) for i in result.ids]
    return workspace, stored


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=condition_tree())
def test_sql_and_python_select_the_same_records(
        things: tuple[Workspace, list[dict[str, Any]]], tree: Any) -> None:
    ws, stored = things
    entity = ws.entity("thing")
    rules = entity.rules
    try:
        sql = SqlCompiler(rules.scope, rules.functions, ws.dialect).condition(tree)
    except RuleError:
        return  # ill-typed trees are refused by both: the checker is shared
    evaluate = PythonCompiler(rules.scope, rules.functions).compile(tree)
    expected = {r["id"] for r in stored if evaluate(r, Env())}
    with ws.reading() as conn:
        found = set(conn.scalars(sa.select(entity.table.c.id).where(sql)))
    assert found == expected, parse_rule(tree)


def test_conditional_form_flags(orders: Workspace) -> None:
    from blockscrm.engine.rules import compile_flags

    flags = compile_flags(orders.entity("order").rules, {
        "discount": {"visible": "quantity >= 10", "read_only": "approved_by != null"},
        "approved_by": {"required": "discount > 50"},
    })
    assert flags({"quantity": 12, "discount": 60}, Env()) == {
        "discount": {"visible": True, "required": False, "read_only": False},
        "approved_by": {"visible": True, "required": True, "read_only": False}}
    assert flags({"quantity": 2, "approved_by": "boss"})["discount"] == {
        "visible": False, "required": False, "read_only": True}
    with pytest.raises(RuleError, match="/discount/visible"):
        compile_flags(orders.entity("order").rules, {"discount": {"visible": "quantity + 1"}})
