"""The rule language's types, and the checker that gives every node of a tree its type.

An expression is checked against its entity before it is stored or run: an unknown
field, a date compared with text, a function given the wrong arguments is an error
naming where in the tree it is (a JSON Pointer into the tree, ``/and/1/>/0``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..fieldtypes import INT64, FieldType, text_problem
from .tree import MAX_DEPTH, MAX_NODES, Node, is_var, operation

#: The largest number a rule may write: what a 64-bit integer column holds.
LARGEST = INT64

if TYPE_CHECKING:
    from ..entities import Entity, Field
    from ..workspace import Catalog
    from .functions import RuleFunction


@dataclass(frozen=True)
class RuleType:
    """A value's type; ``item`` is a list's item type."""

    name: str
    item: RuleType | None = None

    def __str__(self) -> str:
        return f"list of {self.item}" if self.item else self.name


NUMBER = RuleType("number")
TEXT = RuleType("text")
BOOLEAN = RuleType("boolean")
DATE = RuleType("date")
DATETIME = RuleType("datetime")
NULL = RuleType("null")
ANY = RuleType("any")


def list_of(item: RuleType) -> RuleType:
    return RuleType("list", item)


TEXT_LIST = list_of(TEXT)

#: The rule type of each field type; plugins' field types default to ``any``.
FIELD_TYPES = {
    "integer": NUMBER, "decimal": NUMBER, "currency": NUMBER, "percent": NUMBER,
    "text": TEXT, "long_text": TEXT, "rich_text": TEXT, "email": TEXT, "phone": TEXT,
    "url": TEXT,
    "select": TEXT, "reference": TEXT, "user": TEXT,
    "boolean": BOOLEAN, "date": DATE, "datetime": DATETIME,
    "multi_select": TEXT_LIST, "tags": TEXT_LIST, "json": ANY,
}
#: The rule types a plugin's field type may name (``FieldType.rule_type``).
RULE_TYPES = {t.name: t for t in (NUMBER, TEXT, BOOLEAN, DATE, DATETIME)}


def rule_type_of(field_type: FieldType) -> RuleType | None:
    """What rules see a field type's values as: a built-in's by its name, a plugin's by
    the rule type it declares; None when neither says."""
    return FIELD_TYPES.get(field_type.name) or RULE_TYPES.get(field_type.rule_type or "")


SYSTEM_FIELDS = {"id": TEXT, "version": NUMBER, "owner_id": TEXT, "created_at": DATETIME,
                 "created_by": TEXT, "updated_at": DATETIME, "updated_by": TEXT}
USER_FIELDS = {"id": TEXT, "username": TEXT, "roles": TEXT_LIST, "teams": TEXT_LIST,
               "manager": TEXT}


def fits(actual: RuleType, wanted: RuleType) -> bool:
    """Whether a value of ``actual`` type may stand where ``wanted`` is expected."""
    if ANY in (actual, wanted) or actual in (NULL, wanted):
        return True
    if actual.name == "list" and wanted.name == "list":
        return fits(actual.item or ANY, wanted.item or ANY)
    return {actual.name, wanted.name} == {"date", "datetime"}


def common(types: list[RuleType]) -> RuleType | None:
    """The one type all of ``types`` share (nulls aside), or None when they disagree."""
    known = [t for t in types if t not in (NULL, ANY)]
    if not known:
        return NULL if all(t == NULL for t in types) else ANY
    first = known[0]
    for other in known[1:]:
        if other != first and not fits(other, first):
            return None
    return DATETIME if any(t == DATETIME for t in known) and first == DATE else first


class RuleError(ValueError):
    """An expression that is not in the rule language, or not well typed; ``path`` is a
    JSON Pointer into the tree."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path or '/'}: {message}")
        self.message = message
        self.path = path


@dataclass(frozen=True)
class Reference:
    """What a ``var`` names: a field of the record, of a referenced record, or the user."""

    path: str
    type: RuleType
    field: Field | None = None
    via: Field | None = None  # the reference field followed, one hop
    scope: str = "record"  # "record", "user" or "system"


