"""What every screen shares: the user, the navigation, field labels, and a field's value
shown for the user (formatted, linked, sanitised, escaped)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import nh3
from flask import g, url_for
from markupsafe import Markup, escape

from blockscrm.engine import Entity, User
from blockscrm.engine.access import grant_for
from blockscrm.engine.errors import BlocksError
from blockscrm.engine.presentation import Form
from blockscrm.engine.workspace import Catalog

from ..auth import current_user
from ..extension import current_workspace
from ..i18n import (
    format_date,
    format_datetime,
    format_money,
    format_number,
    format_percent,
    gettext,
    label,
)


def N_(message: str) -> str:
    """Marks a string for the translation catalogue; :func:`gettext` translates it later."""
    return message


#: The system fields' labels, translated like the rest of the platform's text.
#: System fields that hold a user's id.
PEOPLE_FIELDS = ("owner_id", "created_by", "updated_by")
SYSTEM_LABELS = {"id": N_("ID"), "state": N_("State"), "owner_id": N_("Owner"),
                 "created_at": N_("Created"), "updated_at": N_("Updated"),
                 "created_by": N_("Created by"), "updated_by": N_("Updated by"),
                 "version": N_("Version")}


def current_catalog() -> Catalog:
    """The published metadata for this request: checked once, however many parts of the
    page ask (a publish lands between two pages, never within one)."""
    if "catalog" not in g:
        g.catalog = current_workspace().catalog()
    found: Catalog = g.catalog
    return found


#: The largest id or version a column holds (BIGINT); past it nothing can match.
MAX_ID = 2**63 - 1
COLOR = re.compile(r"#[0-9A-Fa-f]{3,8}|[a-z]{3,20}|(rgb|hsl)a?\([0-9., %]{1,40}\)")


def parse_id(raw: Any) -> int | None:
    """A positive id or version from a request (``"12"``), else None: digits in other
    scripts (``"²"``) and numbers past 64 bits are no id, and must not reach the database."""
    text = str(raw or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def the_user() -> User:
    """The logged-in user (the blueprint lets no one else in)."""
    user = current_user()
    assert user is not None
    return user


def navigation(user: User) -> dict[str, list[dict[str, str]]]:
    """The entities the user may read and the dashboards meant for their roles, by label."""
    catalog = current_catalog()
    entities = [{"name": e.name, "label": label(e.label, e.name)}
                for e in catalog.entities.values()
                if grant_for(user, e, catalog).read is not None]
    boards = [{"name": d.name, "label": label(d.label, d.name)}
              for d in catalog.dashboards.values()
              if user.is_admin or not d.roles or d.roles & set(user.roles)]
    return {"entities": sorted(entities, key=lambda i: i["label"].lower()),
            "dashboards": sorted(boards, key=lambda i: i["label"].lower())}


def field_label(entity: Entity, name: str) -> str:
    found = entity.fields.get(name)
    if found is not None:
        return label(found.label, name)
    return gettext(SYSTEM_LABELS.get(name, name))


def visible_fields(entity: Entity, user: User, names: Iterable[str]) -> list[str]:
    """``names`` without those hidden from the user."""
    hidden = grant_for(user, entity, current_catalog()).hidden
    return [n for n in names if n not in hidden]


def default_columns(entity: Entity, user: User, count: int = 6) -> list[str]:
    shown = [n for n, f in entity.fields.items() if f.type.name not in ("json", "rich_text")]
    state = ["state"] if entity.workflow is not None else []
    return visible_fields(entity, user, shown[:count] + state)


def title_field(entity: Entity) -> str | None:
    """The field that names a record: ``x-title-field``, else the first text field."""
    named = entity.document.get("x-title-field")
    if named:
        return str(named)
    return next((n for n, f in entity.fields.items() if f.type.name == "text"), None)


def record_title(entity: Entity, record: Mapping[str, Any]) -> str:
    name = title_field(entity)
    value = record.get(name) if name else None
    return str(value) if value not in (None, "") else str(record.get("id", ""))


def reference_titles(entity: Entity, records: Iterable[Mapping[str, Any]],
                     names: Iterable[str], user: User) -> dict[str, str]:
    """The titles of the records the reference fields ``names`` point at, by id (one
    query per target, as the user: what they may not read keeps its id)."""
    ws = current_workspace()
    rows = list(records)
    titles: dict[str, str] = {}
    names = list(names)
    people = {r[n] for r in rows for n in names if is_person(entity, n) and r.get(n)}
    if people:  # owners and user fields: by the person's name
        titles.update(ws.accounts.names(people))
    for name in names:
        found = entity.fields.get(name)
        if found is None or not found.ref:
            continue
        ids = sorted({r[name] for r in rows if r.get(name)} - set(titles))
        if not ids:
            continue
        target = current_catalog().entity(found.ref)
        shown = title_field(target)
        try:
            query = ws.query(target.name, user=user).filter(
                {"in": [{"var": "id"}, ids]}).limit(len(ids))
            if shown:
                query = query.fields(shown)
            for item in query.page().items:
                titles[item["id"]] = record_title(target, item)
        except BlocksError:
            continue
    return titles


def is_person(entity: Entity, name: str) -> bool:
    """Whether the field holds a user's id (an owner, an author, a user field)."""
    found = entity.fields.get(name)
    return name in PEOPLE_FIELDS or (found is not None and found.type.name == "user")


