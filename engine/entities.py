"""Entities: a definition compiled into fields, a real table and a record validator.

An entity definition is a JSON Schema for one record. :func:`compile_entity` checks what
the meta-schema cannot (field types, references, index fields, system names) and builds
the SQLAlchemy Core table and the ``jsonschema`` validator the record service uses.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import fastjsonschema
import sqlalchemy as sa
from jsonschema import Draft202012Validator, FormatChecker

from .definitions import pointer
from .errors import DefinitionError
from .fieldtypes import FieldType, fit_numeric, identity, infer_field_type
from .rules import RuleSyntaxError, parse_rule

SYSTEM_FIELDS = (
    "id", "version", "state", "owner_id",
    "created_at", "created_by", "updated_at", "updated_by",
)
TABLE_PREFIX = "ent_"
INDEXED_TEXT_MAX = 500
ON_DELETE = ("restrict", "cascade", "set_null")
#: Keywords that describe a field to people but do not change what values it takes.
PRESENTATION_KEYS = frozenset({"x-label", "title", "description", "$comment", "examples",
                               "x-options", "x-renamed-from", "x-index", "x-on-delete",
                               "x-default", "x-formula"})

FORMAT_CHECKER = FormatChecker(("date", "date-time", "email", "uri", "regex"))
#: The same format checks for the fast path, so both validators agree on formats.
FAST_FORMATS = {name: (lambda f: lambda value: bool(FORMAT_CHECKER.conforms(value, f)))(name)
                for name in ("date", "date-time", "email", "uri")}


def fast_validator(schema: Mapping[str, Any]) -> Callable[[Any], Any] | None:
    """A validator compiled to Python by ``fastjsonschema`` (about ten times faster than
    ``jsonschema`` on a record). It only says yes or no: when it says no, ``jsonschema``
    words every error. None when the schema uses what it cannot compile."""
    try:
        return fastjsonschema.compile(dict(schema), formats=FAST_FORMATS)
    except (fastjsonschema.JsonSchemaDefinitionException, ValueError, TypeError):
        return None


def table_name(entity: str) -> str:
    return TABLE_PREFIX + entity


def constraint_name(prefix: str, table: str, columns: list[str]) -> str:
    """An index name, readable and unique: names are global to a schema, and joining names
    with ``_`` is ambiguous (field ``a_b`` and fields ``a, b``; table ``p`` with ``q_r``
    and table ``p_q`` with ``r``), so a digest of the exact table and columns ends it,
    within PostgreSQL's 63 characters."""
    digest = hashlib.sha1(repr((table, *columns)).encode()).hexdigest()[:8]
    return f"{prefix}_{table}_{'_'.join(columns)}"[:54] + "_" + digest


@dataclass(frozen=True)
class Field:
    """One field of an entity, as the engine uses it."""

    name: str
    type: FieldType
    schema: Mapping[str, Any]
    required: bool
    unique: bool
    indexed: bool
    label: Mapping[str, str]
    ref: str | None = None
    on_delete: str = "restrict"

    @property
    def value_schema(self) -> dict[str, Any]:
        """The JSON Schema a value of this field must pass: the type's base plus the field's
        own keywords, without the ``x-`` annotations."""
        merged = {**self.type.json_schema}
        merged.update({k: v for k, v in self.schema.items() if not k.startswith("x-")})
        merged.pop("default", None)
        if self.type.name == "select" and "enum" not in merged and self.schema.get("x-options"):
            merged["enum"] = list(self.schema["x-options"])
        if (self.unique or self.indexed) and merged.get("type") == "string":
            # A B-tree entry holds about 2.7 kB on PostgreSQL: indexed text stays within it.
            merged.setdefault("maxLength", INDEXED_TEXT_MAX)
        return merged

    @property
    def data_signature(self) -> Any:
        """What decides which values fit this field; a change to it needs the data checked."""
        return (self.type.name, self.ref, self.required,
                {k: v for k, v in self.schema.items() if k not in PRESENTATION_KEYS})

    def to_db(self, value: Any) -> Any:
        """The column's value; :raises ValueError: when the database could not hold it."""
        if value is None:
            return None
        if self.type.numeric:
            value = fit_numeric(value, int(self.schema.get("x-scale", 4)))
        return self.type.to_db(value)

    def from_db(self, value: Any) -> Any:
        return None if value is None else self.type.from_db(value)


