"""Views, forms and dashboards: how the screens show an entity, checked against it.

The meta-schemas say what shape each document has; this module says whether what it
names exists (fields, states, number fields to sum) and whether its conditions are well
typed, so a view with a typo is refused at publish and never breaks a screen. Each
compiles to a small frozen object the screens read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .entities import Entity
from .rules import RuleError, RuleSyntaxError, compile_flags, parse_rule
from .rules.types import BOOLEAN, NUMBER, rule_type_of

Problems = list[tuple[str, str]]
#: What a list may show besides the entity's fields.
SHOWN_SYSTEM_FIELDS = ("state", "owner_id", "created_at", "updated_at", "created_by",
                       "updated_by")


@dataclass(frozen=True)
class View:
    """A list of one entity's records: columns, default filter and sort, page size, and
    how its kanban board groups cards (``group_by`` is ``state`` or a select field)."""

    name: str
    entity: str
    label: Mapping[str, str]
    columns: tuple[str, ...]
    filter: Any = None
    sort: tuple[str, ...] = ()
    page_size: int = 50
    default: bool = False
    kanban_group: str | None = None
    kanban_fields: tuple[str, ...] = ()
    kanban_sum: str | None = None


@dataclass(frozen=True)
class Form:
    """A record's layout: tabs of sections of fields, and the conditions that show,
    require or lock fields (``flags(record)`` answers them for one record)."""

    name: str
    entity: str
    label: Mapping[str, str]
    #: ``[(tab label or None, [(section label or None, columns, [field, …]), …]), …]``
    tabs: tuple[tuple[Mapping[str, str] | None,
                      tuple[tuple[Mapping[str, str] | None, int, tuple[str, ...]], ...]], ...]
    flags: Callable[..., dict[str, dict[str, bool]]] = field(compare=False,
                                                             default=lambda *a: {})
    default: bool = False

    @property
    def fields(self) -> list[str]:
        return [f for _, sections in self.tabs for _, _, names in sections for f in names]


@dataclass(frozen=True)
class Card:
    """One dashboard card: a figure over ``entity``'s records the viewer may read."""

    type: str
    entity: str
    title: Mapping[str, str]
    filter: Any = None
    group_by: str | None = None
    metric: str = "count"
    columns: tuple[str, ...] = ()
    sort: tuple[str, ...] = ()
    limit: int = 10
    width: int = 1
    #: A plugin card's own settings.
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Dashboard:
    name: str
    label: Mapping[str, str]
    cards: tuple[Card, ...]
    roles: frozenset[str] = frozenset()


def compile_view(document: Mapping[str, Any], entity: Entity) -> tuple[View, Problems]:
    errors = list(_field_problems(entity, document["columns"], "/columns"))
    errors += _condition_problems(entity, document.get("filter"), "/filter")
    errors += _sort_problems(entity, document.get("sort", ()), "/sort")
    kanban = document.get("kanban") or {}
    group = kanban.get("group_by")
    if group is not None:
        if group == "state":
            if entity.workflow is None:
                errors.append(("/kanban/group_by", f"{entity.name} follows no workflow"))
        elif group not in entity.fields or entity.fields[group].type.name != "select":
            errors.append(("/kanban/group_by", "group by \"state\" or a select field of "
                                               f"{entity.name}, not {group!r}"))
        errors += _field_problems(entity, kanban.get("fields", ()), "/kanban/fields")
        if "sum" in kanban:
            errors += _number_problems(entity, kanban["sum"], "/kanban/sum")
    view = View(document["name"], entity.name, document["label"], tuple(document["columns"]),
                document.get("filter"), tuple(document.get("sort", ())),
                document.get("page_size", 50), document.get("default", False), group,
                tuple(kanban.get("fields", ())), kanban.get("sum"))
    return view, errors


