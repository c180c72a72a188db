"""Every operator and function of the rule language: its types, its SQL, its Python.

Built-ins and plugins' functions are :class:`RuleFunction` objects registered through the
``blocks_rule_functions`` hook, so both compilers have one registry and one path.

Null semantics, defined here once and kept by both compilers: SQL's own three-valued
logic, which the Python compiler follows.

- An empty value (``null``; records never hold ``""`` or ``[]``) makes arithmetic and
  functions empty, except ``coalesce``, ``concat`` (empty reads as ``""``), ``if`` and
  ``is_empty``.
- ``==`` and ``!=`` treat empty as a value: ``x == null`` holds when ``x`` is empty,
  and an empty ``stage`` is ``!= "won"``.
- Every other comparison, ``in``, ``contains``, ``starts_with`` and ``between`` is
  *unknown* (``null``) when an operand is empty; ``and``, ``or`` and ``not`` follow
  Kleene's logic (``false and unknown`` is false, ``true or unknown`` is true,
  ``not unknown`` is unknown); ``if`` takes an unknown condition as false.
- Where a condition decides, unknown does not pass: a filter does not select the record,
  a guard does not open. A validation rule fails only when its assertion is false, as a
  SQL ``CHECK`` does: ``discount <= 50 or approved_by != null`` accepts a record with no
  discount.

Text comparisons order by code point (``COLLATE "C"`` on PostgreSQL); ``contains`` and
``starts_with`` ignore case (ASCII letters only on SQLite, whose ``lower`` is ASCII).
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa

from .types import (
    ANY,
    BOOLEAN,
    DATE,
    DATETIME,
    NUMBER,
    TEXT,
    RuleError,
    RuleType,
    Signature,
    common,
    expect_all,
    fits,
    signature,
)

SQL = sa.ColumnElement[Any]


@dataclass(frozen=True)
class SqlArgs:
    """What a function's SQL implementation gets: the compiled operands, their types,
    the operand nodes (for literals), the database's name, and which operands are
    constants known not to be empty (so a comparison with them needs no NULL branch and
    the database can seek an index)."""

    values: list[SQL]
    types: list[RuleType]
    nodes: list[Any]
    dialect: str
    present: tuple[bool, ...] = ()


@dataclass(frozen=True)
class RuleFunction:
    """One operator or function.

    ``python`` receives the operands' values (or, when ``lazy``, zero-argument callables
    producing them). Unless ``null_safe``, an empty operand makes the result empty
    (``False`` for a ``condition``) without calling it. ``sql`` builds the SQLAlchemy
    expression; a ``condition``'s SQL is made two-valued by the compiler. ``name_args``
    operands are field names in quotes (``changed("stage")``); ``python_only`` functions
    have no SQL (they need the record being saved).
    """

    name: str
    min_args: int
    max_args: int | None
    check: Signature
    python: Callable[..., Any]
    sql: Callable[[SqlArgs], SQL] | None = None
    lazy: bool = False
    null_safe: bool = False
    condition: bool = False
    name_args: bool = False
    python_only: bool = False

    def arity_text(self) -> str:
        if self.max_args == self.min_args:
            return f"{self.min_args} argument{'s' if self.min_args != 1 else ''}"
        if self.max_args is None:
            return f"{self.min_args} or more arguments"
        return f"{self.min_args} to {self.max_args} arguments"


# --- Python helpers ------------------------------------------------------------------------


def comparable(a: Any, b: Any) -> tuple[Any, Any]:
    """Dates meet datetimes at midnight, so the two can be compared."""
    if isinstance(a, dt.datetime) != isinstance(b, dt.datetime):
        if isinstance(a, dt.date) and not isinstance(a, dt.datetime):
            a = dt.datetime.combine(a, dt.time())
        if isinstance(b, dt.date) and not isinstance(b, dt.datetime):
            b = dt.datetime.combine(b, dt.time())
    return a, b


def _compare(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def run(a: Any, b: Any) -> bool:
        a, b = comparable(a, b)
        return test(a, b)
    return run


_at_most = _compare(lambda a, b: a <= b)


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = comparable(a, b)
    return bool(a == b)


def _divide(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def _modulo(a: float, b: float) -> float | None:
    if b == 0:
        return None
    result = math.fmod(a, b)  # the sign of the dividend, as SQL's
    return int(result) if isinstance(a, int) and isinstance(b, int) else result


def _round(x: float, digits: float = 0) -> float:
    """Half away from zero on the decimal spelling, as SQL's ``round`` does."""
    places = int(digits)
    rounded = Decimal(repr(x)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return int(rounded) if places <= 0 else float(rounded)


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, list):
        return b in a
    return str(b).lower() in str(a).lower()


