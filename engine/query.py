"""Queries over one entity: filter, sort, keyset pages, field selection, counts, reports.

A :class:`Query` is immutable, like SQLAlchemy's ``select()``: each method answers a new
one, and everything it is given is checked when given, before any SQL runs.

Pages are keyset pages: the cursor holds the last row's sort values (signed, and bound to
the query that made it), so page 10,000 costs what page 1 costs. Empty values sort as
the greatest: last going up, first going down, on every database.

Full-text search keeps the records with every word of the text in one of the entity's
searchable fields: PostgreSQL matches each field's ``to_tsvector('simple', …)`` (a GIN
index per field) against ``plainto_tsquery`` of the word; SQLite matches the word as a
case-insensitive substring.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .access import grant_for
from .accounts import User
from .entities import Entity, search_document
from .errors import NotFound, QueryError
from .fieldtypes import text_problem
from .records import to_record
from .rules import RuleError, RuleSyntaxError, dependencies, parse_rule
from .rules.sql import SqlCompiler, formula_columns
from .rules.types import DATE, DATETIME, SYSTEM_FIELDS, RuleType

if TYPE_CHECKING:
    from .workspace import Catalog, Workspace

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
COUNT_CAP = 10_000
METRICS = ("count", "sum", "avg", "min", "max")
#: System columns that are never empty, so a keyset bound needs no ``IS NULL`` branch.
NEVER_EMPTY = frozenset({"id", "version", "created_at", "updated_at"})
BUCKETS = {"day": ("%Y-%m-%d", "YYYY-MM-DD"), "month": ("%Y-%m", "YYYY-MM"),
           "year": ("%Y", "YYYY")}


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class Count:
    """A count; ``exact`` is False when it stopped at the cap (the true count is larger)."""

    value: int
    exact: bool


@dataclass(frozen=True)
class Target:
    """A column a query names (``amount``, ``account.city``, a formula), with its type."""

    column: sa.ColumnElement[Any]
    type: RuleType
    is_list: bool

    def convert(self, value: Any) -> Any:
        """A cursor's JSON value back to what the column compares with."""
        if self.type == DATE:
            return dt.date.fromisoformat(value)
        if self.type == DATETIME:
            return dt.datetime.fromisoformat(value.rstrip("Z"))
        return value


@dataclass(frozen=True)
class _SortKey:
    name: str
    descending: bool
    target: Target


@dataclass(frozen=True)
class _State:
    filter_tree: Any = None
    sort_keys: tuple[str, ...] = ()
    field_names: tuple[str, ...] | None = None
    page_size: int = DEFAULT_LIMIT
    text: str | None = None


