"""Field types: what a field's value is in JSON, in the database, and how it converts.

Every type, built-in or from a plugin, is a :class:`FieldType` registered through the
``blocks_field_types`` hook (see :mod:`blockscrm.engine.builtins`), so the engine has one
registry and one path for both.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

#: A database type for one property schema (``{"type": "string", "maxLength": 80, ...}``).
ColumnFactory = Callable[[Mapping[str, Any]], sa.types.TypeEngine[Any]]


def identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class FieldType:
    """One kind of field: its JSON shape, its column and its conversions (what rules may do
    with its values follows from its rule type, see ``rules/types.py``).

    ``to_db``/``from_db`` translate between the record's JSON value and the column's
    Python value; ``convert`` turns a value of another type into this one (used when a
    publish changes a field's type) and raises ``ValueError`` when it cannot.
    """

    name: str
    json_schema: Mapping[str, Any]
    column: ColumnFactory
    to_db: Callable[[Any], Any] = identity
    from_db: Callable[[Any], Any] = identity
    convert: Callable[[Any], Any] = identity
    #: Whether full-text search looks into this field.
    searchable: bool = False
    #: Whether the value names a record of another entity (``x-ref``).
    is_reference: bool = False
    #: Whether the value is a JSON array stored as one JSON column.
    is_array: bool = False
    #: Whether the value is computed (``x-formula``) on read, with no column of its own.
    computed: bool = False
    #: Whether the value is a number stored with ``x-scale`` decimals (NUMERIC(24, scale)).
    numeric: bool = False
    #: The built-in type whose input the screens' forms use for it (a plugin's type; None:
    #: its own name, for the built-ins).
    widget: str | None = None
    #: How the screens show a value of it (a plugin's type; None: as the built-ins do).
    display: Callable[[Any], str] | None = None
    #: What rules see its values as (a plugin's type): ``number``, ``text``, ``boolean``,
    #: ``date`` or ``datetime``; None: any (the built-ins' are known by name).
    rule_type: str | None = None

    @property
    def converts(self) -> bool:
        """Whether the JSON value and the column's value differ (dates, numbers)."""
        return self.numeric or self.to_db is not identity or self.from_db is not identity


# --- conversions ------------------------------------------------------------------------


def text_problem(value: Any) -> str | None:
    """Why a JSON value's text cannot be stored on every database, or None: PostgreSQL
    refuses the NUL character, and no driver encodes a lone surrogate."""
    if isinstance(value, str):
        if "\x00" in value:
            return "must not contain the NUL character"
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode text"
        return None
    if isinstance(value, list):
        return next((p for p in map(text_problem, value) if p), None)
    if isinstance(value, dict):
        return next((p for p in map(text_problem, [*value, *value.values()]) if p), None)
    return None


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


INT64 = 2**63 - 1


def _integer_in(value: int) -> int:
    if not -INT64 - 1 <= value <= INT64:
        raise ValueError(f"must be between {-INT64 - 1} and {INT64}")
    return value


def fit_numeric(value: float, scale: int) -> int | float:
    """A number rounded to its column's decimals (half away from zero, as the database
    would), so what is answered is what is stored, on every database."""
    if type(value) is int and abs(value) < 10 ** (24 - scale):
        return value
    exact = Decimal(repr(value))
    if not exact.is_finite() or abs(exact) >= Decimal(10) ** (24 - scale):
        raise ValueError(f"must be less than 10^{24 - scale} in size")
    rounded = exact.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)


def _to_integer(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    number = Decimal(str(value).strip())
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def _to_number(value: Any) -> float | int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return int(number) if number == number.to_integral_value() else float(number)


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "y"}:
        return True
    if text in {"false", "0", "no", "n"}:
        return False
    raise ValueError(f"{value!r} is not a yes/no value")


def _to_date(value: Any) -> str:
    return dt.date.fromisoformat(str(value).strip()[:10]).isoformat()


def _parse_datetime(value: Any) -> dt.datetime:
    """RFC 3339 (``t`` and ``z`` too) to naive UTC; :raises ValueError: out of range."""
    moment = dt.datetime.fromisoformat(str(value).strip().upper())
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValueError(f"{value!r} is out of range in UTC") from None
    return moment


def _to_datetime(value: Any) -> str:
    return _datetime_out(_parse_datetime(value))


def _datetime_out(moment: dt.datetime | None) -> str | None:
    """Datetimes are stored as naive UTC and travel as RFC 3339 with ``Z``."""
    if moment is None:
        return None
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds") + "Z"


