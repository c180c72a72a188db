"""Workflows: a state machine on one entity, compiled from its definition.

A workflow names its entity, its states (label, category, colour, kanban order) and its
transitions (from which states, to which, who may take them, the guard that must hold,
the fields that must be filled, the actions that follow). The entity's table then has a
``state`` column that only :meth:`RecordService.transition` writes; a plain update that
tries to change it is refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .rules import Evaluator, RuleError, RuleSyntaxError, parse_rule
from .rules.types import BOOLEAN

CATEGORIES = ("open", "won", "lost", "closed")


@dataclass(frozen=True)
class State:
    name: str
    label: Mapping[str, str]
    category: str = "open"
    color: str | None = None
    order: int = 0


@dataclass(frozen=True)
class Transition:
    """One way out of some states into another."""

    name: str
    sources: frozenset[str] | None  # None: from any state
    to: str
    label: Mapping[str, str]
    roles: frozenset[str] | None  # None: anyone who may update the record
    guard: Evaluator | None = None
    guard_text: str | None = None
    guard_message: Mapping[str, str] = field(default_factory=dict)
    require: tuple[str, ...] = ()
    actions: tuple[Mapping[str, Any], ...] = ()

    def leaves(self, state: str | None) -> bool:
        return self.sources is None or state in self.sources


@dataclass(frozen=True)
class Workflow:
    name: str
    entity: str
    initial: str
    states: dict[str, State]
    transitions: dict[str, Transition]

    def to_dict(self) -> dict[str, Any]:
        """The workflow as the screens draw it (a kanban's columns, a diagram)."""
        return {"name": self.name, "entity": self.entity, "initial": self.initial,
                "states": [{"name": s.name, "label": dict(s.label), "category": s.category,
                            "color": s.color, "order": s.order}
                           for s in sorted(self.states.values(), key=lambda s: s.order)],
                "transitions": [{"name": t.name, "to": t.to, "label": dict(t.label),
                                 "from": sorted(t.sources) if t.sources is not None else "*",
                                 "require": list(t.require)}
                                for t in self.transitions.values()]}


def compile_workflow(document: Mapping[str, Any], entity: Any, known_roles: set[str]
                     ) -> tuple[Workflow | None, list[tuple[str, str]]]:
    """The workflow of a (meta-schema valid) definition, bound to its compiled entity,
    and every problem as ``(json_pointer, message)``."""
    errors = list(_shape_errors(document, entity, known_roles))
    states: dict[str, State] = {}
    for i, s in enumerate(document["states"]):
        states[s["name"]] = State(s["name"], s.get("label", {"en": s["name"]}),
                                  s.get("category", "open"), s.get("color"), s.get("order", i))
    transitions: dict[str, Transition] = {}
    for i, t in enumerate(document["transitions"]):
        guard, text = None, None
        if "guard" in t:
            try:
                tree = parse_rule(t["guard"])
                entity.rules.checker(saving=True).check(tree, BOOLEAN)
                guard = entity.rules.compile_python(tree)
                text = t["guard"] if isinstance(t["guard"], str) else None
            except RuleSyntaxError as exc:
                errors.append((f"/transitions/{i}/guard", str(exc)))
            except RuleError as exc:
                errors.append((f"/transitions/{i}/guard", f"{exc.path or '/'}: {exc.message}"))
        sources = None if t["from"] == "*" else frozenset(t["from"])
        transitions[t["name"]] = Transition(
            t["name"], sources, t["to"], t.get("label", {"en": t["name"]}),
            frozenset(t["roles"]) if "roles" in t else None, guard, text,
            t.get("guard_message", {}), tuple(t.get("require", ())),
            tuple(t.get("actions", ())))
    if errors:
        return None, errors
    return Workflow(document["name"], document["entity"], document["initial"], states,
                    transitions), []


def _shape_errors(document: Mapping[str, Any], entity: Any, known_roles: set[str]
                  ) -> Iterator[tuple[str, str]]:
    names = [s["name"] for s in document["states"]]
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            yield f"/states/{i}/name", f"two states are named {name!r}"
        seen.add(name)
    if document["initial"] not in seen:
        yield "/initial", f"no state named {document['initial']!r}"
    taken: set[str] = set()
    for i, t in enumerate(document["transitions"]):
        at = f"/transitions/{i}"
        if t["name"] in taken:
            yield f"{at}/name", f"two transitions are named {t['name']!r}"
        taken.add(t["name"])
        for j, source in enumerate([] if t["from"] == "*" else t["from"]):
            if source not in seen:
                yield f"{at}/from/{j}", f"no state named {source!r}"
        if t["to"] not in seen:
            yield f"{at}/to", f"no state named {t['to']!r}"
        for j, name in enumerate(t.get("require", [])):
            if name not in entity.fields or entity.fields[name].type.computed:
                yield f"{at}/require/{j}", f"{entity.name} has no field {name!r} to fill"
        for j, role in enumerate(t.get("roles", [])):
            if role != "admin" and role not in known_roles:
                yield f"{at}/roles/{j}", f"no role {role!r}: use admin or a role definition"