@dataclass
class Entity:
    """A published (or planned) entity: its fields, its table and its record validator."""

    name: str
    document: Mapping[str, Any]
    fields: dict[str, Field]
    table: sa.Table
    validator: Draft202012Validator
    search_fields: tuple[str, ...]
    unique_sets: tuple[tuple[str, ...], ...] = ()
    label: Mapping[str, str] = field(default_factory=dict)
    #: Formula fields' trees, defaults given as rules, and ``x-validations`` as
    #: ``(tree, message, fields)``; :func:`~blockscrm.engine.rules.bind_rules` compiles them
    #: into ``rules`` once the whole catalog is known.
    formulas: dict[str, Any] = field(default_factory=dict)
    default_trees: dict[str, Any] = field(default_factory=dict)
    validation_trees: list[tuple[Any, Mapping[str, str], list[str]]] = field(
        default_factory=list)
    rules: Any = None
    #: The :class:`~blockscrm.engine.workflows.Workflow` on this entity, if one is published.
    workflow: Any = None
    #: Its :class:`~blockscrm.engine.automations.Automation` rules, by name.
    automations: list[Any] = field(default_factory=list)
    #: Its :class:`~blockscrm.engine.approvals.Approval` processes.
    approvals: list[Any] = field(default_factory=list)
    #: ``fastjsonschema``'s compiled check of the record schema, where it compiles.
    fast_check: Callable[[Any], Any] | None = None

    @cached_property
    def stored_fields(self) -> list[Field]:
        """The fields with a column: every field but the computed ones."""
        return [f for f in self.fields.values() if not f.type.computed]

    @cached_property
    def readers(self) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
        """Each field and what turns its column value into JSON (None: nothing to do), in
        order; every record read goes through it."""
        from .records import _jsonable

        return tuple((f.name, _jsonable if f.type.computed else
                      f.type.from_db if f.type.from_db is not identity else None)
                     for f in self.fields.values())

    @cached_property
    def by_id(self) -> sa.Select[Any]:
        """``SELECT`` of one row by ``:id``, built once (each read of a record runs it)."""
        return sa.select(self.table).where(self.table.c.id == sa.bindparam("id"))

    @cached_property
    def id_exists(self) -> sa.Select[Any]:
        """``SELECT id`` of one row by ``:id``: whether a reference points at a record."""
        return sa.select(self.table.c.id).where(self.table.c.id == sa.bindparam("id"))

    @cached_property
    def insert(self) -> sa.Insert:
        return self.table.insert()

    @cached_property
    def by_id_for_update(self) -> sa.Select[Any]:
        return self.by_id.with_for_update()

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(self.table.c.keys())

    @cached_property
    def converting(self) -> dict[str, Field]:
        """The stored fields whose JSON value and column value differ (numbers, dates)."""
        return {f.name: f for f in self.stored_fields if f.type.converts}

    @cached_property
    def schema_defaults(self) -> dict[str, Any]:
        """The plain ``default`` of each field that has one, filled in on create."""
        return {f.name: f.schema["default"] for f in self.stored_fields
                if f.schema.get("default") not in (None, "", [])}

    def column(self, name: str) -> sa.Column[Any]:
        return self.table.c[name]


def _field_errors(name: str, prop: Mapping[str, Any], types: Mapping[str, FieldType]
                  ) -> Iterator[tuple[str, str]]:
    at = ("properties", name)
    if name in SYSTEM_FIELDS:
        yield pointer(*at), f"{name!r} is a system field and cannot be defined"
        return
    type_name = prop.get("x-field") or infer_field_type(prop)
    field_type = types.get(type_name)
    if field_type is None:
        yield pointer(*at, "x-field"), "unknown field type"
        return
    expected = field_type.json_schema.get("type")
    declared = prop.get("type", expected)
    if expected is not None and declared not in (
            expected, "integer" if expected == "number" else expected):
        yield pointer(*at, "type"), f"a {type_name} field is of JSON type {expected!r}"
    if field_type.is_reference and "x-ref" not in prop:
        yield pointer(*at), "a reference field names its target entity in x-ref"
    if not field_type.is_reference:
        for key in ("x-ref", "x-on-delete"):
            if key in prop:
                yield pointer(*at, key), "only a reference field takes this keyword"
    if field_type.name == "json" or field_type.computed:
        for key in ("x-unique", "x-index"):
            if prop.get(key):
                yield pointer(*at, key), f"a {type_name} field cannot be indexed or unique"
    if field_type.computed != ("x-formula" in prop):
        yield pointer(*at), ("a formula field computes its value with x-formula"
                             if field_type.computed else
                             "only a formula field (x-field: formula) takes x-formula")
    options = prop.get("x-options")
    if options and "enum" in prop:
        for option in options:
            if option not in prop["enum"]:
                yield pointer(*at, "x-options", option), "is not one of the field's enum values"


