"""The lead-scoring settings: their JSON Schema and their compiled form, :class:`Scoring`,
built against the published entities the schema cannot know about. Both are checked when
a workspace enables the plugin or changes its settings (:func:`problems`), and a write of
a scored or activity entity compiles them again when the entities have changed since.

Conditions are the engine's one rule language, parsed with ``parse_rule`` and
type-checked and compiled with the entity's own rule compiler, so a condition means here
what it means in a filter or an automation. Each workspace's :class:`Scoring` is built
once per published metadata version (enabling the plugin or changing its settings is
such a version) and kept until the next one.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from blockscrm.engine import Catalog, DefinitionError, Entity, Workspace
from blockscrm.engine.rules import (
    BOOLEAN,
    RuleError,
    RuleSyntaxError,
    dependencies,
    parse_rule,
    to_text,
)

NAME = "lead-scoring"

_CONDITION: dict[str, Any] = {
    "type": ["string", "object"],
    "description": 'A rule-language condition, as text (source == "referral") or as a tree.'}
_POINTS: dict[str, Any] = {"type": "integer", "minimum": -100000, "maximum": 100000}
_NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 64}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["entity", "score_field"],
    "additionalProperties": False,
    "properties": {
        "entity": {**_NAME, "description": "The entity whose records are scored (lead)."},
        "score_field": {**_NAME, "description": "Its integer field that holds the score."},
        "rules": {
            "type": "array", "default": [],
            "description": "Points a record earns while a condition on it holds.",
            "items": {"type": "object", "required": ["when", "points"],
                      "additionalProperties": False,
                      "properties": {"when": _CONDITION, "points": _POINTS,
                                     "label": {"type": "string", "maxLength": 200}}}},
        "activities": {
            "type": "object", "required": ["entity", "field"], "additionalProperties": False,
            "description": "Points the record earns for each activity that refers to it.",
            "properties": {
                "entity": {**_NAME, "description": "The activity entity (activity)."},
                "field": {**_NAME, "description": "The activity's reference to the record."},
                "points": {**_POINTS, "default": 0,
                           "description": "Points for every activity."},
                "types": {
                    "type": "array", "default": [],
                    "description": "Points more for each activity a condition holds on.",
                    "items": {"type": "object", "required": ["when", "points"],
                              "additionalProperties": False,
                              "properties": {"when": _CONDITION, "points": _POINTS,
                                             "label": {"type": "string", "maxLength": 200}}}},
            }},
        "cap": {"type": "integer", "minimum": 0,
                "description": "The highest score a record can have."},
    },
}

#: A compiled condition: ``holds(record, env)`` answers True, False or None (unknown).
Evaluator = Callable[..., Any]


@dataclass(frozen=True)
class Condition:
    """A condition that gives points: its place in the settings (``/rules/2``), what the
    history calls it, its tree (for queries) and its compiled predicate."""

    where: str
    label: str
    points: int
    tree: Any
    holds: Evaluator


@dataclass(frozen=True)
class Activities:
    """Which activities count for a record, and for how much."""

    entity: str
    field: str
    points: int
    types: tuple[Condition, ...]


@dataclass(frozen=True)
class Scoring:
    """A workspace's settings compiled against one version of its published entities."""

    entity: str
    score_field: str
    rules: tuple[Condition, ...]
    activities: Activities | None
    cap: int | None
    #: Each entity's reference fields (scored, activity) and the entity each names, for
    #: conditions that read a referenced record (``company.industry``).
    references: Mapping[str, Mapping[str, str]]

    def concerns(self, entity: str) -> bool:
        return entity == self.entity or self.counts(entity)

    def counts(self, entity: str) -> bool:
        """Whether records of ``entity`` are the activities that earn points."""
        return self.activities is not None and entity == self.activities.entity


def settings_of(catalog: Catalog) -> Mapping[str, Any] | None:
    """The plugin's settings as of ``catalog``, None where it is not enabled."""
    state = catalog.plugins.get(NAME)
    return state.settings if state is not None and state.enabled else None


def named_entities(settings: Mapping[str, Any]) -> set[str]:
    """The entities whose writes the settings concern, without compiling them: a mistake
    in the settings then stops writes of these entities only."""
    return {settings["entity"], *([settings["activities"]["entity"]]
                                  if "activities" in settings else [])}


_COMPILED: weakref.WeakKeyDictionary[Workspace, tuple[int, Scoring]] = (
    weakref.WeakKeyDictionary())