class Scope:
    """The names an expression may use: one entity's fields (and one hop through its
    references), the system fields, and the acting user."""

    def __init__(self, entity: Entity, catalog: Catalog | None = None,
                 formula_types: Mapping[str, RuleType] | None = None) -> None:
        self.entity = entity
        self.catalog = catalog
        self.formula_types = dict(formula_types or {})

    def field_type(self, entity: Entity, name: str) -> RuleType | None:
        f = entity.fields.get(name)
        if f is not None:
            if f.type.name == "formula":
                return self.formula_types.get(name, ANY) if entity is self.entity else ANY
            return rule_type_of(f.type) or ANY
        if name == "state" and "state" in entity.table.c:
            return TEXT  # the workflow's state
        return SYSTEM_FIELDS.get(name)

    def resolve(self, path: str) -> Reference:
        if not isinstance(path, str) or not path:
            raise RuleError("var names a field")
        head, _, rest = path.partition(".")
        if head == "user" and "user" not in self.entity.fields:
            if rest not in USER_FIELDS:
                raise RuleError(f"the user has no {rest!r}; use one of "
                                f"{', '.join('user.' + k for k in USER_FIELDS)}")
            return Reference(path, USER_FIELDS[rest], scope="user")
        if not rest:
            found = self.field_type(self.entity, path)
            if found is None:
                raise RuleError(f"{self.entity.name} has no field {path!r}")
            scope = "system" if path not in self.entity.fields else "record"
            return Reference(path, found, self.entity.fields.get(path), scope=scope)
        via = self.entity.fields.get(head)
        if via is None or via.ref is None:
            raise RuleError(f"{head!r} is not a reference field of {self.entity.name}")
        if "." in rest:
            raise RuleError("a rule follows a reference one hop only")
        if self.catalog is None or via.ref not in self.catalog.entities:
            raise RuleError(f"no entity named {via.ref!r}")
        target = self.catalog.entities[via.ref]
        found = self.field_type(target, rest)
        if found is None:
            raise RuleError(f"{target.name} has no field {rest!r}")
        return Reference(path, found, target.fields.get(rest), via=via)


class Checker:
    """Gives each node its type, refusing what the language does not allow.

    ``functions`` is the registry (:mod:`.functions`); ``allow`` limits the names
    (``changed`` and ``previous`` exist only where a previous record does).
    """

    def __init__(self, scope: Scope, functions: Mapping[str, RuleFunction],
                 forbidden: frozenset[str] = frozenset()) -> None:
        self.scope = scope
        self.functions = functions
        self.forbidden = forbidden
        self._nodes = 0

    def check(self, tree: Node, expect: RuleType | None = None) -> RuleType:
        self._nodes = 0
        found = self.type_of(tree, "", 0)
        if expect is not None and not fits(found, expect):
            raise RuleError(f"the expression gives {found}, where {expect} is expected")
        return found

    def type_of(self, node: Node, path: str, depth: int) -> RuleType:
        self._nodes += 1
        if depth > MAX_DEPTH or self._nodes > MAX_NODES:
            raise RuleError(f"an expression may nest {MAX_DEPTH} deep and hold {MAX_NODES} "
                            "nodes at most", path)
        if node is None:
            return NULL
        if isinstance(node, bool):
            return BOOLEAN
        if isinstance(node, int | float):
            if not math.isfinite(node) or abs(node) > LARGEST:
                raise RuleError(f"{node!r} is too large a number", path)
            return NUMBER
        if isinstance(node, str):
            problem = text_problem(node)
            if problem:
                raise RuleError(f"the text {problem}", path)
            return TEXT
        if isinstance(node, list):
            items = [self.type_of(n, f"{path}/{i}", depth + 1) for i, n in enumerate(node)]
            item = common(items) if items else ANY
            if item is None:
                raise RuleError("a list holds values of one type", path)
            return list_of(item)
        if is_var(node):
            try:
                return self.scope.resolve(node["var"]).type
            except RuleError as exc:
                raise RuleError(exc.message, f"{path}/var") from None
        found = operation(node)
        if found is None:
            raise RuleError("an operation is an object with one operator", path)
        op, args = found
        function = self.functions.get(op)
        if function is None or op in self.forbidden:
            where = " here" if op in self.forbidden else ""
            raise RuleError(f"unknown operator or function {op!r}{where}", f"{path}/{op}")
        here = f"{path}/{op}"
        if len(args) < function.min_args or (function.max_args is not None
                                             and len(args) > function.max_args):
            raise RuleError(f"{op} takes {function.arity_text()}", here)
        if function.name_args:
            for i, arg in enumerate(args):
                if not isinstance(arg, str):
                    raise RuleError(f"{op} takes a field name in quotes", f"{here}/{i}")
                try:
                    self.scope.resolve(arg)
                except RuleError as exc:
                    raise RuleError(exc.message, f"{here}/{i}") from None
            types = [self.scope.resolve(a).type for a in args]
        else:
            types = [self.type_of(a, f"{here}/{i}", depth + 1) for i, a in enumerate(args)]
        try:
            return function.check(types)
        except RuleError as exc:
            raise RuleError(exc.message, here) from None


Signature = Callable[[list[RuleType]], RuleType]


def expect_all(wanted: RuleType, result: RuleType | None = None, *, what: str = ""
               ) -> Signature:
    """A signature whose arguments are all of one type; the result is ``result`` or that."""

    def check(types: list[RuleType]) -> RuleType:
        for i, actual in enumerate(types):
            if not fits(actual, wanted):
                raise RuleError(f"argument {i + 1} is {actual}, where {what or wanted} is "
                                "expected")
        return result or wanted

    return check


def signature(*wanted: RuleType, result: RuleType) -> Signature:
    """A fixed signature: argument ``i`` must fit ``wanted[i]``."""

    def check(types: list[RuleType]) -> RuleType:
        for i, (actual, want) in enumerate(zip(types, wanted, strict=False)):
            if not fits(actual, want):
                raise RuleError(f"argument {i + 1} is {actual}, where {want} is expected")
        return result

    return check
