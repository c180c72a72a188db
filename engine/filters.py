"""Filters: a JsonLogic-shaped condition tree, checked against an entity and compiled to SQL.

``{"and": [{">": [{"var": "amount"}, 10000]}, {"==": [{"var": "stage"}, "won"]}]}``

Every node is checked before any SQL runs: unknown fields and operators, values of the
wrong type, operators a field type does not take. Identifiers come only from validated
metadata; values are always bound parameters.

Null semantics (the same in SQL and in memory): a comparison with an empty value is
false, so ``not`` of it is true; ``!=`` is ``not ==``, so an empty field is ``!= "x"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .entities import Entity, Field
from .errors import QueryError

if TYPE_CHECKING:
    from .workspace import Catalog

MAX_DEPTH = 32
MAX_NODES = 500
COMPARISONS = {"==": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__",
               ">": "__gt__", ">=": "__ge__"}
#: System columns a filter or a sort may name, with the field type they behave as.
SYSTEM_TYPES = {"id": "text", "version": "integer", "owner_id": "user",
                "created_at": "datetime", "created_by": "user",
                "updated_at": "datetime", "updated_by": "user"}


class Target:
    """A column a filter names (``amount``, ``account.city``), with its field type."""

    def __init__(self, column: sa.ColumnElement[Any], field: Field | None, type_name: str,
                 convert: Any) -> None:
        self.column = column
        self.field = field
        self.type_name = type_name
        self.convert = convert


class FilterCompiler:
    """Compiles filter trees for one entity; collects the joins reference paths need."""

    def __init__(self, catalog: Catalog, entity: Entity, dialect: str) -> None:
        self.catalog = catalog
        self.dialect = dialect
        self.entity = entity
        self.joins: dict[str, tuple[sa.FromClause, sa.ColumnElement[bool]]] = {}
        self._nodes = 0

    def fail(self, where: str, message: str) -> QueryError:
        return QueryError({"filter": [f"{where}: {message}" if where else message]})

    # --- names ----------------------------------------------------------------------------

    def target(self, name: Any, where: str) -> Target:
        if not isinstance(name, str) or not name:
            raise self.fail(where, "var names a field")
        head, _, rest = name.partition(".")
        if not rest:
            return self._local(self.entity, self.entity.table, name, where)
        ref = self.entity.fields.get(head)
        if ref is None or ref.ref is None:
            raise self.fail(where, f"{head!r} is not a reference field of {self.entity.name}")
        if "." in rest:
            raise self.fail(where, "a filter follows a reference one hop only")
        target = self.catalog.entity(ref.ref)
        if head not in self.joins:
            alias = target.table.alias(f"ref_{head}")
            self.joins[head] = (alias, alias.c.id == self.entity.table.c[head])
        return self._local(target, self.joins[head][0], rest, where)

    def _local(self, entity: Entity, table: sa.FromClause, name: str, where: str) -> Target:
        from .fieldtypes import _date_in, _datetime_in

        f = entity.fields.get(name)
        if f is not None:
            return Target(table.c[name], f, f.type.name, f.to_db)
        if name in SYSTEM_TYPES:
            kind = SYSTEM_TYPES[name]
            convert = _datetime_in if kind == "datetime" else (_date_in if kind == "date"
                                                               else (lambda v: v))
            return Target(table.c[name], None, kind, convert)
        raise self.fail(where, f"{entity.name} has no field {name!r}")

    # --- values ---------------------------------------------------------------------------

    def value(self, target: Target, value: Any, where: str) -> Any:
        """Check a literal against the target's type and convert it for the database."""
        kind = target.type_name
        ok: bool
        if kind in {"integer"}:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind in {"decimal", "currency", "percent"}:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif kind == "boolean":
            ok = isinstance(value, bool)
        elif kind in {"json"}:
            ok = True
        else:
            ok = isinstance(value, str)
        if not ok:
            raise self.fail(where, f"{value!r} does not fit a {kind} field")
        try:
            return target.convert(value)
        except (ValueError, TypeError):
            raise self.fail(where, f"{value!r} is not a valid {kind}") from None

    # --- nodes ----------------------------------------------------------------------------

    def compile(self, tree: Any) -> sa.ColumnElement[bool]:
        self._nodes = 0
        return self._node(tree, "", 0)

    def _node(self, node: Any, where: str, depth: int) -> sa.ColumnElement[bool]:
        self._nodes += 1
        if depth > MAX_DEPTH or self._nodes > MAX_NODES:
            raise self.fail(where, f"a filter may nest {MAX_DEPTH} deep and hold "
                                   f"{MAX_NODES} nodes at most")
        if node is True:
            return sa.true()
        if not isinstance(node, Mapping) or len(node) != 1:
            raise self.fail(where, "each condition is an object with one operator")
        ((op, args),) = node.items()
        here = f"{where}/{op}"
        if op in ("and", "or"):
            if not isinstance(args, list) or not args:
                raise self.fail(here, f"{op} takes a list of conditions")
            parts = [self._node(a, f"{here}/{i}", depth + 1) for i, a in enumerate(args)]
            return sa.and_(*parts) if op == "and" else sa.or_(*parts)
        if op in ("!", "not"):
            inner = args[0] if isinstance(args, list) and len(args) == 1 else args
            return sa.not_(self._node(inner, here, depth + 1))
        args = args if isinstance(args, list) else [args]
        if op in COMPARISONS:
            return self._comparison(op, args, here)
        if op == "in":
            return self._in(args, here)
        if op == "between":
            return self._between(args, here)
        if op in ("contains", "starts_with"):
            return self._text(op, args, here)
        if op == "is_empty":
            return self._empty(args, here)
        raise self.fail(where, f"unknown operator {op!r}")

    def _var(self, arg: Any, where: str) -> Target:
        if not (isinstance(arg, Mapping) and set(arg) == {"var"}):
            raise self.fail(where, "the first operand is a field: {\"var\": \"name\"}")
        return self.target(arg["var"], where)

    def _allows(self, target: Target, op: str, where: str) -> None:
        ordered = {"<", "<=", ">", ">=", "between"}
        if target.field is not None:
            allowed = target.field.type.operators
        else:
            allowed = ordered if target.type_name in {"integer", "datetime"} else frozenset(
                {"<", "<=", ">", ">=", "contains", "starts_with"})
        if op in ordered | {"contains", "starts_with"} and op not in allowed:
            raise self.fail(where, f"a {target.type_name} field does not take {op!r}")

    def _comparison(self, op: str, args: list[Any], where: str) -> sa.ColumnElement[bool]:
        if len(args) == 3 and op in ("<", "<="):  # JsonLogic's between: lo <= x <= hi
            low, mid, high = args
            target = self._var(mid, where)
            self._allows(target, op, where)
            lo, hi = self.value(target, low, where), self.value(target, high, where)
            col = target.column
            cmp = (col.__le__ if op == "<=" else col.__lt__)
            low_cmp = (col.__ge__ if op == "<=" else col.__gt__)
            return sa.and_(col.isnot(None), low_cmp(lo), cmp(hi))
        if len(args) != 2:
            raise self.fail(where, f"{op} compares two operands")
        target = self._var(args[0], where)
        self._allows(target, op, where)
        if target.field is not None and target.field.type.is_array and op in ("==", "!="):
            raise self.fail(where, "compare a list field with 'contains' or 'is_empty'")
        col = target.column
        if isinstance(args[1], Mapping) and set(args[1]) == {"var"}:
            other = self.target(args[1]["var"], where)
            if other.type_name != target.type_name:
                raise self.fail(where, f"cannot compare a {target.type_name} field with a "
                                       f"{other.type_name} field")
            matched = sa.and_(col.isnot(None), other.column.isnot(None),
                              getattr(col, COMPARISONS[op if op != "!=" else "=="])(
                                  other.column))
            return sa.not_(matched) if op == "!=" else matched
        if args[1] is None:
            if op not in ("==", "!="):
                raise self.fail(where, f"{op} cannot compare with null; use is_empty")
            return col.is_(None) if op == "==" else col.isnot(None)
        value = self.value(target, args[1], where)
        if op == "!=":
            return sa.or_(col.is_(None), col != value)
        return sa.and_(col.isnot(None), getattr(col, COMPARISONS[op])(value))

    def _in(self, args: list[Any], where: str) -> sa.ColumnElement[bool]:
        if len(args) != 2 or not isinstance(args[1], list):
            raise self.fail(where, "in takes a field and a list of values")
        target = self._var(args[0], where)
        if target.field is not None and target.field.type.is_array:
            raise self.fail(where, "use contains to look into a list field")
        values = [self.value(target, v, f"{where}/{i}") for i, v in enumerate(args[1])]
        if not values:
            return sa.false()
        return sa.and_(target.column.isnot(None), target.column.in_(values))

    def _between(self, args: list[Any], where: str) -> sa.ColumnElement[bool]:
        if len(args) != 3:
            raise self.fail(where, "between takes a field, a low and a high value")
        target = self._var(args[0], where)
        self._allows(target, "between", where)
        low, high = (self.value(target, v, where) for v in args[1:])
        return sa.and_(target.column.isnot(None), target.column.between(low, high))

    def _text(self, op: str, args: list[Any], where: str) -> sa.ColumnElement[bool]:
        if len(args) != 2:
            raise self.fail(where, f"{op} takes a field and a value")
        target = self._var(args[0], where)
        self._allows(target, op, where)
        col = target.column
        if target.field is not None and target.field.type.is_array:
            item = args[1]
            if not isinstance(item, str | int | float) or isinstance(item, bool):
                raise self.fail(where, f"{item!r} is not a list item")
            return sa.and_(col.isnot(None), array_contains(col, item, self.dialect))
        if not isinstance(args[1], str):
            raise self.fail(where, f"{op} takes text")
        escaped = args[1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%" if op == "contains" else f"{escaped}%"
        return sa.and_(col.isnot(None), col.ilike(pattern, escape="\\"))

    def _empty(self, args: list[Any], where: str) -> sa.ColumnElement[bool]:
        if len(args) != 1:
            raise self.fail(where, "is_empty takes one field")
        target = self._var(args[0], where)
        # Records never store "" or []: the record service keeps them as empty (null).
        return target.column.is_(None)


def array_contains(column: sa.ColumnElement[Any], item: Any, dialect: str
                   ) -> sa.ColumnElement[bool]:
    """Whether a JSON array column holds ``item``, in each database's own way."""
    if dialect == "postgresql":
        return column.op("@>")(sa.func.jsonb_build_array(sa.literal(item)))
    each = sa.func.json_each(column).table_valued("value")
    return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == item))