def option_label(entity: Entity, name: str, value: Any) -> tuple[str, str | None]:
    """A select option's label and colour."""
    found = entity.fields.get(name)
    options = (found.schema.get("x-options") or {}) if found else {}
    option = (options.get(value) if isinstance(value, str) else None) or {}
    return label(option.get("label"), str(value)), safe_color(option.get("color"))


def select_options(entity: Entity, name: str) -> list[Any]:
    """A select's (or multi-select's) values in their order: ``x-options``, else the
    ``enum`` (of the field, or of its items)."""
    found = entity.fields.get(name)
    if found is None:
        return []
    schema = found.schema
    items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
    return list(schema.get("x-options") or schema.get("enum") or (items or {}).get("enum")
                or [])


def safe_color(color: Any) -> str | None:
    """A colour fit for a ``style`` attribute (a name, ``#hex``, ``rgb(…)``), else None:
    metadata must not smuggle other CSS into the page."""
    return color if isinstance(color, str) and COLOR.fullmatch(color) else None


def state_label(entity: Entity, state: Any) -> str:
    workflow = entity.workflow
    found = workflow.states.get(state) if workflow is not None else None
    return label(getattr(found, "label", None), str(state or ""))


def record_url(entity: str, record_id: str) -> str:
    """The record view's address: built once per entity and request, then completed with
    each id (a list links every row)."""
    prefixes = g.setdefault("record_urls", {})
    if entity not in prefixes:
        prefixes[entity] = url_for("screens.record_view", entity=entity, record_id="-")[:-1]
    return f"{prefixes[entity]}{record_id}"


def sanitize(html: str) -> Markup:
    """Rich text as HTML safe to show: nh3 (the Ammonia sanitiser) keeps formatting and
    links and drops scripts, handlers and styles."""
    return Markup(nh3.clean(html))


Formatter = Callable[[Mapping[str, Any]], Markup]
EMPTY = Markup("")


def display(entity: Entity, name: str, record: Mapping[str, Any],
            titles: Mapping[str, str] | None = None) -> Markup:
    """One value of a record as the user reads it: formatted for their language, a
    reference as a link to its record, an option with its colour; everything escaped."""
    return formatter(entity, name, titles)(record)


def formatter(entity: Entity, name: str, titles: Mapping[str, str] | None = None
              ) -> Formatter:
    """:func:`display` for one field, decided once: a list shows the same column on every
    row, so it asks for the field's formatter once and calls it per record."""
    found = entity.fields.get(name)
    kind = found.type.name if found is not None else "text"
    if name == "state":
        kind = "state"
    elif name in ("created_at", "updated_at"):
        kind = "datetime"
    elif name in PEOPLE_FIELDS:
        kind = "user"
    shown = _plain_formatter(entity, name, kind, found, titles or {})

    def show(record: Mapping[str, Any]) -> Markup:
        value = record.get(name)
        if value is None or value == "" or value == []:
            return EMPTY
        try:
            return shown(value, record)
        except (ValueError, TypeError, ArithmeticError, OverflowError):
            # a value of another shape (an old audit entry from before the field's type
            # changed, a date past what the user's time zone can show): as it is
            return escape(str(value))

    return show


