"""The tree compiled to a Python callable that evaluates one record in memory.

Each node becomes a closure; nothing is generated as source text, so user text never
reaches ``eval`` or ``exec``, and evaluation can only call the registry's functions on
its own context: it cannot loop (trees are finite and acyclic, formulas' dependencies
are checked for cycles) or reach anything outside it.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping
from typing import Any

from .functions import RuleFunction
from .tree import Node, is_var, operation
from .types import DATE, DATETIME, Checker, RuleError, RuleType, Scope

Evaluator = Callable[[Mapping[str, Any], "Env"], Any]


class Env:
    """What an expression sees besides the record: the acting user, the record as it was
    before this write, and referenced records (loaded on demand by ``related``)."""

    def __init__(self, user: Mapping[str, Any] | None = None,
                 previous: Mapping[str, Any] | None = None,
                 related: Callable[[str, Mapping[str, Any]], Mapping[str, Any] | None]
                 | None = None) -> None:
        self.user = user or {}
        self.previous = previous
        self.related = related or (lambda field, record: None)
        self.record: Mapping[str, Any] = {}

    def changed(self, name: str) -> bool:
        if self.previous is None:
            return self.record.get(name) is not None
        return bool(self.previous.get(name) != self.record.get(name))

    def previous_value(self, name: str) -> Any:
        return None if self.previous is None else self.previous.get(name)


EMPTY_ENV = Env()
ORDER_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _uses_previous(tree: Node) -> bool:
    """Whether a tree calls ``changed`` or ``previous``, which need ``env.record``."""
    if isinstance(tree, list):
        return any(_uses_previous(n) for n in tree)
    found = operation(tree)
    if found is None:
        return False
    op, args = found
    return op in ("changed", "previous") or any(_uses_previous(a) for a in args)


def _reader(kind: RuleType) -> Callable[[Any], Any]:
    """Records carry dates as ISO text; expressions compare them as dates."""
    if kind == DATE:
        return lambda v: dt.date.fromisoformat(v[:10]) if isinstance(v, str) else v
    if kind == DATETIME:
        def read(v: Any) -> Any:
            if not isinstance(v, str):
                return v
            moment = dt.datetime.fromisoformat(v)
            if moment.tzinfo is not None:
                moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
            return moment
        return read
    return lambda v: v


class PythonCompiler:
    """Compiles trees of one entity's scope; ``formulas`` maps formula fields to trees."""

    def __init__(self, scope: Scope, functions: Mapping[str, RuleFunction],
                 formulas: Mapping[str, Node] | None = None) -> None:
        self.scope = scope
        self.functions = functions
        self.formulas = dict(formulas or {})
        self._formula_cache: dict[str, Evaluator] = {}
        self._checker = Checker(scope, functions)

    def compile(self, tree: Node) -> Evaluator:
        """A callable ``f(record, env=EMPTY_ENV)``."""
        inner = self._node(tree)
        if not _uses_previous(tree):
            return lambda record, env=EMPTY_ENV: inner(record, env)

        def evaluate(record: Mapping[str, Any], env: Env = EMPTY_ENV) -> Any:
            env.record = record  # what changed() compares with the previous record
            return inner(record, env)

        return evaluate

    def _dated(self, args: list[Node]) -> bool:
        """Whether any operand is a date or a datetime (which meet at midnight)."""
        try:
            return any(self._checker.type_of(a, "", 0) in (DATE, DATETIME) for a in args)
        except RuleError:
            return True

    def _plain_field(self, node: Node) -> str | None:
        """The name of a record field read as it is stored (no date parsing, no formula,
        no hop), for the fast paths below."""
        if not is_var(node):
            return None
        path = node["var"]
        try:
            ref = self.scope.resolve(path)
        except RuleError:
            return None
        if ref.via is not None or ref.scope == "user" or path in self.formulas \
                or ref.type in (DATE, DATETIME):
            return None
        return str(path)

    def _fast(self, op: str, args: list[Node], parts: list[Evaluator]) -> Evaluator | None:
        """Closures for the most common shapes, with the registry's semantics but fewer
        calls: Kleene's and/or unrolled, and a field compared with a constant."""
        if op == "and" and len(parts) == 2:
            first, second = parts

            def both(r: Mapping[str, Any], e: Env) -> Any:
                a = first(r, e)
                if a is not None and not a:
                    return False
                b = second(r, e)
                if b is not None and not b:
                    return False
                return None if a is None or b is None else True
            return both
        if op == "or" and len(parts) == 2:
            first, second = parts

            def either(r: Mapping[str, Any], e: Env) -> Any:
                a = first(r, e)
                if a:
                    return True
                b = second(r, e)
                if b:
                    return True
                return None if a is None or b is None else False
            return either
        if len(args) != 2:
            return None
        name = self._plain_field(args[0])
        constant = args[1]
        if name is None or isinstance(constant, dict | bool) or constant is None:
            return None
        if op in ORDER_OPERATORS and not isinstance(constant, list):
            test = ORDER_OPERATORS[op]

            def ordered(r: Mapping[str, Any], e: Env) -> Any:
                value = r.get(name)
                return None if value is None else test(value, constant)
            return ordered
        if op == "==" and not isinstance(constant, list):
            return lambda r, e: r.get(name) == constant
        if op == "!=" and not isinstance(constant, list):
            return lambda r, e: r.get(name) != constant
        if op == "in" and isinstance(constant, list) and all(
                isinstance(c, str | int | float) and not isinstance(c, bool) for c in constant):
            members = frozenset(constant)

            def member(r: Mapping[str, Any], e: Env) -> Any:
                value = r.get(name)
                return None if value is None else value in members
            return member
        return None

    def _node(self, node: Node) -> Evaluator:
        if isinstance(node, list):
            if all(not isinstance(n, dict | list) for n in node):
                constant = list(node)
                return lambda r, e: constant
            items = [self._node(n) for n in node]
            return lambda r, e: [i(r, e) for i in items]
        if is_var(node):
            return self._var(node["var"])
        found = operation(node)
        if found is None:
            return lambda r, e, value=node: value
        op, args = found
        function = self.functions[op]
        if function.name_args:
            names = list(args)
            return lambda r, e: function.python(e, *names)
        if op in ("date", "datetime") and isinstance(args[0], str):
            try:
                constant = function.python(args[0])
            except (ValueError, OverflowError):
                raise RuleError(f"{args[0]!r} is not a valid {op}", f"/{op}/0") from None
            return lambda r, e: constant
        parts = [self._node(a) for a in args]
        return self._fast(op, args, parts) or self._call(function, parts, args)

    def _call(self, function: RuleFunction, parts: list[Evaluator], args: list[Node]
              ) -> Evaluator:
        run = function.python
        if function.name in ORDER_OPERATORS and not self._dated(args):
            run = ORDER_OPERATORS[function.name]  # no date to meet a datetime: plain order
        if function.lazy:
            return lambda r, e: run(*(lambda p=p: p(r, e) for p in parts))
        if function.null_safe:
            return lambda r, e: run(*(p(r, e) for p in parts))
        empty = None  # an empty operand: an empty value, or an unknown condition
        if len(parts) == 2:
            left, right = parts
            if not isinstance(args[1], dict | list) and args[1] is not None:
                constant = args[1]

                def with_constant(r: Mapping[str, Any], e: Env) -> Any:
                    value = left(r, e)
                    return empty if value is None else run(value, constant)
                return with_constant

            name = self._plain_field(args[0])
            if name is not None:
                def from_field(r: Mapping[str, Any], e: Env) -> Any:
                    a = r.get(name)
                    if a is None:
                        return empty
                    b = right(r, e)
                    return empty if b is None else run(a, b)
                return from_field

            def binary(r: Mapping[str, Any], e: Env) -> Any:
                a = left(r, e)
                if a is None:
                    return empty
                b = right(r, e)
                return empty if b is None else run(a, b)
            return binary

        def call(r: Mapping[str, Any], e: Env) -> Any:
            values = [p(r, e) for p in parts]
            if None in values:
                return empty
            return run(*values)
        return call

    def _var(self, path: str) -> Evaluator:
        ref = self.scope.resolve(path)
        read = _reader(ref.type)
        if ref.scope == "user":
            key = path.partition(".")[2]
            return lambda r, e: e.user.get(key)
        if ref.via is not None:
            via, name = ref.via.name, path.partition(".")[2]

            def related(r: Mapping[str, Any], e: Env) -> Any:
                other = e.related(via, r)
                if other is None:
                    return None
                value = other.get(name)
                return None if value is None else read(value)
            return related
        if path in self.formulas:
            return self._formula(path)
        if ref.type in (DATE, DATETIME):
            def converted(r: Mapping[str, Any], e: Env) -> Any:
                value = r.get(path)
                return None if value is None else read(value)
            return converted
        return lambda r, e: r.get(path)

    def _formula(self, name: str) -> Evaluator:
        if name not in self._formula_cache:
            self._formula_cache[name] = lambda r, e: inner(r, e)
            inner = self._node(self.formulas[name])
            self._formula_cache[name] = inner
        return self._formula_cache[name]
