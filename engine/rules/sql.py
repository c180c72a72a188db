"""The tree compiled to a SQLAlchemy expression, to select the records it matches.

Conditions keep SQL's three-valued logic, which the Python compiler follows (see
:mod:`.functions`). Subtrees that name no field of the record (the
user, ``today()``, literals) are folded to one bound value by the Python compiler, so
both compilers share their semantics there too. Identifiers come only from validated
metadata; values are always bound.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .functions import RuleFunction, SqlArgs
from .python import Env, PythonCompiler
from .tree import Node, is_var, operation
from .types import BOOLEAN, NULL, Checker, RuleError, RuleType, Scope

if TYPE_CHECKING:
    from ..entities import Entity

SQL = sa.ColumnElement[Any]


def array_contains(column: SQL, item: Any, dialect: str) -> SQL:
    """Whether a JSON array column holds ``item``, in each database's own way."""
    if dialect == "postgresql":
        return column.op("@>", is_comparison=True)(sa.func.jsonb_build_array(item))
    each = sa.func.json_each(column).table_valued("value")
    found = sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == item))
    # json_each(NULL) has no rows, which would make an empty list "not containing": unknown
    return sa.case((sa.or_(column.is_(None), item.is_(None)), sa.null()), else_=found)


def literal(value: Any) -> SQL:
    """A bound value with the SQL type its Python type asks for."""
    if value is None:
        # A bare NULL, so it may stand where SQLAlchemy refuses None (``x >= NULL``).
        return sa.literal_column("NULL")
    if isinstance(value, bool):
        return sa.literal(value, sa.Boolean)
    if isinstance(value, int):
        return sa.literal(value, sa.BigInteger)
    if isinstance(value, float):
        return sa.literal(value, sa.Float)
    if isinstance(value, dt.datetime):
        return sa.literal(value, sa.DateTime)
    if isinstance(value, dt.date):
        return sa.literal(value, sa.Date)
    return sa.literal(value, sa.String)


class SqlCompiler:
    """Compiles trees over one entity's table; ``joins`` collects what reference paths
    (``account.city``) need, one outer join per reference field."""

    def __init__(self, scope: Scope, functions: Mapping[str, RuleFunction], dialect: str,
                 *, table: sa.FromClause | None = None, user: Mapping[str, Any] | None = None,
                 formulas: Mapping[str, Node] | None = None) -> None:
        self.scope = scope
        self.functions = functions
        self.dialect = dialect
        self.table = table if table is not None else scope.entity.table
        self.env = Env(user=user)
        self.formulas = dict(formulas or {})
        self.checker = Checker(scope, functions,
                               forbidden=frozenset(n for n, f in functions.items()
                                                   if f.python_only))
        self.python = PythonCompiler(scope, functions, self.formulas)
        self.joins: dict[str, tuple[sa.FromClause, SQL]] = {}

    # --- entry points ---------------------------------------------------------------------

    def condition(self, tree: Node) -> SQL:
        """A SQL condition (true, false or unknown); :raises RuleError: when the tree is
        not a condition."""
        self.checker.check(tree, BOOLEAN)
        return self._as_condition(tree)

    def value(self, tree: Node) -> SQL:
        self.checker.check(tree)
        return self._node(tree)

    # --- nodes ----------------------------------------------------------------------------

    def _type(self, node: Node) -> RuleType:
        return self.checker.type_of(node, "", 0)

    def _constant(self, node: Node) -> bool:
        """Whether a subtree names nothing of the record (so it folds to one value)."""
        if isinstance(node, list):
            return all(self._constant(n) for n in node)
        if is_var(node):
            return self.scope.resolve(node["var"]).scope == "user"
        found = operation(node)
        if found is None:
            return True
        op, args = found
        return not self.functions[op].name_args and all(self._constant(a) for a in args)

    def _as_condition(self, node: Node) -> SQL:
        if isinstance(node, bool):
            return sa.true() if node else sa.false()
        compiled = self._node(node)
        found = operation(node)
        if found is not None and self.functions[found[0]].condition:
            return compiled
        return compiled == sa.true()  # a boolean field or value: empty stays unknown

    def _node(self, node: Node) -> SQL:
        if self._constant(node) and not isinstance(node, list):
            value = self.python.compile(node)({}, self.env)
            return literal(value)
        if is_var(node):
            return self._var(node["var"])
        found = operation(node)
        assert found is not None
        op, args = found
        function = self.functions[op]
        result_type = self._type(node)
        if result_type == NULL:
            return literal(None)  # if(c, null, null) and the like: always empty
        if function.sql is None:
            raise RuleError(f"{op} cannot run in the database", f"/{op}")
        types = [self._type(a) for a in args]
        if function.lazy and op in ("and", "or", "!"):
            values = [self._as_condition(a) for a in args]
        elif op == "if":
            values = [self._as_condition(args[0]), self._node(args[1]), self._node(args[2])]
            return _typed(function.sql(SqlArgs(values, types, list(args), self.dialect)),
                          result_type, self.dialect)
        else:
            args = [self._folded(a) for a in args]
            known = [self._known(a) for a in args]
            if not function.null_safe and False in known:
                return literal(None)  # an empty operand: the result is empty (or unknown)
            values = [self._node(a) if not isinstance(a, list) else sa.null() for a in args]
            present = tuple(k is True for k in known)
            return function.sql(SqlArgs(values, types, list(args), self.dialect, present))
        return function.sql(SqlArgs(values, types, list(args), self.dialect))

    def _known(self, node: Node) -> bool | None:
        """For a constant operand, whether it has a value (False: it is empty); None for
        an operand that varies with the record."""
        if isinstance(node, list) or not self._constant(node):
            return None
        return self.python.compile(node)({}, self.env) is not None

    def _folded(self, node: Node) -> Node:
        """A constant list operand as its values (``in`` needs them as a list literal)."""
        if isinstance(node, list) or self._constant(node):
            if not self._constant(node):
                raise RuleError("a list in a rule that runs in the database holds constants")
            value = self.python.compile(node)({}, self.env)
            if isinstance(value, list):
                return value
        return node

    def _var(self, path: str) -> SQL:
        ref = self.scope.resolve(path)
        if ref.via is not None:
            via = ref.via
            if via.name not in self.joins:
                assert self.scope.catalog is not None and via.ref is not None
                target = self.scope.catalog.entities[via.ref].table.alias(f"ref_{via.name}")
                self.joins[via.name] = (target, target.c.id == self.table.c[via.name])
            return self.joins[via.name][0].c[path.partition(".")[2]]  # type: ignore[no-any-return]
        if path in self.formulas:
            return self._node(self.formulas[path])
        return self.table.c[path]  # type: ignore[no-any-return]


SQL_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "number": sa.Numeric(), "text": sa.Text(), "boolean": sa.Boolean(), "date": sa.Date(),
    "datetime": sa.DateTime()}


def _typed(expression: SQL, kind: RuleType, dialect: str) -> SQL:
    """A CASE whose branches may all be NULL is text to PostgreSQL: say its type."""
    if dialect == "postgresql" and kind.name in SQL_TYPES:
        return sa.cast(expression, SQL_TYPES[kind.name])
    return expression


def formula_columns(entity: Entity, compiler: SqlCompiler) -> list[SQL]:
    """The entity's formula fields as labelled SQL expressions, to select beside the row."""
    return [compiler.value(tree).label(name) for name, tree in entity.formulas.items()]