def _to_date(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _date_literal(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _datetime_literal(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --- SQL helpers ---------------------------------------------------------------------------


def _text_order(args: SqlArgs, index: int, *, ordering: bool = True) -> SQL:
    """An operand as it compares: text by code point (``ordering``: equality needs no
    collation, being bytewise under any deterministic one); on SQLite, a date beside a
    datetime as that day's midnight, spelt as SQLite stores datetimes."""
    value = args.values[index]
    if ordering and args.dialect == "postgresql" and args.types[index] == TEXT:
        return value.collate("C")
    if args.dialect == "sqlite" and args.types[index] == DATE and DATETIME in args.types:
        return sa.type_coerce(value, sa.String).concat(" 00:00:00.000000")
    return value


def _sql_compare(method: str) -> Callable[[SqlArgs], SQL]:
    def build(args: SqlArgs) -> SQL:
        left, right = _text_order(args, 0), _text_order(args, 1)
        return getattr(left, method)(right)  # type: ignore[no-any-return]
    return build


def _sql_equal(negate: bool) -> Callable[[SqlArgs], SQL]:
    def build(args: SqlArgs) -> SQL:
        a, b = args.values
        if args.nodes[1] is None or args.nodes[0] is None:
            other = a if args.nodes[1] is None else b
            same = other.is_(None)
        elif any(args.present):
            # A constant on one side: two-valued without the NULL branch, and with no
            # collation, in the plain form an index on the column serves.
            a, b = _text_order(args, 0, ordering=False), _text_order(args, 1, ordering=False)
            same = sa.and_((b if args.present[0] else a).isnot(None), a == b)
        else:
            a, b = _text_order(args, 0), _text_order(args, 1)
            same = sa.or_(sa.and_(a.isnot(None), b.isnot(None), a == b),
                          sa.and_(a.is_(None), b.is_(None)))
        return sa.not_(same) if negate else same
    return build


def _sql_divide(args: SqlArgs) -> SQL:
    a, b = args.values
    return (a * sa.literal(1.0)) / sa.func.nullif(b, 0)


def _sql_modulo(args: SqlArgs) -> SQL:
    a, b = args.values
    if args.dialect == "postgresql":
        return sa.func.mod(sa.cast(a, sa.Numeric), sa.func.nullif(sa.cast(b, sa.Numeric), 0))
    divisor = sa.func.nullif(b, 0)
    return a - divisor * sa.cast(a * sa.literal(1.0) / divisor, sa.Integer)


def _sql_in(args: SqlArgs) -> SQL:
    from .sql import array_contains, literal

    item, collection = args.values
    if isinstance(args.nodes[1], list):
        literals = [n for n in args.nodes[1] if n is not None]
        if not literals:
            return sa.case((item.is_(None), sa.null()), else_=sa.false())
        # Each value bound with its own type: bound with the column's NUMERIC(24, 4),
        # PostgreSQL's driver would read 0.1 as 0.
        return item.in_([literal(n) for n in literals])
    return array_contains(collection, item, args.dialect)


def _sql_contains(args: SqlArgs) -> SQL:
    from .sql import array_contains

    a, b = args.values
    if args.types[0].name == "list":
        return array_contains(a, b, args.dialect)
    position = sa.func.strpos if args.dialect == "postgresql" else sa.func.instr
    return position(sa.func.lower(a), sa.func.lower(b)) > 0


def _sql_starts_with(args: SqlArgs) -> SQL:
    a, b = args.values
    return sa.func.substr(sa.func.lower(a), 1, sa.func.length(b)) == sa.func.lower(b)


def _sql_as_date(value: SQL, kind: RuleType, dialect: str) -> SQL:
    if kind == DATETIME:
        return sa.cast(value, sa.Date) if dialect == "postgresql" else sa.func.date(value)
    return value


def _sql_date_add(args: SqlArgs) -> SQL:
    day, count = args.values[:2]
    whole = sa.cast(count, sa.Integer) if args.dialect == "sqlite" else sa.cast(
        sa.func.trunc(count), sa.Integer)
    days = whole * 7 if len(args.nodes) > 2 and args.nodes[2] == "weeks" else whole
    if args.dialect == "postgresql":
        return day + days
    return sa.func.date(day, sa.func.printf("%+d days", days), type_=sa.Date)


def _python_date_add(day: dt.date, count: float, unit: str = "days") -> dt.date:
    days = int(count) * (7 if unit == "weeks" else 1)
    return day + dt.timedelta(days=days)


def _sql_days_between(args: SqlArgs) -> SQL:
    a = _sql_as_date(args.values[0], args.types[0], args.dialect)
    b = _sql_as_date(args.values[1], args.types[1], args.dialect)
    if args.dialect == "postgresql":
        return b - a
    return sa.cast(sa.func.julianday(b) - sa.func.julianday(a), sa.Integer)


def _sql_part(part: str) -> Callable[[SqlArgs], SQL]:
    def build(args: SqlArgs) -> SQL:
        value = args.values[0]
        if args.dialect == "postgresql":
            return sa.cast(sa.extract(part, value), sa.Integer)
        pattern = "%Y" if part == "year" else "%m"
        return sa.cast(sa.func.strftime(pattern, value), sa.Integer)
    return build


def _sql_round(args: SqlArgs) -> SQL:
    value = args.values[0]
    digits = sa.cast(args.values[1], sa.Integer) if len(args.values) > 1 else sa.literal(0)
    if args.dialect == "postgresql":
        return sa.func.round(sa.cast(value, sa.Numeric), digits)
    return sa.func.round(value, digits)


def _sql_extreme(kind: str) -> Callable[[SqlArgs], SQL]:
    def build(args: SqlArgs) -> SQL:
        values = args.values
        if len(values) == 1:
            return values[0]
        any_empty = sa.or_(*(v.is_(None) for v in values))
        if args.dialect == "postgresql":
            picked = (sa.func.least if kind == "min" else sa.func.greatest)(*values)
        else:
            picked = getattr(sa.func, kind)(*values)
        return sa.case((any_empty, sa.null()), else_=picked)
    return build


def _sql_concat(args: SqlArgs) -> SQL:
    parts = [sa.func.coalesce(v, "") for v in args.values]
    result = parts[0]
    for part in parts[1:]:
        result = result.concat(part)
    return result


# --- signatures ----------------------------------------------------------------------------


def _mismatch(types: list[RuleType]) -> RuleError:
    message = f"cannot compare {' and '.join(map(str, types))}"
    if {t.name for t in types} >= {"text"} and {t.name for t in types} & {"date", "datetime"}:
        message += '; write a date as date("2025-01-31")'
    return RuleError(message)


def _same_types(types: list[RuleType]) -> RuleType:
    if common(types) is None:
        raise _mismatch(types)
    return BOOLEAN


def _ordered(types: list[RuleType]) -> RuleType:
    shared = common(types)
    if shared is None:
        raise _mismatch(types)
    if shared.name in ("list", "boolean"):
        raise RuleError(f"a {shared} has no order")
    return BOOLEAN


def _in_check(types: list[RuleType]) -> RuleType:
    item, collection = types
    if collection.name != "list":
        raise RuleError(f"in looks into a list, not {collection}")
    if not fits(item, collection.item or ANY) or {item.name, (collection.item or ANY).name} \
            == {"date", "datetime"}:
        raise RuleError(f"a {item} is never in a {collection}")
    return BOOLEAN


def _contains_check(types: list[RuleType]) -> RuleType:
    holder, item = types
    if holder.name == "list":
        if not fits(item, holder.item or ANY):
            raise RuleError(f"a {holder} never contains a {item}")
        return BOOLEAN
    return expect_all(TEXT, BOOLEAN)(types)


def _if_check(types: list[RuleType]) -> RuleType:
    if not fits(types[0], BOOLEAN):
        raise RuleError(f"if's condition is {types[0]}, where a condition is expected")
    shared = common(types[1:])
    if shared is None:
        raise RuleError(f"if's two outcomes are of different types: {types[1]} and {types[2]}")
    return shared


def _coalesce_check(types: list[RuleType]) -> RuleType:
    shared = common(types)
    if shared is None:
        raise RuleError("coalesce takes values of one type")
    return shared


def _extreme_check(types: list[RuleType]) -> RuleType:
    shared = common(types)
    if shared is None or shared.name in ("list", "boolean", "text"):
        raise RuleError("min and max take numbers, or dates")
    return shared


def _minus_check(types: list[RuleType]) -> RuleType:
    return expect_all(NUMBER)(types)


def _between_check(types: list[RuleType]) -> RuleType:
    return _ordered(types)


def _logic(types: list[RuleType]) -> RuleType:
    return expect_all(BOOLEAN, what="a condition")(types)


def _date_arg_check(types: list[RuleType]) -> RuleType:
    return expect_all(DATE, NUMBER, what="a date")(types)


# --- the built-ins -------------------------------------------------------------------------


def _all(values: Sequence[Callable[[], Any]]) -> bool | None:
    """Kleene's and: false wins, then unknown."""
    result: bool | None = True
    for value in values:
        found = value()
        if found is None:
            result = None
        elif not found:
            return False
    return result


def _any(values: Sequence[Callable[[], Any]]) -> bool | None:
    """Kleene's or: true wins, then unknown."""
    result: bool | None = False
    for value in values:
        found = value()
        if found is None:
            result = None
        elif found:
            return True
    return result


def _between(x: Any, low: Any, high: Any) -> bool | None:
    """``low <= x and x <= high``, with Kleene's and, as SQL's ``BETWEEN``."""
    above = None if x is None or low is None else _at_most(low, x)
    below = None if x is None or high is None else _at_most(x, high)
    return _all([lambda: above, lambda: below])


def _not(value: Callable[[], Any]) -> bool | None:
    found = value()
    return None if found is None else not found


def _if(condition: Callable[[], Any], then: Callable[[], Any], other: Callable[[], Any]
        ) -> Any:
    return then() if condition() else other()


def _coalesce(*values: Callable[[], Any]) -> Any:
    for value in values:
        found = value()
        if found is not None:
            return found
    return None


def builtin_functions() -> list[RuleFunction]:
    """The rule language's own vocabulary (issue: Vocabulary)."""
    number2 = expect_all(NUMBER)
    text1 = expect_all(TEXT)
    return [
        RuleFunction("and", 1, None, _logic, lambda *v: _all(v), lazy=True, null_safe=True,
                     condition=True, sql=lambda a: sa.and_(*a.values)),
        RuleFunction("or", 1, None, _logic, lambda *v: _any(v), lazy=True, null_safe=True,
                     condition=True, sql=lambda a: sa.or_(*a.values)),
        RuleFunction("!", 1, 1, _logic, _not, lazy=True, null_safe=True,
                     condition=True, sql=lambda a: sa.not_(a.values[0])),
        RuleFunction("==", 2, 2, _same_types, _equal, null_safe=True,
                     condition=True, sql=_sql_equal(False)),
        RuleFunction("!=", 2, 2, _same_types, lambda a, b: not _equal(a, b),
                     null_safe=True, condition=True, sql=_sql_equal(True)),
        RuleFunction("<", 2, 2, _ordered, _compare(lambda a, b: a < b), condition=True,
                     sql=_sql_compare("__lt__")),
        RuleFunction("<=", 2, 2, _ordered, _compare(lambda a, b: a <= b), condition=True,
                     sql=_sql_compare("__le__")),
        RuleFunction(">", 2, 2, _ordered, _compare(lambda a, b: a > b), condition=True,
                     sql=_sql_compare("__gt__")),
        RuleFunction(">=", 2, 2, _ordered, _compare(lambda a, b: a >= b), condition=True,
                     sql=_sql_compare("__ge__")),
        RuleFunction("between", 3, 3, _between_check, _between, condition=True, null_safe=True,
                     sql=lambda a: sa.and_(_text_order(a, 0) >= _text_order(a, 1),
                                           _text_order(a, 0) <= _text_order(a, 2))),
        RuleFunction("in", 2, 2, _in_check, lambda x, xs: x in xs, condition=True,
                     sql=_sql_in),
        RuleFunction("contains", 2, 2, _contains_check, _contains, condition=True,
                     sql=_sql_contains),
        RuleFunction("starts_with", 2, 2, expect_all(TEXT, BOOLEAN),
                     lambda a, b: a.lower().startswith(b.lower()), condition=True,
                     sql=_sql_starts_with),
        RuleFunction("is_empty", 1, 1, lambda t: BOOLEAN,
                     lambda v: v is None or v == "" or v == [], null_safe=True,
                     condition=True, sql=lambda a: a.values[0].is_(None)),
        RuleFunction("+", 2, 2, number2, operator.add, sql=lambda a: a.values[0] +
                     a.values[1]),
        RuleFunction("-", 1, 2, _minus_check, lambda a, b=None: -a if b is None else a - b,
                     sql=lambda a: -a.values[0] if len(a.values) == 1
                     else a.values[0] - a.values[1]),
        RuleFunction("*", 2, 2, number2, operator.mul,
                     sql=lambda a: a.values[0] * a.values[1]),
        RuleFunction("/", 2, 2, number2, _divide, sql=_sql_divide),
        RuleFunction("%", 2, 2, number2, _modulo, sql=_sql_modulo),
        RuleFunction("if", 3, 3, _if_check, _if, lazy=True, null_safe=True,
                     sql=lambda a: sa.case((a.values[0], a.values[1]), else_=a.values[2])),
        RuleFunction("coalesce", 1, None, _coalesce_check, _coalesce, lazy=True,
                     null_safe=True, sql=lambda a: sa.func.coalesce(*a.values)),
        RuleFunction("today", 0, 0, lambda t: DATE, lambda: utcnow().date(),
                     sql=lambda a: sa.literal(utcnow().date(), sa.Date)),
        RuleFunction("now", 0, 0, lambda t: DATETIME, utcnow,
                     sql=lambda a: sa.literal(utcnow(), sa.DateTime)),
        RuleFunction("date", 1, 1, signature(TEXT, result=DATE), _date_literal,
                     sql=lambda a: sa.literal(_date_literal(a.nodes[0]), sa.Date)),
        RuleFunction("datetime", 1, 1, signature(TEXT, result=DATETIME), _datetime_literal,
                     sql=lambda a: sa.literal(_datetime_literal(a.nodes[0]), sa.DateTime)),
        RuleFunction("date_add", 2, 3, signature(DATE, NUMBER, TEXT, result=DATE),
                     _python_date_add, sql=_sql_date_add),
        RuleFunction("days_between", 2, 2, _date_arg_check,
                     lambda a, b: (_to_date(b) - _to_date(a)).days, sql=_sql_days_between),
        RuleFunction("year", 1, 1, signature(DATE, result=NUMBER), lambda d: d.year,
                     sql=_sql_part("year")),
        RuleFunction("month", 1, 1, signature(DATE, result=NUMBER), lambda d: d.month,
                     sql=_sql_part("month")),
        RuleFunction("lower", 1, 1, text1, lambda s: s.lower(),
                     sql=lambda a: sa.func.lower(a.values[0])),
        RuleFunction("upper", 1, 1, text1, lambda s: s.upper(),
                     sql=lambda a: sa.func.upper(a.values[0])),
        RuleFunction("trim", 1, 1, text1, lambda s: s.strip(" "),
                     sql=lambda a: sa.func.trim(a.values[0])),
        RuleFunction("len", 1, 1, expect_all(TEXT, NUMBER), len,
                     sql=lambda a: sa.func.length(a.values[0])),
        RuleFunction("concat", 1, None, text1, lambda *s: "".join(x or "" for x in s),
                     null_safe=True, sql=_sql_concat),
        RuleFunction("round", 1, 2, number2, _round, sql=_sql_round),
        RuleFunction("abs", 1, 1, number2, abs, sql=lambda a: sa.func.abs(a.values[0])),
        RuleFunction("min", 1, None, _extreme_check, lambda *v: min(v),
                     sql=_sql_extreme("min")),
        RuleFunction("max", 1, None, _extreme_check, lambda *v: max(v),
                     sql=_sql_extreme("max")),
        RuleFunction("changed", 1, 1, lambda t: BOOLEAN,
                     lambda env, name: env.changed(name), name_args=True, python_only=True,
                     condition=True),
        RuleFunction("previous", 1, 1, lambda t: t[0],
                     lambda env, name: env.previous_value(name), name_args=True,
                     python_only=True, null_safe=True),
    ]