def _index_errors(document: Mapping[str, Any], names: set[str]) -> Iterator[tuple[str, str]]:
    for i, required in enumerate(document.get("required", [])):
        if required not in names:
            yield pointer("required", i), f"no field named {required!r}"
    for key in ("x-indexes", "x-unique"):
        for i, columns in enumerate(document.get(key, [])):
            for j, column in enumerate(columns):
                if column not in names:
                    yield pointer(key, i, j), f"no field named {column!r}"
    for i, column in enumerate(document.get("x-search", [])):
        if column not in names:
            yield pointer("x-search", i), f"no field named {column!r}"
    for i, rule in enumerate(document.get("x-validations", [])):
        for j, column in enumerate(rule.get("fields", [])):
            if column not in names:
                yield pointer("x-validations", i, "fields", j), f"no field named {column!r}"
    title = document.get("x-title-field")
    if title is not None and title not in names:
        yield "/x-title-field", f"no field named {title!r}"
    for name, prop in document.get("properties", {}).items():
        currency_field = prop.get("x-currency-field")
        if currency_field is not None and currency_field not in names:
            yield pointer("properties", name, "x-currency-field"), (
                f"no field named {currency_field!r}")


def _build_fields(document: Mapping[str, Any], types: Mapping[str, FieldType]
                  ) -> dict[str, Field]:
    required = set(document.get("required", []))
    fields = {}
    for name, prop in document["properties"].items():
        field_type = types[prop.get("x-field") or infer_field_type(prop)]
        fields[name] = Field(
            name=name,
            type=field_type,
            schema=prop,
            required=name in required,
            unique=bool(prop.get("x-unique")),
            indexed=bool(prop.get("x-index")) or field_type.is_reference,
            label=prop.get("x-label", {}),
            ref=prop.get("x-ref"),
            on_delete=prop.get("x-on-delete", "restrict"),
        )
    return fields


def _default_errors(fields: Mapping[str, Field]) -> Iterator[tuple[str, str]]:
    for f in fields.values():
        if "default" in f.schema:
            checker = Draft202012Validator(f.value_schema, format_checker=FORMAT_CHECKER)
            for error in checker.iter_errors(f.schema["default"]):
                yield pointer("properties", f.name, "default"), error.message


def system_columns() -> list[sa.Column[Any]]:
    """The columns every entity table has (DESIGN.md, "Storage")."""
    return [
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("owner_id", sa.String(64), index=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(64)),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("updated_by", sa.String(64)),
    ]


STATE = sa.String(63)


def build_table(name: str, fields: Mapping[str, Field], document: Mapping[str, Any],
                metadata: sa.MetaData, *, with_state: bool = False) -> sa.Table:
    """The SQLAlchemy Core table of an entity, with its indexes and unique constraints,
    and a ``state`` column where a workflow applies."""
    tname = table_name(name)
    columns: list[Any] = system_columns()
    if with_state:
        columns.append(sa.Column("state", STATE))
    stored = [f for f in fields.values() if not f.type.computed]
    columns += [sa.Column(f.name, f.type.column(f.schema)) for f in stored]
    table = sa.Table(tname, metadata, *columns)
    made: set[tuple[bool, tuple[str, ...]]] = set()

    def index(prefix: str, names: list[str], unique: bool = False) -> None:
        """One index per distinct column list (a field flag and a group may ask twice)."""
        key = (unique, tuple(names))
        if key not in made:
            made.add(key)
            sa.Index(constraint_name(prefix, tname, names), *(table.c[n] for n in names),
                     unique=unique)

    # Unique rules are unique indexes, not constraints: every database can add and drop
    # an index in place, while SQLite would have to copy the table for a constraint.
    index("ix", ["owner_id"])
    if with_state:
        index("ix", ["state", "id"])  # a kanban column, a list filtered by state
    # A plain index ends with id: sorted pages break ties by id, so (field, id) serves a
    # whole keyset ORDER BY.
    for f in stored:
        if f.unique:
            index("uq", [f.name], unique=True)
        elif f.indexed:
            index("ix", [f.name, "id"])
    for group in document.get("x-unique", []):
        index("uq", list(group), unique=True)
    for group in document.get("x-indexes", []):
        index("ix", [*group, "id"])
    return table


