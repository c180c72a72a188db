"""The one rule language: conditions and formulas, as a JSON tree or as text.

Filters, automation conditions, approval entry criteria, validation rules, workflow
guards, computed fields and defaults all speak it. One tree (:mod:`.tree`) has a text
form (:mod:`.syntax`), is type-checked against an entity (:mod:`.types`), and compiles
two ways: to SQL (:mod:`.sql`) and to a Python callable (:mod:`.python`). Null
semantics are defined once, in :mod:`.functions`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .functions import RuleFunction, builtin_functions
from .python import Env, Evaluator, PythonCompiler
from .syntax import RuleSyntaxError, parse, to_text
from .tree import Node, TooDeep, is_var, normalize, operation
from .types import BOOLEAN, Checker, RuleError, RuleType, Scope, fits, rule_type_of

if TYPE_CHECKING:
    from ..entities import Entity
    from ..workspace import Catalog

__all__ = [
    "Env",
    "RuleError",
    "RuleFunction",
    "RuleSyntaxError",
    "bind_rules",
    "builtin_functions",
    "compile_flags",
    "parse_rule",
    "to_text",
]

def parse_rule(source: Any) -> Node:
    """A rule as its canonical tree, from text or from a (possibly shorthand) tree.

    :raises RuleSyntaxError: for text that does not parse.
    """
    if isinstance(source, str):
        return parse(source)
    try:
        return normalize(source)
    except TooDeep as exc:
        raise RuleSyntaxError(str(exc), text="", position=0) from None


def dependencies(tree: Node) -> Iterator[str]:
    """Every ``var`` path a tree names."""
    if isinstance(tree, list):
        for node in tree:
            yield from dependencies(node)
    elif is_var(tree):
        yield tree["var"]
    else:
        found = operation(tree)
        if found is not None:
            for arg in found[1]:
                yield from dependencies(arg)


@dataclass
class Validation:
    """An ``x-validations`` rule: the assertion that must hold, its message per language,
    and the fields the message is reported on."""

    check: Evaluator
    message: Mapping[str, str]
    fields: list[str]
    #: The record's own fields the assertion reads.
    depends_on: set[str] = field(default_factory=set)


@dataclass
class EntityRules:
    """An entity's rules, type-checked and compiled for one catalog."""

    scope: Scope
    functions: Mapping[str, RuleFunction]
    formulas: dict[str, Node] = field(default_factory=dict)
    formula_types: dict[str, RuleType] = field(default_factory=dict)
    validations: list[Validation] = field(default_factory=list)
    defaults: dict[str, Evaluator] = field(default_factory=dict)
    python: PythonCompiler | None = None

    def checker(self, *, saving: bool = False) -> Checker:
        """A checker for this entity; ``changed``/``previous`` only where a record is saved."""
        forbidden = frozenset() if saving else frozenset(
            n for n, f in self.functions.items() if f.python_only)
        return Checker(self.scope, self.functions, forbidden)

    def compile_python(self, tree: Node) -> Callable[..., Any]:
        assert self.python is not None
        return self.python.compile(tree)


def _formula_order(formulas: Mapping[str, Node]) -> tuple[list[str], list[str] | None]:
    """Formula fields in dependency order, or the cycle that prevents one."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> list[str] | None:
        if state.get(name) == "done":
            return None
        if state.get(name) == "active":
            return [*trail[trail.index(name):], name]
        state[name] = "active"
        for dep in dependencies(formulas[name]):
            if dep in formulas:
                cycle = visit(dep, [*trail, name])
                if cycle:
                    return cycle
        state[name] = "done"
        order.append(name)
        return None

    for name in formulas:
        cycle = visit(name, [])
        if cycle:
            return order, cycle
    return order, None


def bind_rules(entity: Entity, catalog: Catalog | None,
               functions: Mapping[str, RuleFunction]) -> list[tuple[str, str]]:
    """Type-check and compile an entity's formulas, validations and defaults; set
    ``entity.rules`` and answer the problems as ``(json_pointer, message)``."""
    errors: list[tuple[str, str]] = []
    scope = Scope(entity, catalog)
    rules = EntityRules(scope, functions, formulas=dict(entity.formulas))
    order, cycle = _formula_order(rules.formulas)
    if cycle:
        errors.append((f"/properties/{cycle[0]}/x-formula",
                       "formula fields depend on each other in a cycle: " + " → ".join(cycle)))
    for name in order:
        try:
            rules.formula_types[name] = rules.checker().check(rules.formulas[name])
            scope.formula_types[name] = rules.formula_types[name]
        except RuleError as exc:
            errors.append((f"/properties/{name}/x-formula", f"{exc.path or '/'}: {exc.message}"))
    rules.python = PythonCompiler(scope, functions, rules.formulas)
    for i, (tree, message, names) in enumerate(entity.validation_trees):
        try:
            rules.checker(saving=True).check(tree, BOOLEAN)
            reads = {d.partition(".")[0] for d in dependencies(tree)}
            rules.validations.append(Validation(rules.compile_python(tree), message, names,
                                                reads))
        except RuleError as exc:
            errors.append((f"/x-validations/{i}/assert", f"{exc.path or '/'}: {exc.message}"))
    for name, tree in entity.default_trees.items():
        wanted = rule_type_of(entity.fields[name].type)
        try:
            found = rules.checker().check(tree)
            if wanted is not None and not fits(found, wanted):
                raise RuleError(f"the default gives {found}, where {wanted} is expected")
            rules.defaults[name] = rules.compile_python(tree)
        except RuleError as exc:
            errors.append((f"/properties/{name}/x-default", f"{exc.path or '/'}: {exc.message}"))
    entity.rules = rules
    return errors


FLAGS = ("visible", "required", "read_only")


def _holds(condition: Evaluator, record: Mapping[str, Any], env: Env) -> bool:
    """Whether a form's condition holds for what the user has typed so far: a value not
    yet of its field's type (``"12a"`` in a number) makes it unknown, which is false."""
    try:
        return condition(record, env) is True
    except (TypeError, ValueError, ArithmeticError):
        return False


def compile_flags(rules: EntityRules, fields: Mapping[str, Mapping[str, Any]]
                  ) -> Callable[[Mapping[str, Any], Env], dict[str, dict[str, bool]]]:
    """A form's conditional flags, compiled: ``{"discount": {"visible": "stage ==
    \\"proposal\\"", "required": …, "read_only": …}}`` gives a callable that answers, for
    one record, each field's flags (a flag not given is visible, not required, writable).

    :raises RuleError: naming the field and flag, when a condition is not well typed.
    """
    compiled: dict[str, dict[str, Evaluator]] = {}
    for name, flags in fields.items():
        for flag, source in flags.items():
            if flag not in FLAGS:
                raise RuleError(f"unknown flag {flag!r}; use {', '.join(FLAGS)}", f"/{name}")
            try:
                tree = parse_rule(source)
                rules.checker().check(tree, BOOLEAN)
            except (RuleError, RuleSyntaxError) as exc:
                raise RuleError(str(exc), f"/{name}/{flag}") from None
            compiled.setdefault(name, {})[flag] = rules.compile_python(tree)

    def evaluate(record: Mapping[str, Any], env: Env | None = None) -> dict[str, dict[str, bool]]:
        env = env or Env()
        answer = {}
        for name, flags in compiled.items():
            values = {flag: _holds(flags[flag], record, env) for flag in flags}
            answer[name] = {"visible": values.get("visible", "visible" not in flags),
                            "required": values.get("required", False),
                            "read_only": values.get("read_only", False)}
        return answer

    return evaluate