class Query:
    """A query over the published records of one entity."""

    def __init__(self, workspace: Workspace, entity: str, state: _State | None = None, *,
                 user: User | None = None, catalog: Catalog | None = None,
                 verified: bool = False) -> None:
        self.ws = workspace
        self.user = user
        self._state = state or _State()
        # The catalog this process saw last, unless one is given: each run checks the
        # version in its own transaction (_reading). A query that does not compile on it
        # may be newer than it, so it is compiled again on the current one before failing.
        self.catalog = catalog or workspace.known_catalog()
        self._verified = verified
        try:
            self._compile(entity)
        except (NotFound, QueryError):
            if self._verified:
                raise
            self.catalog, self._verified = workspace.catalog(), True
            self._compile(entity)

    def _compile(self, entity: str) -> None:
        self.entity: Entity = self.catalog.entity(entity)
        self.grant = grant_for(self.user, self.entity, self.catalog)
        self.grant.require("read")
        self._compile_filter()
        self._sort = self._sort_keys(self._state.sort_keys)
        self._visible = self.ws.access.visible(self.user, self.grant.read, self.entity)

    def _compile_filter(self) -> None:
        """The filter's SQL, with a compiler of its own (it collects the filter's joins)."""
        rules = self.entity.rules
        self._compiler = SqlCompiler(rules.scope, rules.functions, self.ws.dialect,
                                     user=self.user.rule_values() if self.user else None,
                                     formulas=self.entity.formulas)
        self._where = self._condition(self._state.filter_tree)

    def _with(self, **changes: Any) -> Query:
        """The query with ``changes``, compiling only what they touch: the API builds
        each request's query in four or five steps."""
        clone = copy.copy(self)
        clone._state = replace(self._state, **changes)
        formulas = {k.lstrip("-+") for k in clone._state.sort_keys} & set(self.entity.formulas)
        try:
            if "filter_tree" in changes:
                clone._compile_filter()
            if "sort_keys" in changes or ("filter_tree" in changes and formulas):
                clone._sort = clone._sort_keys(clone._state.sort_keys)
        except QueryError:
            if self._verified:
                raise
            # It may name what a publish made since this process last looked.
            return Query(self.ws, self.entity.name, clone._state, user=self.user)
        return clone

    def _condition(self, tree: Any) -> sa.ColumnElement[bool]:
        if tree is None:
            return sa.true()
        hidden = [path for path in dependencies(tree) if self._hidden(path)]
        if hidden:
            raise QueryError({"filter": [f"{path!r} is hidden from you" for path in hidden]})
        try:
            return self._compiler.condition(tree)
        except RuleError as exc:
            raise QueryError({"filter": [f"{exc.path}: {exc.message}" if exc.path
                                         else exc.message]}) from None

    def _target(self, name: str, parameter: str) -> Target:
        try:
            ref = self._compiler.scope.resolve(name)
        except RuleError as exc:
            raise QueryError({parameter: [exc.message]}) from None
        if ref.scope == "user":
            raise QueryError({parameter: [f"{name!r} is not a field of {self.entity.name}"]})
        if self._hidden(name):
            raise QueryError({parameter: [f"{name!r} is hidden from you"]})
        return Target(self._compiler.value({"var": name}), ref.type, ref.type.name == "list")

    def _hidden(self, path: str) -> bool:
        """Whether a field path (``amount``, ``account.tier``) reads what the user may not:
        a hidden field, or a field of an entity they may not read."""
        if self.user is None:
            return False
        head, _, rest = path.partition(".")
        if head in self.grant.hidden:
            return True
        f = self.entity.fields.get(head)
        if not rest or f is None or f.ref is None:
            return False
        target = self.catalog.entities.get(f.ref)
        if target is None:
            return False
        grant = grant_for(self.user, target, self.catalog)
        return grant.read is None or rest.split(".")[0] in grant.hidden

    # --- building -------------------------------------------------------------------------

    def filter(self, condition: Any) -> Query:
        """Keep the records matching a condition: a rule-language tree, its JSON text (first
        non-blank character ``{``), or its text form (``amount > 1000 and stage == "won"``).
        """
        if isinstance(condition, str) and condition.lstrip().startswith("{"):
            try:
                condition = json.loads(condition)
            except ValueError as exc:
                raise QueryError({"filter": [f"not valid JSON: {exc}"]}) from None
            except RecursionError:
                raise QueryError({"filter": ["nests too deep"]}) from None
        try:
            tree = parse_rule(condition)
        except RuleSyntaxError as exc:
            raise QueryError({"filter": [str(exc)]}) from None
        problem = text_problem(tree)
        if problem:
            raise QueryError({"filter": [f"a text in it {problem}"]})
        return self._with(filter_tree=tree)

    def sort(self, *keys: str) -> Query:
        """Sort by fields, ``-`` first for descending: ``sort("-amount", "title")`` or
        ``sort("-amount,title")``."""
        names = tuple(k.strip() for key in keys for k in key.split(",") if k.strip())
        return self._with(sort_keys=names)

    def fields(self, *names: str) -> Query:
        """Answer only these fields (``id`` and ``version`` always come)."""
        wanted = tuple(n.strip() for name in names for n in name.split(",") if n.strip())
        unknown = [n for n in wanted if n not in self.entity.fields and n not in SYSTEM_FIELDS]
        if unknown:
            raise QueryError({"fields": [f"{self.entity.name} has no field {n!r}"
                                         for n in unknown]})
        hidden = [n for n in wanted if n in self.grant.hidden]
        if hidden:
            raise QueryError({"fields": [f"{n!r} is hidden from you" for n in hidden]})
        return self._with(field_names=wanted)

    def limit(self, size: int) -> Query:
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_LIMIT:
            raise QueryError({"limit": [f"must be a whole number from 1 to {MAX_LIMIT}"]})
        return self._with(page_size=size)

    def search(self, text: str) -> Query:
        """Keep the records whose searchable fields hold every word of ``text``."""
        if not isinstance(text, str) or not text.strip():
            raise QueryError({"q": ["search text is empty"]})
        if text_problem(text):
            raise QueryError({"q": [f"search text {text_problem(text)}"]})
        if not self._search_fields():
            raise QueryError({"q": [f"{self.entity.name} has no searchable field"]})
        return self._with(text=text.strip())

    def _sort_keys(self, names: tuple[str, ...]) -> list[_SortKey]:
        keys = []
        for key in names:
            descending = key.startswith("-")
            name = key.lstrip("-+")
            if "." in name:
                raise QueryError({"sort": ["sort on the entity's own fields"]})
            target = self._target(name, "sort")
            if target.is_list or target.type.name == "any":
                raise QueryError({"sort": [f"cannot sort on the {target.type} field {name!r}"]})
            keys.append(_SortKey(name, descending, target))
        if not any(k.name == "id" for k in keys):
            # Ties break by id in the last key's direction, so an index on (key, id)
            # serves the whole ORDER BY, read forwards or backwards.
            descending = keys[-1].descending if keys else False
            keys.append(_SortKey("id", descending, self._target("id", "sort")))
        return keys

    # --- SQL ------------------------------------------------------------------------------

    def _from(self) -> sa.FromClause:
        source: sa.FromClause = self.entity.table
        for alias, on in self._compiler.joins.values():
            source = source.outerjoin(alias, on)
        return source

    def _search_fields(self) -> list[str]:
        """The searchable fields the user may see: search must not find by a hidden one."""
        return [n for n in self.entity.search_fields if n not in self.grant.hidden]

    def _conditions(self) -> list[sa.ColumnElement[bool]]:
        conditions = [self._where]
        if self._visible is not None:
            conditions.append(self._visible)
        if self._state.text:
            conditions.append(self._text_condition(self._state.text))
        return conditions

    def _text_condition(self, text: str) -> sa.ColumnElement[bool]:
        table = self.entity.table
        searched = self._search_fields()
        columns = [table.c[name] for name in searched]
        # A word of punctuation alone has nothing to look for (PostgreSQL finds no lexeme
        # in it): it is left out, on both databases.
        words = [w for w in text.split() if any(ch.isalnum() for ch in w)][:16]
        if not words:
            return sa.false()
        if self.ws.dialect == "postgresql":
            # Every word in some field, each field read through its own GIN index.
            documents: list[sa.ColumnElement[Any]] = [
                sa.literal_column(search_document(table.name, name, qualify=True))
                for name in searched]
            simple: sa.ColumnElement[Any] = sa.literal_column("'simple'::regconfig")
            return sa.and_(*(sa.or_(*(d.op("@@")(sa.func.plainto_tsquery(simple, w))
                                      for d in documents)) for w in words))
        return sa.and_(*(sa.or_(*(c.ilike(f"%{_escape(w)}%", escape="\\") for c in columns))
                         for w in words))

    def statement(self, cursor: str | None = None) -> sa.Select[Any]:
        """The SELECT of a page (the first, or the one ``cursor`` points at), to read or
        to ``EXPLAIN``."""
        after = self._read_cursor(cursor) if cursor else None
        return self._select(after).limit(self._state.page_size + 1)

    def _select(self, after: list[Any] | None = None) -> sa.Select[Any]:
        formulas = formula_columns(self.entity, self._compiler)
        query = sa.select(self.entity.table, *formulas).select_from(self._from()).where(
            *self._conditions())
        if after is not None:
            query = query.where(self._after(after))
        return query.order_by(*map(_order_by, self._sort))

    def _after(self, values: list[Any]) -> sa.ColumnElement[bool]:
        """Rows after the given sort values, with empty values sorting as the greatest.

        The first key also gets a plain range bound where one holds, so the database
        seeks into its index instead of scanning from the start (page 10,000 then costs
        what page 1 costs).
        """
        branches = []
        equal: list[sa.ColumnElement[bool]] = []
        for key, raw in zip(self._sort, values, strict=True):
            col = key.target.column
            # Bound as typed literals: SQLAlchemy takes no ``>`` with a bare True or False.
            value = None if raw is None else sa.literal(raw, col.type)
            if value is None:
                after = col.isnot(None) if key.descending else sa.false()
                same = col.is_(None)
            elif key.descending:
                after, same = col < value, col == value
            else:
                after = col > value if key.name in NEVER_EMPTY else sa.or_(col > value,
                                                                          col.is_(None))
                same = col == value
            branches.append(sa.and_(*equal, after))
            equal.append(same)
        condition = sa.or_(*branches)
        first, raw = self._sort[0], values[0]
        if raw is not None and (first.descending or first.name in NEVER_EMPTY):
            col = first.target.column
            value = sa.literal(raw, col.type)
            condition = sa.and_(col <= value if first.descending else col >= value, condition)
        return condition

    # --- cursors --------------------------------------------------------------------------

    def _fingerprint(self) -> str:
        shape = json.dumps([self.entity.name, self._state.filter_tree,
                            list(self._state.sort_keys), self._state.text],
                           sort_keys=True, default=str)
        return hashlib.sha256(shape.encode()).hexdigest()[:16]

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self.ws.secret, payload, hashlib.sha256).hexdigest()[:32]

    def _cursor_for(self, row: Mapping[str, Any]) -> str:
        values = [_jsonable(_plain(row[k.name])) for k in self._sort]
        payload = json.dumps({"q": self._fingerprint(), "k": values},
                             separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + \
            self._sign(payload)

    def _read_cursor(self, cursor: str) -> list[Any]:
        bad = QueryError({"cursor": ["is not a cursor this query made"]})
        if not isinstance(cursor, str) or "." not in cursor or len(cursor) > 4096:
            raise bad
        body, signature = cursor.rsplit(".", 1)
        if not cursor.isascii():
            raise bad
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            raise bad from None
        if not hmac.compare_digest(self._sign(payload), signature):
            raise bad
        data = json.loads(payload)  # signed by this workspace: well formed
        if data.get("q") != self._fingerprint() or len(data.get("k", [])) != len(self._sort):
            raise QueryError({"cursor": ["belongs to another filter or sort"]})
        return [None if v is None else k.target.convert(v)
                for k, v in zip(self._sort, data["k"], strict=True)]

    # --- running --------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[tuple[sa.Connection, Query]]:
        """A read transaction, and this query as the metadata published now compiles it:
        the version is checked on the same connection the query then reads on."""
        with self.ws.reading() as conn:
            current = self.ws.catalog(conn)
            if current.version == self.catalog.version:
                yield conn, self
            else:
                yield conn, Query(self.ws, self.entity.name, self._state, user=self.user,
                                  catalog=current, verified=True)

    def page(self, cursor: str | None = None) -> Page:
        """One page of records, and the cursor of the next (None on the last page)."""
        with self._reading() as (conn, query):
            return query._page(conn, cursor)

    def _page(self, conn: sa.Connection, cursor: str | None) -> Page:
        size = self._state.page_size
        rows = conn.execute(self.statement(cursor)).mappings().all()
        more = len(rows) > size
        rows = rows[:size]
        return Page([self._shape(r) for r in rows],
                    self._cursor_for(rows[-1]) if more and rows else None)

    def stream(self, chunk: int = 1000) -> Iterator[dict[str, Any]]:
        """Every matching record, a keyset page at a time (never the whole table at once)."""
        after: list[Any] | None = None
        while True:
            with self._reading() as (conn, query):
                rows = conn.execute(query._select(after).limit(chunk)).mappings().all()
            yield from (query._shape(r) for r in rows)
            if len(rows) < chunk:
                return
            after = [rows[-1][k.name] for k in self._sort]

    def export(self, chunk: int = 1000) -> Iterator[dict[str, Any]]:
        """:meth:`stream`, for taking the records out of the CRM (CSV and the like), which
        a role grants apart from reading them.

        :raises PermissionDenied: the user may not export this entity.
        """
        self.grant.require("export")
        return self.stream(chunk)

    def _shape(self, row: Mapping[str, Any]) -> dict[str, Any]:
        record = to_record(self.entity, row)
        for name in self.grant.hidden:
            record.pop(name, None)
        if self._state.field_names is None:
            return record
        keep = {"id", "version", *self._state.field_names}
        return {k: v for k, v in record.items() if k in keep}

    def count(self, *, exact: bool = False, cap: int = COUNT_CAP) -> Count:
        """How many records match; stops at ``cap`` unless ``exact``."""
        with self._reading() as (conn, query):
            return query._count(conn, exact, cap)

    def _count(self, conn: sa.Connection, exact: bool, cap: int) -> Count:
        inner = sa.select(self.entity.table.c.id).select_from(self._from()).where(
            *self._conditions())
        if not exact:
            inner = inner.limit(cap + 1)
        value = conn.scalar(sa.select(sa.func.count()).select_from(inner.subquery())) or 0
        if not exact and value > cap:
            return Count(cap, False)
        return Count(int(value), True)

    def aggregate(self, group_by: str | list[str] | tuple[str, ...] = (),
                  metrics: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Grouped figures for reports.

        ``group_by`` names fields, a date field with a bucket as ``close_date:month``
        (``day``, ``month``, ``year``); ``metrics`` maps an output name to ``count`` or
        ``sum:amount`` (``avg``, ``min``, ``max``). Answers one row per group, in order.
        """
        with self._reading() as (conn, query):
            return query._aggregate(conn, group_by, metrics)

    def _aggregate(self, conn: sa.Connection, group_by: str | list[str] | tuple[str, ...],
                   metrics: Mapping[str, str] | None) -> list[dict[str, Any]]:
        groups = [group_by] if isinstance(group_by, str) else list(group_by)
        metrics = dict(metrics or {"count": "count"})
        keys = [self._group_key(g) for g in groups]
        columns = [expr.label(label) for label, expr in keys]
        for name, spec in metrics.items():
            columns.append(self._metric(name, spec).label(name))
        query = sa.select(*columns).select_from(self._from()).where(*self._conditions())
        if keys:
            query = query.group_by(*(expr for _, expr in keys)).order_by(
                *(expr for _, expr in keys))
        rows = conn.execute(query).mappings().all()
        return [{k: _plain(v) for k, v in row.items()} for row in rows]

    def _group_key(self, spec: str) -> tuple[str, sa.ColumnElement[Any]]:
        name, _, bucket = spec.partition(":")
        target = self._target(name, "group_by")
        if not bucket:
            if target.is_list:
                raise QueryError({"group_by": [f"cannot group by the list field {name!r}"]})
            return name, target.column
        if bucket not in BUCKETS or target.type not in (DATE, DATETIME):
            raise QueryError({"group_by": [f"{spec!r}: a date field groups by "
                                           f"{', '.join(BUCKETS)}"]})
        sqlite_format, pg_format = BUCKETS[bucket]
        if self.ws.dialect == "postgresql":
            return f"{name}:{bucket}", sa.func.to_char(target.column, pg_format)
        return f"{name}:{bucket}", sa.func.strftime(sqlite_format, target.column)

    def _metric(self, name: str, spec: Any) -> sa.ColumnElement[Any]:
        if spec == "count":
            return sa.func.count()
        function, _, field_name = str(spec).partition(":")
        if function not in METRICS or not field_name:
            raise QueryError({"metrics": [f"{name}: use count, or sum:FIELD, avg:FIELD, "
                                          "min:FIELD, max:FIELD"]})
        target = self._target(field_name, "metrics")
        numeric = target.type.name == "number"
        if (function in ("sum", "avg") and not numeric) or target.is_list:
            raise QueryError({"metrics": [f"{function} needs a number field, not "
                                          f"{field_name!r}"]})
        return getattr(sa.func, function)(target.column)


def _order_by(key: _SortKey) -> sa.UnaryExpression[Any]:
    """A sort key's ORDER BY term, empty values greatest. A column that is never empty
    gets no NULLS clause: SQLite cannot read an index in a NULLS order it does not use
    by default, and the id that ends every sort would otherwise cost it a sort."""
    column = key.target.column
    if key.name in NEVER_EMPTY:
        return column.desc() if key.descending else column.asc()
    return column.desc().nulls_first() if key.descending else column.asc().nulls_last()


def _escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _plain(value: Any) -> Any:
    """A database value as JSON carries it."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