def scoring_for(ws: Workspace, entity: str) -> Scoring | None:
    """The workspace's compiled settings when a write of ``entity`` concerns them, else
    None (the plugin not enabled, or another entity).

    :raises DefinitionError: the settings do not fit the published entities.
    """
    catalog = ws.catalog()
    settings = settings_of(catalog)
    if settings is None or entity not in named_entities(settings):
        return None
    known = _COMPILED.get(ws)
    if known is not None and known[0] == catalog.version:
        return known[1]
    scoring = compile_settings(catalog, settings)
    _COMPILED[ws] = (catalog.version, scoring)
    return scoring


def problems(catalog: Catalog, settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What does not fit ``catalog``'s entities in schema-valid settings, by setting."""
    try:
        compile_settings(catalog, settings)
    except DefinitionError as exc:
        return [(where, message) for where, messages in exc.errors.items()
                for message in messages]
    return []


def compile_settings(catalog: Catalog, settings: Mapping[str, Any]) -> Scoring:
    """Check ``settings`` against the published entities and compile their conditions.

    :raises DefinitionError: every problem, keyed by the setting it is in
        (``/rules/1/when``).
    """
    problems: list[tuple[str, str]] = []
    scored = catalog.entities.get(settings["entity"])
    if scored is None:
        problems.append(("/entity", f"there is no published entity {settings['entity']!r}"))
    else:
        problems += _score_field_problems(scored, settings["score_field"])
    rules = _conditions(scored, settings.get("rules", []), "/rules", problems,
                        own_fields_only=True)
    activities = _activities(catalog, scored, settings.get("activities"), problems)
    if problems:
        raise DefinitionError(problems, f"The settings of the plugin {NAME} are invalid: "
                                        + "; ".join(f"{k}: {m}" for k, m in problems))
    references = {name: {f.name: f.ref for f in catalog.entity(name).fields.values() if f.ref}
                  for name in named_entities(settings)}
    return Scoring(settings["entity"], settings["score_field"], rules, activities,
                   settings.get("cap"), references)


def _score_field_problems(entity: Entity, name: str) -> list[tuple[str, str]]:
    field = entity.fields.get(name)
    if field is None:
        return [("/score_field", f"the entity {entity.name!r} has no field {name!r}")]
    if field.type.name != "integer" or field.type.computed:
        return [("/score_field", f"{name!r} must be a stored integer field, not "
                                 f"{field.type.name!r}")]
    return []


def _conditions(entity: Entity | None, items: list[Mapping[str, Any]], where: str,
                problems: list[tuple[str, str]], *, own_fields_only: bool = False
                ) -> tuple[Condition, ...]:
    """Each item's condition parsed, type-checked as a boolean on ``entity`` and compiled;
    a problem is reported on the item's ``when``.

    ``own_fields_only``: the condition reads the record's fields (and records they refer
    to) only, not its id, owner, dates or state, nor the user: a record is scored before
    validation, where a new record has only its values, and again before it is saved,
    which must find the same score (see :mod:`.saving`).
    """
    compiled = []
    for i, item in enumerate(items):
        if entity is None:
            continue  # reported on the entity already
        try:
            tree = parse_rule(item["when"])
        except RuleSyntaxError as exc:
            problems.append((f"{where}/{i}/when", f"the condition does not parse: {exc}"))
            continue
        try:
            entity.rules.checker().check(tree, BOOLEAN)
        except RuleError as exc:
            problems.append((f"{where}/{i}/when",
                             f"the condition is not a yes/no question on {entity.name}: {exc}"))
            continue
        others = sorted({path for path in dependencies(tree)
                         if path.partition(".")[0] not in entity.fields})
        if own_fields_only and others:
            problems.append((f"{where}/{i}/when", f"the condition reads {', '.join(others)}; "
                                                  f"it may read the record's own fields only"))
            continue
        text = item["when"] if isinstance(item["when"], str) else to_text(tree)
        compiled.append(Condition(f"{where}/{i}", item.get("label") or text, item["points"],
                                  tree, entity.rules.compile_python(tree)))
    return tuple(compiled)


def _activities(catalog: Catalog, scored: Entity | None, settings: Mapping[str, Any] | None,
                problems: list[tuple[str, str]]) -> Activities | None:
    if settings is None:
        return None
    entity = catalog.entities.get(settings["entity"])
    if entity is None:
        problems.append(("/activities/entity",
                         f"there is no published entity {settings['entity']!r}"))
    elif scored is not None and entity.name == scored.name:
        problems.append(("/activities/entity", "the activities must be another entity than "
                                               "the scored one"))
        entity = None
    elif scored is not None:
        field = entity.fields.get(settings["field"])
        if field is None or field.ref != scored.name:
            problems.append(("/activities/field", f"{entity.name!r} has no reference field "
                                                  f"{settings['field']!r} to {scored.name!r}"))
    types = _conditions(entity, settings.get("types", []), "/activities/types", problems)
    return Activities(settings["entity"], settings["field"], settings.get("points", 0), types)
