"""An entity's list: from its view definition (columns, filter, sort, page size) or a view
the user saved, with a filter builder, quick search, sort by column, cursor pagination,
bulk update / transition / delete and CSV export.

Everything goes through the engine as the logged-in user: the query decides what the
list shows and what the CSV holds (export is a permission of its own), and a bulk action
is one engine call per record, so each record is checked on its own and a refusal is
reported with the engine's reason.

The list's state lives in the address (``view``, ``saved``, ``filter``, ``sort``, ``q``,
``cursor``), so every link, the CSV export and the saved view take it along. ``filter``
is a rule-language tree as JSON or the rule's text (``stage == "won"``, as dashboards
link); absent, the view's own filter applies; empty, none does.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

import nh3
from flask import flash, redirect, render_template, request, stream_with_context, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from blockscrm.engine import (
    BlocksError,
    Entity,
    NotFound,
    Query,
    QueryError,
    User,
    ValidationError,
)
from blockscrm.engine.access import Grant, grant_for
from blockscrm.engine.presentation import SHOWN_SYSTEM_FIELDS, View
from blockscrm.engine.rules import parse_rule, to_text

from ..extension import current_workspace
from ..i18n import gettext, label, ngettext
from . import bp
from .helpers import (
    current_catalog,
    default_columns,
    field_label,
    formatter,
    navigation,
    option_label,
    parse_id,
    parse_input,
    record_title,
    record_url,
    reference_titles,
    select_options,
    state_label,
    the_user,
    title_field,
    visible_fields,
)
from .kanban import board_for

PAGE = 50
#: Records one bulk action may touch (one engine call each).
MAX_BULK = 500
#: Failures listed one by one after a bulk action; the rest are counted.
SHOWN_FAILURES = 10
#: Records the CSV export looks up reference titles for at once.
EXPORT_CHUNK = 500

# --- the list's state ---------------------------------------------------------------------


@dataclass(frozen=True)
class ListState:
    """What the address says about the list. ``filter`` None means "the view's own";
    an empty string means "no filter"."""

    view: str | None = None
    saved: int | None = None
    filter: str | None = None
    sort: str | None = None
    q: str = ""
    cursor: str | None = None

    @classmethod
    def read(cls, args: Mapping[str, str]) -> ListState:
        return cls(view=args.get("view") or None, saved=parse_id(args.get("saved")),
                   filter=args.get("filter"), sort=args.get("sort") or None,
                   q=(args.get("q") or "").strip()[:200], cursor=args.get("cursor") or None)

    def params(self, **changes: Any) -> dict[str, Any]:
        """The state as query parameters, with ``changes``; a new page starts at the first."""
        values: dict[str, Any] = {"view": self.view, "saved": self.saved,
                                  "filter": self.filter, "sort": self.sort,
                                  "q": self.q or None, "cursor": None}
        values.update(changes)
        return {k: v for k, v in values.items() if v is not None and (v != "" or k == "filter")}

    def url(self, entity: str, **changes: Any) -> str:
        return url_for("screens.list_view", entity=entity, **self.params(**changes))


@dataclass
class Listing:
    """The list as the engine will run it: the view it starts from, the columns, the
    active filter and sort, and the query (None when the engine refused it: ``error``)."""

    entity: Entity
    user: User
    grant: Grant
    view: View | None
    saved: dict[str, Any] | None
    columns: list[str]
    tree: Any = None
    sort: tuple[str, ...] = ()
    page_size: int = PAGE
    query: Query | None = None
    error: QueryError | None = None


def open_listing(ent: Entity, state: ListState, user: User) -> Listing:
    """The listing ``state`` asks for. A filter, sort, search or cursor the engine refuses
    leaves ``query`` None and the engine's error in ``error``.

    :raises NotFound: no such view definition or saved view.
    :raises PermissionDenied: the user may not read the entity.
    """
    ws = current_workspace()
    catalog = current_catalog()
    base = ws.query(ent.name, user=user)  # refuses one who may not read the entity
    view = catalog.view_for(ent.name, state.view)
    if state.view and view is None:
        raise NotFound(gettext("%(entity)s has no view %(view)s.", entity=ent.name,
                               view=state.view))
    saved = ws.saved_views.get(user, state.saved) if state.saved is not None else None
    if saved is not None and saved["entity"] != ent.name:
        raise NotFound(f"no saved view {state.saved}")
    columns = _columns(ent, user, view, saved)
    source = state.filter if state.filter is not None else (
        saved["filter"] if saved is not None else view.filter if view is not None else None)
    if state.sort:
        sort = tuple(k.strip() for k in state.sort.split(",") if k.strip())
    else:
        sort = tuple((saved or {}).get("sort") or (view.sort if view is not None else ()))
    listing = Listing(ent, user, grant_for(user, ent, catalog), view, saved, columns,
                      sort=sort, page_size=view.page_size if view is not None else PAGE)
    try:
        query = base.limit(listing.page_size)
        if source not in (None, ""):
            loaded = load_filter(source)
            query = query.filter(loaded)
            listing.tree = parse_rule(loaded)
        if state.q:
            query = query.search(state.q)
        if sort:
            query = query.sort(*sort)
        if state.cursor:
            query.statement(state.cursor)  # checks the cursor before the page runs
        listing.query = query
    except QueryError as error:
        listing.error = error
    return listing


def _columns(ent: Entity, user: User, view: View | None, saved: Mapping[str, Any] | None
             ) -> list[str]:
    """The saved view's columns, else the view's, else the entity's first fields; only
    those that exist and the user may see."""
    names = (saved or {}).get("columns") or (view.columns if view is not None else None)
    if not names:
        return default_columns(ent, user)
    known = [n for n in names if n in ent.fields or (
        n in SHOWN_SYSTEM_FIELDS and (n != "state" or ent.workflow is not None))]
    return visible_fields(ent, user, known) or default_columns(ent, user)


def load_filter(source: Any) -> Any:
    """A filter as the query takes it: JSON text (starting with ``{`` or ``[``) as its
    tree, any other text as the rule's text form.

    :raises QueryError: JSON that does not parse.
    """
    if isinstance(source, str) and source.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(source)
        except ValueError as exc:
            raise QueryError({"filter": [f"not valid JSON: {exc}"]}) from None
        except RecursionError:
            raise QueryError({"filter": ["nests too deep"]}) from None
    return source


def compact(tree: Any) -> str:
    """A tree as the short JSON the address carries."""
    return json.dumps(tree, separators=(",", ":"), ensure_ascii=False)


# --- the filter builder -------------------------------------------------------------------

#: The builder's operators for each kind of field, in the order they are offered.
OPERATORS: dict[str, tuple[str, ...]] = {
    "text": ("contains", "eq", "ne", "empty", "not_empty"),
    "number": ("eq", "ne", "lt", "le", "gt", "ge", "empty", "not_empty"),
    "date": ("before", "after", "on", "empty", "not_empty"),
    "datetime": ("before", "after", "empty", "not_empty"),
    "select": ("in", "not_in", "empty", "not_empty"),
    "boolean": ("is",),
    "list": ("has", "empty", "not_empty"),
    "ref": ("eq", "empty", "not_empty"),
}
#: The rule-language operator each builder operator writes.
TREE_OPERATORS = {"contains": "contains", "has": "contains", "eq": "==", "ne": "!=",
                  "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "before": "<", "after": ">",
                  "on": "==", "is": "=="}
#: The field kinds of the builder, by field type.
KINDS = {"integer": "number", "decimal": "number", "currency": "number", "percent": "number",
         "text": "text", "long_text": "text", "rich_text": "text", "email": "text",
         "phone": "text", "url": "text", "select": "select", "boolean": "boolean",
         "date": "date", "datetime": "datetime", "multi_select": "list", "tags": "list",
         "reference": "ref", "user": "ref"}
ROW = re.compile(r"^r(\d{1,3})f$")


def operator_labels() -> dict[str, str]:
    return {"contains": gettext("contains"), "eq": "=", "ne": "≠", "lt": "<", "le": "≤",
            "gt": ">", "ge": "≥", "before": gettext("before"), "after": gettext("after"),
            "on": gettext("on"), "in": gettext("is one of"), "not_in": gettext("is not one of"),
            "is": gettext("is"), "has": gettext("has"), "empty": gettext("is empty"),
            "not_empty": gettext("is not empty")}


def filter_fields(ent: Entity, user: User) -> list[dict[str, Any]]:
    """The fields the builder offers: ``{"name", "label", "kind", "options"}`` each, the
    hidden ones left out."""
    specs = []
    for name, found in ent.fields.items():
        kind = KINDS.get(found.type.name)
        if kind is None:
            continue
        options = []
        if found.type.name in ("select", "multi_select"):
            options = [[o, option_label(ent, name, o)[0]] for o in select_options(ent, name)]
        specs.append({"name": name, "label": field_label(ent, name), "kind": kind,
                      "options": options})
    if ent.workflow is not None:
        states = sorted(ent.workflow.states.values(), key=lambda s: getattr(s, "order", 0))
        specs.append({"name": "state", "label": field_label(ent, "state"), "kind": "select",
                      "options": [[s.name, state_label(ent, s.name)] for s in states]})
    specs += [{"name": n, "label": field_label(ent, n), "kind": "datetime", "options": []}
              for n in ("created_at", "updated_at")]
    shown = set(visible_fields(ent, user, [s["name"] for s in specs]))
    return [s for s in specs if s["name"] in shown]


def condition(spec: Mapping[str, Any], op: str, values: list[str]) -> Any:
    """One builder row as a rule-language tree.

    :raises ValueError: with a message for the user: no value, or one that does not fit.
    """
    var = {"var": spec["name"]}
    if op not in OPERATORS[spec["kind"]]:
        raise ValueError(gettext("choose an operator"))
    if op in ("empty", "not_empty"):
        tree: Any = {"is_empty": [var]}
        return tree if op == "empty" else {"!": [tree]}
    if op in ("in", "not_in"):
        chosen = [v for v in values if v]
        if not chosen:
            raise ValueError(gettext("choose at least one value"))
        tree = {"in": [var, chosen]}
        return tree if op == "in" else {"!": [tree]}
    raw = (values[0] if values else "").strip()
    if raw == "":
        raise ValueError(gettext("enter a value"))
    value: Any = raw
    if spec["kind"] == "number":
        value = _number(raw)
    elif spec["kind"] in ("date", "datetime"):
        try:
            value = {"date": [dt.date.fromisoformat(raw).isoformat()]}
        except ValueError:
            raise ValueError(gettext("enter a date as YYYY-MM-DD")) from None
    elif spec["kind"] == "boolean":
        value = raw in ("true", "on", "1", "yes")
    return {TREE_OPERATORS[op]: [var, value]}


def _number(raw: str) -> int | float:
    try:
        number = float(raw.replace(",", ""))
    except ValueError:
        raise ValueError(gettext("enter a number")) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(gettext("enter a number"))
    return int(number) if number.is_integer() and "." not in raw else number


def join_rows(trees: list[Any], join: str) -> Any:
    """The rows' trees as one condition (None when there are none)."""
    if not trees:
        return None
    return trees[0] if len(trees) == 1 else {join: trees}


def read_builder(args: Mapping[str, Any], specs: list[dict[str, Any]]
                 ) -> tuple[str, list[dict[str, Any]], dict[int, str]]:
    """The builder's submitted rows ``r<n>f`` / ``r<n>o`` / ``r<n>v``, in order, with a
    message for each row that does not make a condition (by position); each row keeps
    what the user entered, and its tree under ``tree`` when it makes one."""
    by_name = {s["name"]: s for s in specs}
    join = "or" if args.get("join") == "or" else "and"
    numbers = sorted(int(m.group(1)) for m in map(ROW.match, args) if m)
    rows: list[dict[str, Any]] = []
    errors: dict[int, str] = {}
    for n in numbers:
        name, op = args.get(f"r{n}f", ""), args.get(f"r{n}o", "")
        values = (args.getlist(f"r{n}v") if hasattr(args, "getlist")
                  else [args.get(f"r{n}v", "")])
        row: dict[str, Any] = {"field": name, "op": op, "value": values}
        spec = by_name.get(name)
        try:
            if spec is None:
                raise ValueError(gettext("choose a field"))
            row["tree"] = condition(spec, op, values)
        except ValueError as exc:
            label_text = spec["label"] if spec else gettext("Condition %(n)s", n=len(rows) + 1)
            errors[len(rows)] = f"{label_text}: {exc}"
        rows.append(row)
    return join, rows, errors


def tree_rows(tree: Any, specs: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]] | None:
    """The builder's rows for a tree it could have written (also the text a dashboard
    links with, ``stage == "won"``); None for any other tree."""
    if tree is None:
        return "and", []
    join, parts = "and", [tree]
    if isinstance(tree, Mapping) and len(tree) == 1 and next(iter(tree)) in ("and", "or"):
        join, parts = next(iter(tree.items()))
        if not isinstance(parts, list):
            return None
    by_name = {s["name"]: s for s in specs}
    rows = [_row_of(part, by_name) for part in parts]
    if any(row is None for row in rows):
        return None
    return join, [{**row, "tree": part} for row, part in zip(rows, parts, strict=True)
                  if row is not None]


def _operation(node: Any) -> tuple[str, list[Any]] | None:
    if not isinstance(node, Mapping) or len(node) != 1:
        return None
    op, args = next(iter(node.items()))
    return (op, args if isinstance(args, list) else [args])


def _row_of(node: Any, by_name: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    found = _operation(node)
    if found is None:
        return None
    op, args = found
    negated = op == "!" and len(args) == 1
    if negated:
        inner = _operation(args[0])
        if inner is None or inner[0] not in ("in", "is_empty"):
            return None
        op, args = inner
    if not args or not isinstance(args[0], Mapping) or set(args[0]) != {"var"}:
        return None
    spec = by_name.get(args[0]["var"])
    if spec is None:
        return None
    row = _builder_row(spec, op, args[1:], negated)
    if row is None or row["op"] not in OPERATORS[spec["kind"]]:
        return None
    return {"field": spec["name"], **row}


def _builder_row(spec: Mapping[str, Any], op: str, rest: list[Any], negated: bool
                 ) -> dict[str, Any] | None:
    kind = spec["kind"]
    if op == "is_empty" and not rest:
        return {"op": "not_empty" if negated else "empty", "value": []}
    if len(rest) != 1:
        return None
    value = rest[0]
    if op == "in" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {"op": "not_in" if negated else "in", "value": list(value)}
    if negated:
        return None
    if kind in ("date", "datetime"):
        date = _operation(value)
        if date is None or date[0] != "date" or len(date[1]) != 1:
            return None
        names = {"<": "before", ">": "after", "==": "on"}
        return {"op": names[op], "value": [str(date[1][0])]} if op in names else None
    if kind == "boolean":
        return {"op": "is", "value": [json.dumps(value)]} if op == "==" and isinstance(
            value, bool) else None
    if kind == "select" and op == "==" and isinstance(value, str):
        return {"op": "in", "value": [value]}
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        names = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
        return {"op": names[op], "value": [json.dumps(value)]} if op in names else None
    if isinstance(value, str):
        names = {"==": "eq", "!=": "ne", "contains": "has" if kind == "list" else "contains"}
        return {"op": names[op], "value": [value]} if op in names else None
    return None


def chip_text(spec: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    """A condition as the user reads it: ``Stage is one of Won, Lost``."""
    words = operator_labels()[row["op"]]
    options = dict(map(tuple, spec["options"]))
    if spec["kind"] == "boolean":
        shown = [gettext("Yes") if v == "true" else gettext("No") for v in row["value"]]
    else:
        shown = [str(options.get(v, v)) for v in row["value"]]
    return " ".join(p for p in (spec["label"], words, ", ".join(shown)) if p)


def rule_text(tree: Any) -> str:
    """A tree's text form (its JSON when it has none)."""
    try:
        return to_text(tree)
    except ValueError:
        return compact(tree)


# --- the page -----------------------------------------------------------------------------


@bp.get("/<entity>")
def list_view(entity: str) -> Response | tuple[str, int]:
    """One page of an entity's records. A submitted filter builder (``b``) becomes the
    ``filter`` parameter (a JSON tree) and the page is shown again at its address."""
    user = the_user()
    ent = current_catalog().entity(entity)
    state = ListState.read(request.args)
    if "b" in request.args:
        specs = filter_fields(ent, user)
        join, rows, errors = read_builder(request.args, specs)
        if not errors:
            tree = join_rows([row["tree"] for row in rows], join)
            return redirect(state.url(ent.name, filter="" if tree is None else compact(tree)))
        listing = open_listing(ent, state, user)
        return render_list(listing, state, builder=(join, rows, errors), status=400)
    return render_list(open_listing(ent, state, user), state)


def render_list(listing: Listing, state: ListState, *, status: int = 200,
                builder: tuple[str, list[dict[str, Any]], dict[int, str]] | None = None,
                save_errors: Mapping[str, list[str]] | None = None,
                save_name: str = "") -> tuple[str, int]:
    """The list page; a refused query shows the engine's message and no rows (400)."""
    ent, user = listing.entity, listing.user
    page = listing.query.page(state.cursor) if listing.query is not None else None
    if listing.error is not None:
        status = 400
    specs = filter_fields(ent, user)
    rows_of = tree_rows(listing.tree, specs)
    join, rows, row_errors = builder or ((rows_of or ("and", []))[0],
                                         (rows_of or ("and", []))[1], {})
    items = page.items if page is not None else []
    titles = reference_titles(ent, items, listing.columns, user)
    shown = [formatter(ent, name, titles) for name in listing.columns]
    lines = [{"id": r["id"], "url": record_url(ent.name, r["id"]),
              "cells": [show(r) for show in shown]} for r in items]
    return render_template(
        "app/list.html", nav=navigation(user), entity=ent, title=label(ent.label, ent.name),
        state=state, url=lambda **changes: state.url(ent.name, **changes),
        columns=_header(listing, state), page=page, lines=lines,
        error=_error_text(listing.error) if listing.error else None,
        views=_views(listing, state), chips=_chips(listing, state, rows_of, specs),
        filter_text=_filter_text(listing, state), filter_open=bool(
            listing.error or builder),
        spec={"fields": specs, "ops": OPERATORS, "labels": operator_labels(),
              "join": join, "rows": [{k: r[k] for k in ("field", "op", "value")}
                                     for r in rows],
              "errors": {str(k): v for k, v in row_errors.items()},
              "text": {"remove": gettext("Remove condition"), "field": gettext("Field"),
                       "operator": gettext("Operator"), "value": gettext("Value"),
                       "yes": gettext("Yes"), "no": gettext("No")}},
        row_errors=row_errors, bulk=_bulk_tools(listing),
        saving={"filter": compact(listing.tree) if listing.tree is not None else "",
                "sort": ",".join(listing.sort), "columns": ",".join(listing.columns),
                "errors": save_errors or {}, "name": save_name},
        export_url=url_for("screens.list_export", entity=ent.name, **state.params())
        if listing.grant.export else None,
        can_create=listing.grant.create, has_board=board_for(ent, user) is not None,
        searchable=bool([n for n in ent.search_fields if n not in listing.grant.hidden]),
        back=request.full_path.rstrip("?") if request.method == "GET"
        else state.url(ent.name)), status


def _header(listing: Listing, state: ListState) -> list[dict[str, Any]]:
    """The columns, each with its sort direction and the link that sorts by it (the
    other way round when it already sorts)."""
    ent = listing.entity
    first = listing.sort[0] if listing.sort else ""
    columns = []
    for name in listing.columns:
        direction = ("ascending" if first == name else "descending" if first == f"-{name}"
                     else None)
        sortable = name in SHOWN_SYSTEM_FIELDS or ent.fields[name].type.name not in (
            "json", "multi_select", "tags")
        columns.append({"name": name, "label": field_label(ent, name), "sort": direction,
                        "sort_url": state.url(ent.name, sort=name if first != name
                                              else f"-{name}") if sortable else None})
    return columns


def _error_text(error: QueryError) -> str:
    names = {"filter": gettext("Filter"), "sort": gettext("Sort"), "q": gettext("Search"),
             "cursor": gettext("Page"), "fields": gettext("Columns")}
    return "; ".join(f"{names.get(key, key)}: {', '.join(messages)}"
                     for key, messages in error.errors.items()) or error.message


def _views(listing: Listing, state: ListState) -> dict[str, Any]:
    """The view switcher: the entity's view definitions and the user's saved views."""
    ws, ent, user = current_workspace(), listing.entity, listing.user
    definitions = sorted((v for v in current_catalog().views.values() if v.entity == ent.name),
                         key=lambda v: (not v.default, v.name))
    current = listing.view.name if listing.view is not None else None
    shown = [{"label": label(v.label, v.name), "active": listing.saved is None
              and v.name == current,
              "url": state.url(ent.name, view=v.name, saved=None, filter=None, sort=None)}
             for v in definitions]
    saved = [{"id": s["id"], "label": s["name"], "shared": s["shared"],
              "own": s["owner_id"] == user.id,
              "active": listing.saved is not None and s["id"] == listing.saved["id"],
              "url": state.url(ent.name, saved=s["id"], filter=None, sort=None)}
             for s in ws.saved_views.list(user, ent.name)]
    active = listing.saved
    return {"definitions": shown if len(shown) > 1 else [], "saved": saved,
            "all_url": state.url(ent.name, view=None, saved=None, filter=None, sort=None),
            "deletable": active is not None and (active["owner_id"] == user.id
                                                 or user.is_admin),
            "active_saved": active}


def _chips(listing: Listing, state: ListState,
           rows_of: tuple[str, list[dict[str, Any]]] | None,
           specs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The active filter as chips (each with a link that drops it), or as its text."""
    if listing.tree is None:
        return None
    ent = listing.entity
    if rows_of is None:
        return {"join": None, "items": [{"text": rule_text(listing.tree), "remove_url":
                                         state.url(ent.name, filter="")}]}
    join, rows = rows_of
    by_name = {s["name"]: s for s in specs}
    items = []
    for i, row in enumerate(rows):
        rest = join_rows([r["tree"] for j, r in enumerate(rows) if j != i], join)
        items.append({"text": chip_text(by_name[row["field"]], row), "remove_url": state.url(
            ent.name, filter="" if rest is None else compact(rest))})
    return {"join": gettext("or") if join == "or" else gettext("and"), "items": items}


def _filter_text(listing: Listing, state: ListState) -> str:
    """The text box's filter: what the user typed when it was refused, else the text of
    the active filter."""
    if listing.error is not None and state.filter is not None:
        return state.filter
    return rule_text(listing.tree) if listing.tree is not None else ""


# --- saved views --------------------------------------------------------------------------


@bp.post("/<entity>/views")
def save_view(entity: str) -> Response | tuple[str, int]:
    """Save the current columns, filter and sort under a name, for the user or for all."""
    user = the_user()
    ws = current_workspace()
    ent = current_catalog().entity(entity)
    form = request.form
    state = ListState(view=form.get("view") or None, filter=form.get("filter", ""),
                      sort=form.get("sort") or None, q=(form.get("q") or "").strip())
    name = (form.get("name") or "").strip()
    listing = open_listing(ent, state, user)
    if listing.error is not None:  # a filter or sort the engine refuses is not saved
        return render_list(listing, state, status=400, save_name=name)
    columns = [c for c in (form.get("columns") or "").split(",") if c] or listing.columns
    try:
        view = ws.saved_views.save(user, ent.name, name, columns=columns,
                                   filter=listing.tree, sort=list(listing.sort) or None,
                                   shared=form.get("shared") in ("on", "true", "1"))
    except ValidationError as error:
        messages = {(gettext("Name") if key == "name" else key): msgs
                    for key, msgs in error.errors.items()}
        return render_list(listing, state, status=422, save_errors=messages, save_name=name)
    flash(gettext("View “%(name)s” saved.", name=view["name"]))
    return redirect(url_for("screens.list_view", entity=ent.name, view=state.view,
                            saved=view["id"], q=state.q or None))


@bp.post("/<entity>/views/<int:view_id>/delete")
def delete_view(entity: str, view_id: int) -> Response:
    """Delete a saved view (its owner's, or an admin's to remove)."""
    view = current_workspace().saved_views.delete(the_user(), view_id)
    flash(gettext("View “%(name)s” deleted.", name=view["name"]))
    return redirect(url_for("screens.list_view", entity=entity))


# --- bulk actions -------------------------------------------------------------------------


def _bulk_tools(listing: Listing) -> dict[str, Any] | None:
    """What the bulk bar offers this user: fields to set, transitions to take, delete;
    None when the user may do none of it."""
    ent, user, grant = listing.entity, listing.user, listing.grant
    fields = [_bulk_field(ent, name) for name in updatable(ent, grant)] if grant.update else []
    steps = [{"name": t.name, "label": label(t.label, t.name)}
             for t in (ent.workflow.transitions.values() if ent.workflow and grant.update
                       else ()) if _may_take(t.roles, user)]
    if not (fields or steps or grant.delete):
        return None
    return {"fields": fields, "transitions": steps, "delete": bool(grant.delete)}


def updatable(ent: Entity, grant: Grant) -> list[str]:
    """The fields a user may set on the entity's records."""
    return [n for n, f in ent.fields.items()
            if not f.type.computed and n not in grant.read_only and n not in grant.hidden
            and f.type.name not in ("json", "rich_text")]


def _bulk_field(ent: Entity, name: str) -> dict[str, Any]:
    """A field of the bulk update, with the input its value is asked for with."""
    kind = ent.fields[name].type.name
    inputs = {"integer": "number", "decimal": "number", "currency": "number",
              "percent": "number", "date": "date", "email": "email", "url": "url",
              "phone": "tel", "select": "select", "multi_select": "multi",
              "boolean": "boolean"}
    options = [{"value": o, "label": option_label(ent, name, o)[0]}
               for o in select_options(ent, name)] if kind in (
        "select", "multi_select") else []
    return {"name": name, "label": field_label(ent, name), "input": inputs.get(kind, "text"),
            "options": options}


def _may_take(roles: frozenset[str] | None, user: User) -> bool:
    return user.is_admin or roles is None or bool(roles & set(user.roles))


@bp.post("/<entity>/bulk")
def list_bulk(entity: str) -> Response | str:
    """Update, transition or delete the selected records, one engine call each as the
    user; then back to the list with how many succeeded and why each other one did not.
    Delete asks for confirmation first."""
    user = the_user()
    ent = current_catalog().entity(entity)
    form = request.form
    back = _back(form.get("back"), ent)
    ids = list(dict.fromkeys(i for i in form.getlist("ids") if i))
    if not ids:
        flash(gettext("Select at least one record."), "error")
        return redirect(back)
    if len(ids) > MAX_BULK:
        flash(gettext("Select at most %(n)s records at once.", n=MAX_BULK), "error")
        return redirect(back)
    titles = _titles(ent, ids, user)
    action = form.get("action", "")
    if action == "delete" and form.get("confirm") != "yes":
        return render_template("app/list_confirm.html", nav=navigation(user), entity=ent,
                               title=label(ent.label, ent.name), back=back, ids=ids,
                               records=[titles.get(i, i) for i in ids])
    try:
        act, done_text = _action(ent, action, form, user)
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(back)
    failures = []
    for record_id in ids:
        try:
            act(record_id)
        except BlocksError as error:
            failures.append((titles.get(record_id, record_id), _reason(ent, action, form,
                                                                       error)))
    _report(done_text, len(ids) - len(failures), len(ids), failures)
    return redirect(back)


def _action(ent: Entity, action: str, form: Any, user: User
            ) -> tuple[Callable[[str], Any], Callable[[int, int], str]]:
    """The engine call for one record, and the summary's sentence (given how many of
    how many succeeded).

    :raises ValueError: with a message for the user: an unknown action, field or
        transition.
    """
    records = current_workspace().records
    if action == "update":
        name = form.get("field", "")
        grant = grant_for(user, ent, current_catalog())
        if name not in updatable(ent, grant):
            raise ValueError(gettext("Choose a field to set."))
        value = parse_input(ent, name, MultiDict([(name, v) for v in form.getlist("value")]))
        shown = field_label(ent, name)
        return (lambda rid: records.update(ent.name, rid, {name: value}, user=user),
                lambda done, total: gettext(
                    "%(field)s set on %(done)s of %(total)s records.", field=shown,
                    done=done, total=total))
    if action == "transition":
        step = (ent.workflow.transitions.get(form.get("transition", ""))
                if ent.workflow is not None else None)
        if step is None:
            raise ValueError(gettext("Choose a transition."))
        named = label(step.label, step.name)
        return (lambda rid: records.transition(ent.name, rid, step.name, user=user),
                lambda done, total: gettext(
                    "“%(transition)s” taken on %(done)s of %(total)s records.",
                    transition=named, done=done, total=total))
    if action == "delete":
        return (lambda rid: records.delete(ent.name, rid, user=user),
                lambda done, total: gettext("Deleted %(done)s of %(total)s records.",
                                            done=done, total=total))
    raise ValueError(gettext("Choose what to do with the selected records."))


def _reason(ent: Entity, action: str, form: Any, error: BlocksError) -> str:
    """The engine's reason for refusing one record, with fields by their labels."""
    if isinstance(error, ValidationError):
        step = (ent.workflow.transitions.get(form.get("transition", ""))
                if action == "transition" and ent.workflow is not None else None)
        if step is not None and "" in error.errors and step.guard_message:
            return label(step.guard_message, error.message)
        return "; ".join(f"{field_label(ent, key)}: {', '.join(messages)}" if key
                         else ", ".join(messages) for key, messages in error.errors.items())
    if isinstance(error, NotFound):
        return gettext("not found, or not yours to see")
    return error.message


def _report(sentence: Callable[[int, int], str], done: int, total: int,
            failures: list[tuple[str, str]]) -> None:
    """The result summary, as flash messages: the count, then each refusal and why."""
    flash(sentence(done, total), "error" if failures and not done else "message")
    for title, reason in failures[:SHOWN_FAILURES]:
        flash(gettext("%(record)s: %(reason)s", record=title, reason=reason), "error")
    if len(failures) > SHOWN_FAILURES:
        flash(ngettext("… and %(num)d more refused.", "… and %(num)d more refused.",
                       len(failures) - SHOWN_FAILURES), "error")


def _titles(ent: Entity, ids: list[str], user: User) -> dict[str, str]:
    """The selected records' titles, read as the user (those they may not see keep
    their id)."""
    query = current_workspace().query(ent.name, user=user).filter(
        {"in": [{"var": "id"}, ids]}).limit(min(len(ids), 1000))
    shown = title_field(ent)
    if shown and shown not in grant_for(user, ent, current_catalog()).hidden:
        query = query.fields(shown)
    return {r["id"]: record_title(ent, r) for r in query.page().items}


def _back(raw: str | None, ent: Entity) -> str:
    """Where to return after a POST: the list the user came from, never another site."""
    home = url_for("screens.list_view", entity=ent.name)
    if raw and (raw == home or raw.startswith(home + "?")) and "\\" not in raw:
        return raw
    return home


# --- CSV export ---------------------------------------------------------------------------


@bp.get("/<entity>/export.csv")
def list_export(entity: str) -> Response:
    """What the list's filter, search and sort select, every page of it, as CSV: the
    view's columns (by label) with values as plain text, streamed a chunk at a time.

    :raises PermissionDenied: the user may not export the entity (a 403 page).
    """
    user = the_user()
    ent = current_catalog().entity(entity)
    listing = open_listing(ent, ListState.read(request.args), user)
    if listing.error is not None or listing.query is None:
        raise listing.error or QueryError({"filter": ["refused"]})
    records = listing.query.export(chunk=EXPORT_CHUNK)
    columns = listing.columns
    header = [field_label(ent, n) for n in columns]

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        yield "\ufeff" + buffer.getvalue()  # the mark spreadsheets read UTF-8 by
        # The file is written after the request's own snapshot has ended: its pages
        # share one of their own, so a record saved meanwhile is neither missed nor
        # written twice.
        with current_workspace().snapshot():
            for chunk in _chunks(records, EXPORT_CHUNK):
                buffer.seek(0)
                buffer.truncate()
                titles = reference_titles(ent, chunk, columns, user)
                writer.writerows([plain(ent, n, r, titles) for n in columns] for r in chunk)
                yield buffer.getvalue()

    filename = f"{ent.name}-{dt.date.today().isoformat()}.csv"
    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


#: First characters a spreadsheet reads as a formula: such text gets a leading quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain(ent: Entity, name: str, record: Mapping[str, Any],
          titles: Mapping[str, str]) -> str:
    """One value as plain text for a CSV cell: options and states by label, references
    by title, rich text without tags; numbers and dates as the API writes them."""
    value = record.get(name)
    if value is None or value == "" or value == []:
        return ""
    found = ent.fields.get(name)
    kind = found.type.name if found is not None else ""
    if name == "state":
        text = state_label(ent, value)
    elif kind == "select":
        text = option_label(ent, name, value)[0]
    elif kind in ("multi_select", "tags"):
        text = ", ".join(option_label(ent, name, v)[0] for v in value)
    elif kind == "boolean":
        text = gettext("Yes") if value else gettext("No")
    elif kind == "reference":
        text = titles.get(value, str(value))
    elif kind == "rich_text":
        text = html.unescape(nh3.clean(str(value), tags=set()))
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))  # 300, as on every database, not PostgreSQL's 300.0
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    if not isinstance(value, int | float) and text.startswith(FORMULA_START):
        text = "'" + text
    return text


__all__ = ["ListState", "Listing", "condition", "load_filter", "open_listing", "plain",
           "read_builder", "tree_rows"]

