"""Create and edit a record from its form definition: tabs, sections and columns, one
widget per field type, conditional flags (visible, required, read-only) evaluated live and
again on save, errors next to their fields with the user's input kept, and a stale
version shown as a conflict rather than a lost edit.

The engine decides what is valid and what the user may do; this module only turns form
input into values (dates into UTC, text into numbers) and the engine's answers into a page.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from babel import numbers
from flask import g, get_template_attribute, jsonify, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from blockscrm.engine import Entity, User
from blockscrm.engine.access import Grant, grant_for
from blockscrm.engine.errors import (
    ActionFailed,
    BlocksError,
    Conflict,
    Locked,
    NotFound,
    PermissionDenied,
    QueryError,
    ValidationError,
)
from blockscrm.engine.presentation import Form
from blockscrm.engine.records import schema_errors
from blockscrm.engine.rules import Env

from ..extension import current_workspace
from ..i18n import current_language, gettext, label, time_zone
from . import bp
from .helpers import (
    current_catalog,
    field_label,
    form_layout,
    layout,
    navigation,
    option_label,
    parse_id,
    parse_input,
    record_title,
    reference_titles,
    select_options,
    the_user,
    title_field,
)

#: Matches a reference lookup answers.
LOOKUP_HITS = 8
#: Field types whose input is a number, and the JSON values that fit them.
NUMBER_KINDS = ("integer", "decimal", "currency", "percent")
#: Field types shown across the whole section, whatever its columns.
WIDE_KINDS = ("long_text", "rich_text", "json", "multi_select")
#: The input each field type is asked for with: the ``type`` of an ``<input>``, else
#: ``checkbox``, ``select`` or ``textarea`` (the form draws those with widgets of their
#: own; the kanban's move dialog builds them from these names). Other types: ``text``.
INPUT_TYPES = {"text": "text", "email": "email", "phone": "tel", "url": "url",
               "integer": "number", "decimal": "number", "currency": "number",
               "percent": "number", "date": "date", "datetime": "datetime-local",
               "tags": "text", "boolean": "checkbox", "select": "select",
               "long_text": "textarea", "rich_text": "textarea"}
Flags = dict[str, dict[str, bool]]


@dataclass
class FormPage:
    """What one rendering of the form shows: the inputs' values as the user sees them
    (text, lists of options, booleans), errors per field, the flags, and a conflict."""

    shown: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    top: list[str] = field(default_factory=list)
    flags: Flags = field(default_factory=dict)
    conflict: list[dict[str, Any]] | None = None


# --- routes -------------------------------------------------------------------------------


@bp.get("/<entity>/new")
def new_record(entity: str) -> str:
    """An empty form, filled from the entity's static defaults and the query's arguments
    (``?account=<id>`` from a record's "add related")."""
    user, ent = the_user(), _entity(entity)
    _grant(ent, user).require("create")
    form = current_catalog().form_for(ent.name)
    page = _new_page(ent, user, form, _editable(ent, user, {}), request.args)
    return _render(ent, user, page, None)


def preview(ent: Entity, user: User, form: Form, typed: MultiDict[str, str]) -> str:
    """The fields of a new record's form as ``form``, a definition not yet published,
    lays them out: the very widgets, defaults and rule flags the new-record screen shows,
    with what the designer typed into the preview (``typed``) for the rules to read."""
    tabs = form_layout(ent, user, form)
    names = _names(tabs)
    locked = _locked_among(ent, user, names)
    page = _new_page(ent, user, form, [n for n in names if n not in locked], typed)
    body = get_template_attribute("app/_widgets.html", "form_body")
    return str(body(**_body(ent, user, page, tabs, locked), record=None))


def _new_page(ent: Entity, user: User, form: Form | None, names: list[str],
              given: MultiDict[str, str]) -> FormPage:
    """A new record's form: the entity's static defaults and the values ``given`` (the
    query's arguments, ``?account=<id>`` from a record's "add related") in the fields
    ``names``, flagged by ``form``'s rules."""
    shown = {n: _shown(ent, n, v) for n, v in ent.schema_defaults.items() if n in names}
    filled = [n for n in names if given.get(n)]
    shown.update({n: _posted_shown(ent, n, given) for n in filled})
    values = {**ent.schema_defaults, **_parsed(ent, filled, given)}
    return FormPage(shown, flags=_rule_flags(form, ent, user, values))


@bp.post("/<entity>/new")
def create_record(entity: str) -> Response | tuple[str, int]:
    user, ent = the_user(), _entity(entity)
    page, values = _read_post(ent, user, None)
    sent = {k: v for k, v in values.items() if v is not None and v != []}
    if not page.errors:
        try:
            saved = current_workspace().records.create(ent.name, sent, user=user)
        except (ValidationError, Locked, ActionFailed) as exc:
            return _refused(ent, user, page, None, exc)
        return redirect(url_for("screens.record_view", entity=ent.name, record_id=saved["id"]))
    _add_schema_problems(ent, user, page, {**ent.schema_defaults, **sent})
    return _render(ent, user, page, None), 422


@bp.get("/<entity>/<record_id>/edit")
def edit_record(entity: str, record_id: str) -> str:
    user, ent = the_user(), _entity(entity)
    _grant(ent, user).require("update")
    record = current_workspace().records.get(ent.name, record_id, user=user)
    shown = {n: _shown(ent, n, record.get(n)) for n in _on_form(ent, user)}
    page = FormPage(shown, flags=_flags(ent, user, record))
    return _render(ent, user, page, record)


@bp.post("/<entity>/<record_id>/edit")
def update_record(entity: str, record_id: str) -> Response | tuple[str, int]:
    user, ent = the_user(), _entity(entity)
    ws = current_workspace()
    record = ws.records.get(ent.name, record_id, user=user)
    page, values = _read_post(ent, user, record)
    version = parse_id(request.form.get("version")) or record["version"]
    if page.errors:
        stored = {n: record.get(n) for n in ent.fields if not ent.fields[n].type.computed}
        _add_schema_problems(ent, user, page, {**stored, **values})
        return _render(ent, user, page, {**record, "version": version}), 422
    try:
        ws.records.update(ent.name, record_id, values, version=version, user=user)
    except Conflict:
        stored = ws.records.get(ent.name, record_id, user=user)
        page.conflict = _differences(ent, user, values, stored)
        return _render(ent, user, page, stored), 409
    except (ValidationError, Locked, ActionFailed) as exc:
        return _refused(ent, user, page, {**record, "version": version}, exc)
    return redirect(url_for("screens.record_view", entity=ent.name, record_id=record_id))


@bp.get("/<entity>/lookup/<name>")
def lookup(entity: str, name: str) -> str:
    """The records of a reference field's target matching what the user typed, as a
    short list to pick from (read as the user: they see only what they may read)."""
    user, ent = the_user(), _entity(entity)
    found = ent.fields.get(name)
    if found is None or not found.ref or name not in _on_form(ent, user):
        raise NotFound(f"{ent.name} has no reference field {name!r} on its form")
    text = request.args.get("q", "").strip()[:200]
    try:
        hits = _lookup_hits(found.ref, text, user) if text else []
    except (PermissionDenied, QueryError):
        hits = []  # a target the user may not read offers nothing to pick
    results = get_template_attribute("app/_widgets.html", "lookup_results")
    return str(results(name, hits, text))


@bp.post("/<entity>/flags")
def form_flags(entity: str) -> Response:
    """The form's flags for what the user has typed so far, as JSON
    (``{field: {"visible", "required", "read_only"}}``)."""
    user, ent = the_user(), _entity(entity)
    record: dict[str, Any] = {}
    record_id = request.form.get("_record")
    if record_id:
        record = current_workspace().records.get(ent.name, record_id, user=user)
    names = _editable(ent, user, {})
    values = _parsed(ent, [n for n in names if _posted(n, request.form)], request.form)
    return jsonify(_flags(ent, user, {**record, **values}))


# --- reading the form -------------------------------------------------------------------


def _entity(name: str) -> Entity:
    return current_catalog().entity(name)


def _grant(ent: Entity, user: User) -> Grant:
    return grant_for(user, ent, current_catalog())


def _layout(ent: Entity, user: User) -> list[dict[str, Any]]:
    """The user's form layout, worked out once per request."""
    cache = g.setdefault("forms_layouts", {})
    if ent.name not in cache:
        cache[ent.name] = layout(ent, user)
    found: list[dict[str, Any]] = cache[ent.name]
    return found


def _on_form(ent: Entity, user: User) -> list[str]:
    """The fields of the user's layout, in order."""
    return _names(_layout(ent, user))


def _names(tabs: list[dict[str, Any]]) -> list[str]:
    """The fields of a layout, in order."""
    return [n for tab in tabs for section in tab["sections"] for n in section["fields"]]


def _locked(ent: Entity, user: User) -> set[str]:
    """Fields the user sees but may never write here: read-only for their roles, computed."""
    return _locked_among(ent, user, _on_form(ent, user))


def _locked_among(ent: Entity, user: User, names: Iterable[str]) -> set[str]:
    grant = _grant(ent, user)
    return {n for n in names
            if n in grant.read_only or n not in ent.fields or ent.fields[n].type.computed}


def _editable(ent: Entity, user: User, flags: Flags) -> list[str]:
    """The fields a save sends: on the form, writable, not hidden or locked by a rule."""
    locked = _locked(ent, user)
    return [n for n in _on_form(ent, user) if n not in locked
            and flags.get(n, {}).get("visible", True)
            and not flags.get(n, {}).get("read_only", False)]


def field_kind(ent: Entity, name: str) -> str:
    """The field's type name (``text`` for a system field); for a plugin's type, the
    built-in type whose input it uses (its ``widget``)."""
    found = ent.fields.get(name)
    return (found.type.widget or found.type.name) if found is not None else "text"


def _posted(name: str, form: MultiDict[str, str]) -> bool:
    """Whether the form carries the field (an unchecked box or no option is carried too:
    its marker input says the widget was there)."""
    return name in form or f"_{name}_present" in form


def _parsed(ent: Entity, names: Iterable[str], form: MultiDict[str, str]) -> dict[str, Any]:
    """Each field's value from the form, as the engine takes it: datetimes in UTC."""
    values = {}
    for name in names:
        value = parse_input(ent, name, form)
        if field_kind(ent, name) == "datetime" and isinstance(value, str):
            value = _to_utc(value)
        values[name] = value
    return values


def _read_post(ent: Entity, user: User, record: Mapping[str, Any] | None
               ) -> tuple[FormPage, dict[str, Any]]:
    """The posted form: the inputs as typed (to show them again), the values to save
    (without what rules hide or lock), the flags, and the errors found before saving."""
    form = request.form
    writable = _editable(ent, user, {})
    typed = _parsed(ent, writable, form)
    flags = _flags(ent, user, {**(record or {}), **typed})
    sent = set(_editable(ent, user, flags))
    values = {n: v for n, v in typed.items() if n in sent}
    shown = {n: _shown(ent, n, (record or {}).get(n)) for n in _on_form(ent, user)}
    shown.update({n: _posted_shown(ent, n, form) for n in writable})
    page = FormPage(shown, flags=flags)
    for name in sent:
        for message in _input_problems(ent, name, form, values[name], flags):
            page.errors.setdefault(name, []).append(message)
    return page, values


def _input_problems(ent: Entity, name: str, form: MultiDict[str, str], value: Any,
                    flags: Flags) -> list[str]:
    """What is wrong with one input before the engine sees it: a rule requires it, or its
    text is no JSON, no date and time."""
    raw = (form.get(name) or "").strip()
    kind = field_kind(ent, name)
    if flags.get(name, {}).get("required") and value in (None, "", []):
        return [gettext("Required")]
    if kind == "json" and raw and isinstance(value, str):
        try:
            json.loads(raw)
        except ValueError:
            return [gettext("Not valid JSON")]
    if kind == "datetime" and raw and value == raw:
        return [gettext("Not a date and time")]
    return []


def _add_schema_problems(ent: Entity, user: User, page: FormPage,
                         record: Mapping[str, Any]) -> None:
    """The record schema's complaints too, for fields without an error yet: when the form
    itself refuses a save, the user still learns of every bad field at once."""
    values = {k: v for k, v in record.items() if v is not None and v != "" and v != []}
    problems = ValidationError([(name, message) for name, message in schema_errors(ent, values)
                                if name not in page.errors])
    if problems.errors:
        _into_page(ent, user, page, problems)


# --- values between the record and the inputs ---------------------------------------------


def _shown(ent: Entity, name: str, value: Any) -> Any:
    """A stored value as its input shows it."""
    kind = field_kind(ent, name)
    if value is None:
        return [] if kind == "multi_select" else False if kind == "boolean" else ""
    if kind == "multi_select":
        return [str(v) for v in value]
    if kind == "boolean":
        return bool(value)
    if kind == "tags":
        return ", ".join(str(v) for v in value)
    if kind == "datetime":
        return _to_local(str(value))
    if kind in NUMBER_KINDS and isinstance(value, int | float) and not isinstance(value, bool):
        return _plain_number(value)
    if kind == "json" or (ent.fields.get(name) and ent.fields[name].type.computed
                          and not isinstance(value, str)):
        return json.dumps(value, indent=2, ensure_ascii=False)
    return str(value)


def _plain_number(value: float) -> str:
    """A number as a number input takes it: ``100``, not ``100.0``; never ``1e+20``."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _posted_shown(ent: Entity, name: str, form: MultiDict[str, str]) -> Any:
    """An input as the user left it, to show it again."""
    kind = field_kind(ent, name)
    if kind == "multi_select":
        return form.getlist(name)
    if kind == "boolean":
        return form.get(name) in ("on", "true", "1", "yes")
    return form.get(name, "")


def _to_local(value: str) -> str:
    """A UTC timestamp as a ``datetime-local`` input's value in the user's time zone."""
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        local = moment.astimezone(time_zone()).replace(tzinfo=None)
    except OverflowError:  # before year 1 or after 9999 on the user's clock
        return value
    return local.isoformat(timespec="minutes")  # "0001-…": strftime drops the zeros


def _to_utc(value: str) -> str:
    """A ``datetime-local`` input (the user's wall clock) as the UTC timestamp the engine
    stores; text that is no date and time (or one with no UTC timestamp, before year 1
    or after 9999 there) stays as typed, and the form says so next to the field."""
    try:
        moment = dt.datetime.fromisoformat(value.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=time_zone())
        utc = moment.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return value
    return utc.isoformat(timespec="seconds") + "Z"  # "0001-…", as strftime would not


# --- flags --------------------------------------------------------------------------------


def _flags(ent: Entity, user: User, record: Mapping[str, Any]) -> Flags:
    """The form rules' flags for this record. Values not yet of their field's type (text in
    a number field) are left out: the rules see them as empty until they are (the engine
    answers a condition it cannot evaluate as false)."""
    return _rule_flags(current_catalog().form_for(ent.name), ent, user, record)


def _rule_flags(form: Form | None, ent: Entity, user: User, record: Mapping[str, Any]
                ) -> Flags:
    """:func:`_flags` by the rules of ``form`` (None: no rules)."""
    if form is None:
        return {}
    typed = {k: v for k, v in record.items() if _fits(ent, k, v)}
    return form.flags(typed, Env(user=user.rule_values()))


def _fits(ent: Entity, name: str, value: Any) -> bool:
    kind = field_kind(ent, name)
    if value is None:
        return True
    if kind in NUMBER_KINDS:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("multi_select", "tags"):
        return isinstance(value, list)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("date", "datetime"):
        return isinstance(value, str) and value[:1].isdigit()
    return True


# --- rendering ----------------------------------------------------------------------------


def _refused(ent: Entity, user: User, page: FormPage, record: Mapping[str, Any] | None,
             exc: BlocksError) -> tuple[str, int]:
    """The engine refused the save: its messages next to their fields, the rest on top."""
    if isinstance(exc, ValidationError):
        _into_page(ent, user, page, exc)
        status = 422
    else:
        page.top.append(exc.message)
        status = 423 if isinstance(exc, Locked) else 422
    return _render(ent, user, page, record), status


def _into_page(ent: Entity, user: User, page: FormPage, exc: ValidationError) -> None:
    """Messages beside the fields shown on the form; the rest, named, on top."""
    on_form = {n for n in _on_form(ent, user)
               if page.flags.get(n, {}).get("visible", True)}
    for name, messages in exc.errors.items():
        if name in on_form:
            page.errors.setdefault(name, []).extend(messages)
        elif name:
            page.top += [f"{field_label(ent, name)}: {m}" for m in messages]
        else:
            page.top += messages


def _differences(ent: Entity, user: User, values: Mapping[str, Any],
                 stored: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per field the user sent that the stored record now holds otherwise: theirs and the
    stored value, each shown as the record view would."""
    changed = [n for n, v in values.items() if _empty(v) != _empty(stored.get(n))]
    mine = {n: values[n] for n in changed}
    titles = reference_titles(ent, [mine, stored], changed, user)
    return [{"name": n, "label": field_label(ent, n), "mine": mine, "stored": stored,
             "titles": titles} for n in changed]


def _empty(value: Any) -> Any:
    return None if value in ("", []) else value


def _render(ent: Entity, user: User, page: FormPage, record: Mapping[str, Any] | None) -> str:
    live = bool(_flags(ent, user, {}))
    if record is None:
        action = url_for("screens.create_record", entity=ent.name)
        back = url_for("screens.list_view", entity=ent.name)
        title = gettext("New %(entity)s", entity=label(ent.label, ent.name))
    else:
        action = url_for("screens.update_record", entity=ent.name, record_id=record["id"])
        back = url_for("screens.record_view", entity=ent.name, record_id=record["id"])
        title = record_title(ent, record)
    body = _body(ent, user, page, _layout(ent, user), _locked(ent, user))
    return render_template("app/form.html", nav=navigation(user), title=title,
                           record=record, action=action, back=back, live=live, **body)


def _body(ent: Entity, user: User, page: FormPage, tabs: list[dict[str, Any]],
          locked: set[str]) -> dict[str, Any]:
    """What the form's tabs of sections of widgets (``form_body`` in app/_widgets.html)
    are drawn from; the tab first shown is the first with an error."""
    names = _names(tabs)
    titles = _reference_shown(ent, user, page.shown, names)
    active = next((i for i, tab in enumerate(tabs) if any(
        n in page.errors for s in tab["sections"] for n in s["fields"])), 0)
    return {"entity": ent, "entity_label": label(ent.label, ent.name), "tabs": tabs,
            "widgets": {n: _widget(ent, n, page.shown, titles) for n in names},
            "page": page, "locked": locked, "active_tab": active}


def _reference_shown(ent: Entity, user: User, shown: Mapping[str, Any],
                     names: Iterable[str]) -> dict[str, str]:
    refs = [n for n in names if field_kind(ent, n) == "reference" and shown.get(n)]
    return reference_titles(ent, [shown], refs, user) if refs else {}


def _widget(ent: Entity, name: str, shown: Mapping[str, Any],
            titles: Mapping[str, str]) -> dict[str, Any]:
    """What the widget macro needs to draw one field."""
    found = ent.fields.get(name)
    kind = field_kind(ent, name)
    schema = found.schema if found is not None else {}
    widget: dict[str, Any] = {
        "name": name, "label": field_label(ent, name), "kind": kind,
        "input": INPUT_TYPES.get(kind, "text"), "required": bool(found and found.required),
        "wide": kind in WIDE_KINDS, "help": label(schema.get("x-help"), "") or None,
        "max": schema.get("maxLength")}
    if kind in NUMBER_KINDS:
        widget["step"] = _step(kind, schema)
        widget["unit"] = _unit(kind, schema, shown)
    if kind in ("select", "multi_select"):
        widget["options"] = select_choices(ent, name)
    if kind == "reference" and found is not None and found.ref:
        value = shown.get(name) or ""
        widget["ref"] = found.ref
        widget["title"] = titles.get(value, value)
        widget["lookup"] = url_for("screens.lookup", entity=ent.name, name=name)
    if kind == "user":
        widget["users"] = _users(shown.get(name))
    return widget


def _step(kind: str, schema: Mapping[str, Any]) -> str:
    if kind == "integer":
        return "1"
    scale = schema.get("x-scale")
    if scale is None:
        return "0.01" if kind == "currency" else "any"
    return "1" if int(scale) == 0 else "0." + "0" * (int(scale) - 1) + "1"


def _unit(kind: str, schema: Mapping[str, Any], shown: Mapping[str, Any]) -> str | None:
    """The currency's symbol (and code) beside a currency input; ``%`` beside a percent."""
    if kind == "percent":
        return "%"
    if kind != "currency":
        return None
    code = schema.get("x-currency") or shown.get(schema.get("x-currency-field") or "")
    if not code or not isinstance(code, str):
        return None
    try:
        symbol = numbers.get_currency_symbol(code, locale=current_language())
    except (ValueError, LookupError):
        return code
    return code if symbol == code else f"{symbol} {code}"


def select_choices(ent: Entity, name: str) -> list[dict[str, Any]]:
    """A select's (or multi-select's) options in their order, with their labels and
    colours, as a form or the kanban's move dialog offers them."""
    answer = []
    for value in select_options(ent, name):
        text, color = option_label(ent, name, value)
        answer.append({"value": str(value), "label": text, "color": color})
    return answer


def _users(current: Any) -> list[dict[str, str]]:
    """The active users to pick from (and the current one, were they deactivated)."""
    people = [u for u in current_workspace().accounts.users() if u.active or u.id == current]
    return [{"id": u.id, "label": u.display_name or u.username} for u in people]


def _lookup_hits(target: str, text: str, user: User) -> list[dict[str, str]]:
    """Records of ``target`` matching ``text`` as typed so far: titles containing it first
    (a prefix finds them, which full-text search on PostgreSQL would not), then the
    entity's full-text search over its other fields."""
    ws = current_workspace()
    ent = current_catalog().entity(target)
    shown = title_field(ent)
    found: dict[str, dict[str, Any]] = {}
    queries = []
    if shown:
        queries.append(lambda q: q.filter({"contains": [{"var": shown}, text]}).sort(shown))
    if ent.search_fields:
        queries.append(lambda q: q.search(text))
    for narrow in queries:
        if len(found) >= LOOKUP_HITS:
            break
        query = ws.query(target, user=user).limit(LOOKUP_HITS)
        for record in narrow(query.fields(shown) if shown else query).page().items:
            found.setdefault(record["id"], record)
    return [{"id": i, "title": record_title(ent, r)}
            for i, r in list(found.items())[:LOOKUP_HITS]]