def _plain_formatter(entity: Entity, name: str, kind: str, found: Any,
                     titles: Mapping[str, str]) -> Callable[[Any, Mapping[str, Any]], Markup]:
    """How to show one non-empty value of a field of this kind."""
    if kind == "state":
        return _memo(lambda value, _: _state_chip(entity, value))
    if found is not None and found.type.display is not None:  # a plugin's type
        return lambda value, _: escape(found.type.display(value))
    if kind == "select":
        return _memo(lambda value, _: _chip(*option_label(entity, name, value)))
    if kind in ("multi_select", "tags"):
        return lambda value, _: Markup(" ").join(
            _chip(*option_label(entity, name, v)) for v in value)
    if kind == "boolean":
        yes = Markup('<span aria-label="%s">✓</span>') % gettext("Yes")
        no = Markup('<span aria-label="%s">—</span>') % gettext("No")
        return lambda value, _: yes if value else no
    if kind == "currency":
        fixed = found.schema.get("x-currency")
        other = found.schema.get("x-currency-field") or ""
        return lambda value, record: escape(format_money(value, fixed or record.get(other)))
    if kind == "percent":
        return lambda value, _: escape(format_percent(value))
    if kind in ("integer", "decimal"):
        return lambda value, _: escape(format_number(value))
    if kind == "date":
        return _memo(lambda value, _: escape(format_date(value)))
    if kind == "datetime":
        return lambda value, _: escape(format_datetime(value))
    if kind == "reference" and found.ref:
        return lambda value, _: Markup('<a href="%s">%s</a>') % (
            record_url(found.ref, value), titles.get(value, value))
    if kind == "user":
        return lambda value, _: escape(titles.get(value, value))
    if kind == "rich_text":
        return lambda value, _: sanitize(str(value))
    if kind == "url":
        return lambda value, _: Markup(
            '<a href="%s" rel="noopener noreferrer" target="_blank">%s</a>') % (
            value if str(value).startswith(("http://", "https://")) else "#", value)
    if kind == "email":
        return lambda value, _: Markup('<a href="mailto:%s">%s</a>') % (value, value)
    return lambda value, _: escape(str(value))


def _memo(show: Callable[[Any, Mapping[str, Any]], Markup]
          ) -> Callable[[Any, Mapping[str, Any]], Markup]:
    """For values that repeat down a column (options, states, dates): each shown once."""
    seen: dict[Any, Markup] = {}

    def shown(value: Any, record: Mapping[str, Any]) -> Markup:
        if value not in seen:
            seen[value] = show(value, record)
        return seen[value]

    return shown


def _state_chip(entity: Entity, value: Any) -> Markup:
    workflow = entity.workflow
    state = workflow.states.get(value) if workflow is not None else None
    color = safe_color(getattr(state, "color", None))
    if color:
        return Markup('<span class="state" style="--chip: %s">%s</span>') % (
            color, state_label(entity, value))
    return Markup('<span class="state">%s</span>') % state_label(entity, value)


def _chip(text: str, color: str | None) -> Markup:
    if color:
        return Markup('<span class="chip" style="--chip: %s">%s</span>') % (color, text)
    return Markup('<span class="chip">%s</span>') % text


def layout(entity: Entity, user: User) -> list[dict[str, Any]]:
    """The record's form layout for this user, from the entity's published form."""
    return form_layout(entity, user, current_catalog().form_for(entity.name))


def form_layout(entity: Entity, user: User, form: Form | None) -> list[dict[str, Any]]:
    """``form``'s layout for this user: ``[{"label", "sections": [{"label", "columns",
    "fields"}]}]`` (no form: every field, two columns), without the fields hidden from the
    user. The designer's preview lays out a form not yet published with it."""
    if form is not None:
        tabs = form.tabs
    else:
        names = tuple(n for n, f in entity.fields.items() if not f.type.computed)
        tabs = ((None, ((None, 2, names),)),)
    shown = set(visible_fields(entity, user, entity.fields))
    answer = []
    for tab_label, sections in tabs:
        parts = [{"label": label(section_label, "") if section_label else None,
                  "columns": columns, "fields": [n for n in names if n in shown]}
                 for section_label, columns, names in sections]
        answer.append({"label": label(tab_label, "") if tab_label else None,
                       "sections": [p for p in parts if p["fields"]]})
    return [tab for tab in answer if tab["sections"]]


def parse_input(entity: Entity, name: str, form: Any) -> Any:
    """A field's value from an HTML form (``request.form``): empty is None, numbers and
    booleans converted, lists from repeated inputs. Text that is no number stays text, so
    the engine refuses it naming the field and the form keeps what the user typed."""
    found = entity.fields.get(name)
    kind = (found.type.widget or found.type.name) if found is not None else "text"
    if kind in ("multi_select",):
        return [v for v in form.getlist(name) if v] or None
    if kind == "tags":
        return [t.strip() for t in (form.get(name) or "").split(",") if t.strip()] or None
    if kind == "boolean":
        return form.get(name) in ("on", "true", "1", "yes")
    raw = form.get(name)
    if raw is None or raw.strip() == "":
        return None
    if kind == "integer":
        try:
            return int(raw.replace(",", "").strip())
        except ValueError:
            return raw
    if kind in ("decimal", "currency", "percent"):
        try:
            number = float(raw.replace(",", "").strip())
        except ValueError:
            return raw
        return int(number) if number.is_integer() and "." not in raw else number
    if kind == "json":
        import json

        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw
