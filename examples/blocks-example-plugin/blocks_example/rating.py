"""The ``rating`` field type and the ``stars(n)`` rule function.

A rating is a whole number from 1 to 5. The screens take it in the built-in ``integer``
input (``widget``) and show it as stars (``display``); rules turn it into stars with
``stars(rating)``, which runs in Python (automations, validation) and in SQL (filters),
with the same answer on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from blockscrm.engine import FieldType
from blockscrm.engine.rules import RuleFunction
from blockscrm.engine.rules.functions import SqlArgs
from blockscrm.engine.rules.types import NUMBER, TEXT, signature

#: Five full stars then five empty ones: ``n`` stars are the five characters from ``5 - n``,
#: a slice both Python and SQL's ``substr`` take.
STRIP = "★★★★★☆☆☆☆☆"


def stars(n: float) -> str | None:
    """``n`` out of five as stars (``4`` → ``★★★★☆``); empty unless ``n`` is 0 to 5 and
    whole."""
    if not 0 <= n <= 5 or n != int(n):
        return None
    return STRIP[5 - int(n):10 - int(n)]


def stars_sql(args: SqlArgs) -> sa.ColumnElement[Any]:
    """:func:`stars` in SQL: ``substr`` counts characters (not bytes) on both databases."""
    n = args.values[0]
    start = sa.cast(6 - n, sa.Integer)
    return sa.case((n.in_(range(6)), sa.func.substr(sa.literal(STRIP, sa.Text), start, 5)),
                   else_=sa.null())


def to_rating(value: Any) -> int:
    """A value of another type as a rating, when a publish changes a field into one."""
    number = int(str(value).strip())
    if not 1 <= number <= 5:
        raise ValueError(f"{value!r} is not a rating from 1 to 5")
    return number


def rating_column(schema: Mapping[str, Any]) -> sa.types.TypeEngine[Any]:
    return sa.SmallInteger()


RATING = FieldType("rating", {"type": "integer", "minimum": 1, "maximum": 5}, rating_column,
                   convert=to_rating, widget="integer", display=stars)

STARS = RuleFunction("stars", 1, 1, signature(NUMBER, result=TEXT), stars, sql=stars_sql)
