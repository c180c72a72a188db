"""The tree compiled to a Python callable that evaluates one record in memory.

Each node becomes a closure; nothing is generated as source text, so user text never
reaches ``eval`` or ``exec``, and evaluation can only call the registry's functions on
its own context: it cannot loop (trees are finite and acyclic, formulas' dependencies
are checked for cycles) or reach anything outside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from .functions import RuleFunction
from .tree import Node, is_var, operation
from .types import DATE, DATETIME, RuleError, RuleType, Scope

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

    def compile(self, tree: Node) -> Evaluator:
        """A callable ``f(record, env=EMPTY_ENV)``."""
        inner = self._node(tree)

        def evaluate(record: Mapping[str, Any], env: Env = EMPTY_ENV) -> Any:
            env.record = record
            return inner(record, env)

        return evaluate

    def _node(self, node: Node) -> Evaluator:
        if isinstance(node, list):
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
            except ValueError:
                raise RuleError(f"{args[0]!r} is not a valid {op}", f"/{op}/0") from None
            return lambda r, e: constant
        parts = [self._node(a) for a in args]
        return self._call(function, parts, args)

    def _call(self, function: RuleFunction, parts: list[Evaluator], args: list[Node]
              ) -> Evaluator:
        run = function.python
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