def json_value(value: Any) -> Any:
    """A value a rule computed, as a record carries it: dates and datetimes as text."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return _datetime_out(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _date_in(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def _date_out(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _datetime_in(value: str | None) -> dt.datetime | None:
    return None if value is None else _parse_datetime(value)


def _to_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            parsed = json.loads(stripped)
            if isinstance(parsed, list):
                return parsed
        return [part.strip() for part in stripped.split(",") if part.strip()]
    raise ValueError(f"{value!r} is not a list")


def _to_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# --- columns ----------------------------------------------------------------------------


def _string_column(schema: Mapping[str, Any]) -> sa.types.TypeEngine[Any]:
    length = schema.get("maxLength")
    return sa.String(length) if isinstance(length, int) and length <= 1000 else sa.Text()


def _text_column(schema: Mapping[str, Any]) -> sa.types.TypeEngine[Any]:
    return sa.Text()


class ExactNumeric(sa.types.TypeDecorator[Any]):
    """NUMERIC that binds a float as the decimal it prints as: PostgreSQL would otherwise
    cast a float8 parameter to numeric through 15 significant digits and store
    106875789097.5661 as 106875789097.566. Read back as float (or int), as JSON has it."""

    impl = sa.Numeric
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        return Decimal(repr(value)) if isinstance(value, float) else value


def _numeric_column(schema: Mapping[str, Any]) -> sa.types.TypeEngine[Any]:
    scale = int(schema.get("x-scale", 4))
    return ExactNumeric(24, scale, asdecimal=False)


def _json_column(schema: Mapping[str, Any]) -> sa.types.TypeEngine[Any]:
    """A JSON document kept as given (PostgreSQL ``json``: numbers and key order intact).
    none_as_null: an empty value is SQL NULL, never the JSON literal null."""
    return sa.JSON(none_as_null=True)


def _list_column(schema: Mapping[str, Any]) -> sa.types.TypeEngine[Any]:
    """A list of values; ``jsonb`` on PostgreSQL, whose ``@>`` answers ``contains``."""
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True),
                                                   "postgresql")


def _const(column_type: sa.types.TypeEngine[Any]) -> ColumnFactory:
    return lambda schema: column_type


def builtin_field_types() -> list[FieldType]:
    """The field types every workspace has (DESIGN.md, "Shapes")."""
    text = {"type": "string"}
    number = {"type": "number"}
    return [
        FieldType("text", text, _string_column, convert=_to_text, searchable=True),
        FieldType("long_text", text, _text_column, convert=_to_text, searchable=True),
        # HTML from the form's editor: stored as given, sanitised whenever it is shown.
        FieldType("rich_text", text, _text_column, convert=_to_text, searchable=True),
        FieldType("email", {"type": "string", "format": "email", "maxLength": 254},
                  _string_column, convert=lambda v: _to_text(v).strip(), searchable=True),
        FieldType("phone", {"type": "string", "maxLength": 40,
                            "pattern": r"^\+?[0-9 ()./-]{3,40}$"},
                  _string_column, convert=lambda v: _to_text(v).strip(), searchable=True),
        FieldType("url", {"type": "string", "format": "uri", "maxLength": 2000},
                  _text_column, convert=lambda v: _to_text(v).strip()),
        FieldType("integer", {"type": "integer"}, _const(sa.BigInteger()), to_db=_integer_in,
                  convert=_to_integer),
        FieldType("decimal", number, _numeric_column, convert=_to_number,
                  numeric=True),
        FieldType("currency", number, _numeric_column, convert=_to_number,
                  numeric=True),
        FieldType("percent", number, _numeric_column, convert=_to_number,
                  numeric=True),
        FieldType("boolean", {"type": "boolean"}, _const(sa.Boolean()), convert=_to_boolean),
        FieldType("date", {"type": "string", "format": "date"}, _const(sa.Date()),
                  to_db=_date_in, from_db=_date_out, convert=_to_date),
        FieldType("datetime", {"type": "string", "format": "date-time"},
                  _const(sa.DateTime()), to_db=_datetime_in, from_db=_datetime_out,
                  convert=_to_datetime),
        FieldType("select", text, _string_column, convert=_to_text),
        FieldType("multi_select", {"type": "array", "uniqueItems": True}, _list_column,
                  convert=_to_list, is_array=True),
        FieldType("tags", {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                  _list_column, convert=_to_list, is_array=True),
        FieldType("reference", {"type": "string", "maxLength": 32}, _const(sa.String(32)),
                  convert=_to_text, is_reference=True),
        FieldType("user", {"type": "string", "maxLength": 64}, _string_column,
                  convert=_to_text),
        FieldType("json", {}, _json_column, convert=_to_json),
        FieldType("formula", {}, _json_column, computed=True),
    ]


def infer_field_type(schema: Mapping[str, Any]) -> str:
    """The field type of a property that names none with ``x-field``, from its JSON shape."""
    json_type = schema.get("type")
    if json_type == "string":
        if "enum" in schema:
            return "select"
        return {"date": "date", "date-time": "datetime", "email": "email",
                "uri": "url"}.get(schema.get("format", ""), "text")
    if json_type == "integer":
        return "integer"
    if json_type == "number":
        return "decimal"
    if json_type == "boolean":
        return "boolean"
    if json_type == "array":
        items = schema.get("items")
        return "multi_select" if isinstance(items, dict) and "enum" in items else "tags"
    return "json"