def compile_form(document: Mapping[str, Any], entity: Entity) -> tuple[Form, Problems]:
    errors: Problems = []
    if "tabs" in document:
        tabs = [(tab["label"], tab["sections"], f"/tabs/{i}/sections")
                for i, tab in enumerate(document["tabs"])]
    elif "sections" in document:
        tabs = [(None, document["sections"], "/sections")]
    else:  # every field, in the entity's order
        names = [n for n, f in entity.fields.items() if not f.type.computed]
        tabs = [(None, [{"fields": names, "columns": 2}], "/sections")]
    seen: set[str] = set()
    compiled = []
    for tab_label, sections, where in tabs:
        parts = []
        for i, section in enumerate(sections):
            names = section["fields"]
            errors += _field_problems(entity, names, f"{where}/{i}/fields", system=False)
            errors += [(f"{where}/{i}/fields", f"{n!r} is already on the form")
                       for n in names if n in seen]
            seen.update(names)
            parts.append((section.get("label"), section.get("columns", 1), tuple(names)))
        compiled.append((tab_label, tuple(parts)))
    flags: Callable[..., dict[str, dict[str, bool]]] = lambda *a: {}  # noqa: E731
    rules = document.get("rules") or {}
    errors += [(f"/rules/{name}", f"{name!r} is not on the form")
               for name in rules if name not in seen]
    if not errors and rules:
        try:
            flags = compile_flags(entity.rules, rules)
        except RuleError as exc:
            errors.append((f"/rules{exc.path or ''}", exc.message))
    form = Form(document["name"], entity.name, document["label"], tuple(compiled), flags,
                document.get("default", False))
    return form, errors


def compile_dashboard(document: Mapping[str, Any], entities: Mapping[str, Entity],
                      card_types: Collection[str] = ()) -> tuple[Dashboard, Problems]:
    """A dashboard and its problems; ``card_types`` are the names of the plugins' card
    types (``plugin:<name>``), which a card may use while their plugin is enabled."""
    errors: Problems = []
    cards = []
    for i, spec in enumerate(document["cards"]):
        where = f"/cards/{i}"
        entity = entities.get(spec["entity"])
        if entity is None:
            errors.append((f"{where}/entity", f"no entity named {spec['entity']!r}"))
            continue
        if spec["type"].startswith("plugin:") and spec["type"][7:] not in card_types:
            errors.append((f"{where}/type", f"no card type {spec['type']!r}: an enabled "
                                            f"plugin may add it"))
        errors += _condition_problems(entity, spec.get("filter"), f"{where}/filter")
        group = spec.get("group_by")
        if spec["type"] == "funnel":
            if entity.workflow is None:
                errors.append((f"{where}/type", f"a funnel runs over workflow states, and "
                                                f"{entity.name} follows no workflow"))
            group = "state"
        elif group is not None:
            errors += _field_problems(entity, [group.partition(":")[0]], f"{where}/group_by")
        metric = spec.get("metric", "count")
        if metric != "count":
            errors += _number_problems(entity, metric.partition(":")[2], f"{where}/metric")
        errors += _field_problems(entity, spec.get("columns", ()), f"{where}/columns")
        errors += _sort_problems(entity, spec.get("sort", ()), f"{where}/sort")
        cards.append(Card(spec["type"], entity.name, spec.get("title") or entity.label,
                          spec.get("filter"), group, metric, tuple(spec.get("columns", ())),
                          tuple(spec.get("sort", ())), spec.get("limit", 10),
                          spec.get("width", 1), spec.get("options", {})))
    dashboard = Dashboard(document["name"], document["label"], tuple(cards),
                          frozenset(document.get("roles", ())))
    return dashboard, errors


def _field_problems(entity: Entity, names: Any, where: str, *, system: bool = True
                    ) -> Iterator[tuple[str, str]]:
    for i, name in enumerate(names):
        known = name in entity.fields or (system and name in SHOWN_SYSTEM_FIELDS
                                          and (name != "state" or entity.workflow))
        if not known:
            yield f"{where}/{i}", f"{entity.name} has no field {name!r}"


def _number_problems(entity: Entity, name: str, where: str) -> Problems:
    found = entity.fields.get(name)
    if found is None or rule_type_of(found.type) is not NUMBER:
        return [(where, f"{name!r} is not a number field of {entity.name}")]
    return []


def _sort_problems(entity: Entity, keys: Any, where: str) -> Problems:
    return list(_field_problems(entity, [k.lstrip("-") for k in keys], where))


def _condition_problems(entity: Entity, source: Any, where: str) -> Problems:
    if source is None:
        return []
    try:
        entity.rules.checker().check(parse_rule(source), BOOLEAN)
    except RuleSyntaxError as exc:
        return [(where, str(exc))]
    except RuleError as exc:
        return [(where, f"{exc.path or '/'}: {exc.message}")]
    return []


__all__ = ["Card", "Dashboard", "Form", "View", "compile_dashboard",
           "compile_form", "compile_view"]