def search_document(table: str, column: str, qualify: bool = False) -> str:
    """The SQL of one field's full-text document on PostgreSQL.

    Built as text from a validated field name, because the query must repeat the indexed
    expression exactly for PostgreSQL to use the field's GIN index. One index per field,
    not one over all of them: adding a searchable field then builds an index over its
    empty new column, instead of rebuilding one over every row's text.
    """
    prefix = f'"{table}".' if qualify else ""
    return f"to_tsvector('simple'::regconfig, {prefix}\"{column}\"::text)"


def search_index_name(table: str, column: str) -> str:
    return constraint_name("ft", table, [column])


def record_schema(fields: Mapping[str, Field]) -> dict[str, Any]:
    """The JSON Schema one record's field values must pass (system keys are not in it)."""
    stored = [f for f in fields.values() if not f.type.computed]
    return {
        "type": "object",
        "properties": {f.name: f.value_schema for f in stored},
        "required": [f.name for f in stored if f.required],
        "additionalProperties": False,
    }


def compile_entity(document: Mapping[str, Any], types: Mapping[str, FieldType],
                   metadata: sa.MetaData | None = None, *, with_state: bool = False
                   ) -> Entity:
    """Check an entity definition beyond its meta-schema and compile it (``with_state``:
    a workflow applies to it, so its table has a ``state`` column).

    :raises DefinitionError: with every problem, keyed by JSON Pointer.
    """
    properties = document.get("properties", {})
    errors = [e for n, p in properties.items() for e in _field_errors(n, p, types)]
    errors += _index_errors(document, set(properties))
    if errors:
        raise DefinitionError(errors)
    fields = _build_fields(document, types)
    errors = list(_default_errors(fields))
    formulas, defaults, validations = {}, {}, []
    for f in fields.values():
        for key, bucket in (("x-formula", formulas), ("x-default", defaults)):
            if key in f.schema:
                try:
                    bucket[f.name] = parse_rule(f.schema[key])
                except RuleSyntaxError as exc:
                    errors.append((pointer("properties", f.name, key), str(exc)))
    for i, rule in enumerate(document.get("x-validations", [])):
        try:
            validations.append((parse_rule(rule["assert"]), rule["message"],
                                list(rule.get("fields", []))))
        except RuleSyntaxError as exc:
            errors.append((pointer("x-validations", i, "assert"), str(exc)))
    if errors:
        raise DefinitionError(errors)
    # PostgreSQL's text of a date depends on the session's DateStyle, so no index may
    # hold it; a formula has no column to index.
    errors = [(pointer("x-search", i), f"a {fields[name].type.name} field cannot be searched")
              for i, name in enumerate(document.get("x-search", []))
              if fields[name].type.name in ("date", "datetime") or fields[name].type.computed]
    if errors:
        raise DefinitionError(errors)
    search = document.get("x-search") or [f.name for f in fields.values() if f.type.searchable]
    unique_sets = tuple(tuple(g) for g in document.get("x-unique", []))
    table = build_table(document["name"], fields, document, metadata or sa.MetaData(),
                        with_state=with_state)
    schema = record_schema(fields)
    return Entity(
        name=document["name"],
        document=copy.deepcopy(dict(document)),
        fields=fields,
        table=table,
        validator=Draft202012Validator(schema, format_checker=FORMAT_CHECKER),
        fast_check=fast_validator(schema),
        search_fields=tuple(search),
        unique_sets=unique_sets,
        label=document.get("label", {}),
        formulas=formulas,
        default_trees=defaults,
        validation_trees=validations,
    )


def reference_errors(entities: Mapping[str, Entity], allowed: Iterable[str] = ()
                     ) -> Iterator[tuple[str, str, str]]:
    """Yield ``(entity, json_pointer, message)`` for each reference to a missing entity
    (but for those ``allowed``)."""
    known = set(entities) | set(allowed)
    for entity in entities.values():
        for f in entity.fields.values():
            if f.ref is not None and f.ref not in known:
                yield (entity.name, pointer("properties", f.name, "x-ref"),
                       f"no entity named {f.ref!r}")
