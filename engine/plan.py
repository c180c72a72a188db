"""Plans: what publishing the drafts would do to the database, and doing it.

Like ``terraform plan``, a :class:`Plan` lists each step (the DDL it runs and its effect
on existing rows) before anything changes. The same code computes the plan and applies
it, inside the publishing transaction, so what runs is what was counted. Schema changes
go through Alembic's operations API; a field whose column type changes gets a new column
filled by the engine's own conversion, so the database never guesses (SQLite's ``CAST``
would turn ``"abc"`` into ``0``).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from jsonschema import Draft202012Validator

from .entities import (
    FORMAT_CHECKER,
    STATE,
    Entity,
    Field,
    search_document,
    search_index_name,
    table_name,
)
from .store import archive_table
from .workspace import Catalog

CHUNK = 5000


@dataclass
class Step:
    """One change a publish makes, with its effect on existing rows."""

    action: str
    summary: str
    kind: str = "entity"
    name: str = ""
    field: str | None = None
    rows: int | None = None
    bad_rows: int = 0
    destructive: bool = False
    needs: str | None = None
    blocked: str | None = None
    ddl: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [], 0, False)
                or k in ("action", "summary")}


@dataclass
class Plan:
    """Every step publishing the drafts would take; ``str(plan)`` reads like a review."""

    steps: list[Step] = dataclasses.field(default_factory=list)
    #: Definitions the publish saves: ``{"kind", "name", "action"}``, and for an update
    #: its ``changes`` (``{op, path, before, after}``).
    definitions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    changes: list[EntityChange] = dataclasses.field(default_factory=list, repr=False)

    @property
    def destructive(self) -> bool:
        return any(step.destructive for step in self.steps)

    @property
    def waiting(self) -> list[Step]:
        """Steps that cannot run as they are: blocked, or waiting for a decision."""
        return [s for s in self.steps if s.blocked or s.needs]

    def to_dict(self) -> dict[str, Any]:
        return {"steps": [s.to_dict() for s in self.steps], "definitions": self.definitions,
                "destructive": self.destructive, "ready": not self.waiting}

    def __str__(self) -> str:
        if not self.definitions:
            return "No changes."
        lines = []
        for step in self.steps:
            marks = ("!" if step.destructive else "") + ("?" if step.needs else "")
            lines.append(f"{marks or '+'} {step.summary}")
            lines += [f"    {sql}" for sql in step.ddl]
            if step.blocked:
                lines.append(f"    blocked: {step.blocked}")
        return "\n".join(lines)


@dataclass
class EntityChange:
    """How one entity's table goes from its published shape to its draft's."""

    name: str
    old: Entity | None
    new: Entity | None
    added: list[Field] = dataclasses.field(default_factory=list)
    dropped: list[Field] = dataclasses.field(default_factory=list)
    #: ``(old name, new name)``
    renamed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: ``(old field, new field)`` whose values must be checked; ``retyped`` change column.
    changed: list[tuple[Field, Field]] = dataclasses.field(default_factory=list)
    retyped: set[str] = dataclasses.field(default_factory=set)
    drop_indexes: list[sa.Index] = dataclasses.field(default_factory=list)
    create_indexes: list[sa.Index] = dataclasses.field(default_factory=list)
    #: The fields whose full-text index (PostgreSQL) goes (old names) and is built (new
    #: names): fields leaving or joining the search, renamed, retyped or dropped.
    drop_search: list[str] = dataclasses.field(default_factory=list)
    create_search: list[str] = dataclasses.field(default_factory=list)
    #: A workflow starts (the ``state`` column comes, filled with its initial state) or
    #: stops (the column goes, its values archived).
    add_state: bool = False
    drop_state: bool = False


def _index_key(index: sa.Index) -> tuple[Any, ...]:
    return (index.name, bool(index.unique), tuple(c.name for c in index.columns))


def _column_type(f: Field, dialect: sa.Dialect) -> str:
    return str(f.type.column(f.schema).compile(dialect=dialect))


def diff_entity(old: Entity | None, new: Entity | None, dialect: sa.Dialect) -> EntityChange:
    """The structural change from ``old`` to ``new`` (either may be None)."""
    name = (new or old).name  # type: ignore[union-attr]
    change = EntityChange(name, old, new)
    if old is None or new is None:
        return change
    had, has = "state" in old.table.c, "state" in new.table.c
    change.add_state, change.drop_state = has and not had, had and not has
    # Formula fields have no column: only stored fields take part in the table's change.
    old_fields = {f.name: f for f in old.stored_fields}
    new_fields = {f.name: f for f in new.stored_fields}
    old_of: dict[str, str] = {}
    for f in new_fields.values():
        source = f.schema.get("x-renamed-from")
        if f.name in old_fields:
            old_of[f.name] = f.name
        elif source in old_fields and source not in new_fields:
            old_of[f.name] = source
            change.renamed.append((source, f.name))
        else:
            change.added.append(f)
    kept = set(old_of.values())
    change.dropped = [f for f in old_fields.values() if f.name not in kept]
    for new_name, old_name in old_of.items():
        before, after = old_fields[old_name], new_fields[new_name]
        if before.data_signature != after.data_signature:
            change.changed.append((before, after))
        if _column_type(before, dialect) != _column_type(after, dialect):
            change.retyped.add(new_name)
    moved = {old_of[n] for n in change.retyped} | {o for o, _ in change.renamed}
    old_indexes = {_index_key(i): i for i in old.table.indexes}
    new_indexes = {_index_key(i): i for i in new.table.indexes}
    for key, index in old_indexes.items():
        if key not in new_indexes or {c.name for c in index.columns} & moved:
            change.drop_indexes.append(index)
    gone = moved | {f.name for f in change.dropped}
    change.drop_search = [n for n in old.search_fields
                          if n in gone or n not in new.search_fields]
    kept = set(old.search_fields) - set(change.drop_search)
    change.create_search = [n for n in new.search_fields if n not in kept]
    retyped_new = change.retyped
    for key, index in new_indexes.items():
        if key not in old_indexes or {c.name for c in index.columns} & (
                retyped_new | {n for _, n in change.renamed}):
            change.create_indexes.append(index)
    return change


class Planner:
    """Computes (and, with ``apply``, carries out) the plan for one set of drafts."""

    def __init__(self, conn: sa.Connection, current: Catalog, target: Catalog,
                 decisions: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.conn = conn
        self.current = current
        self.target = target
        self.decisions = decisions or {}
        self.dialect = conn.dialect

    # --- planning -------------------------------------------------------------------------

    def plan(self, definitions: list[dict[str, Any]]) -> Plan:
        plan = Plan(definitions=definitions)
        names = sorted(set(self.current.entities) | set(self.target.entities))
        edited = {d["name"] for d in definitions if d["kind"] == "entity"}
        touched = set(edited)
        for d in definitions:  # a workflow changes its entity's table (state) and rows
            if d["kind"] == "workflow":
                touched |= {c.documents[("workflow", d["name"])]["entity"]
                            for c in (self.current, self.target)
                            if ("workflow", d["name"]) in c.documents}
        for name in names:
            if name not in touched:
                continue
            old = self.current.entities.get(name)
            new = self.target.entities.get(name)
            change = diff_entity(old, new, self.dialect)
            plan.changes.append(change)
            plan.steps += self._entity_steps(change, edited=name in edited)
        for d in definitions:
            if d["kind"] != "entity":
                plan.steps.append(Step(f"{d['action']}_definition",
                                       f"{d['action']} {d['kind']} {d['name']}",
                                       kind=d["kind"], name=d["name"]))
        return plan

    def _count(self, query: sa.Select[Any]) -> int:
        return int(self.conn.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
                   or 0)

    def _entity_steps(self, change: EntityChange, *, edited: bool = True) -> list[Step]:
        old, new, name = change.old, change.new, change.name
        ddl = self._ddl(change)
        if old is None:
            return [Step("create_entity", f"create entity {name} (table {table_name(name)})",
                         name=name, ddl=ddl)]
        rows = self._count(sa.select(old.table.c.id))
        if new is None:
            step = Step("drop_entity", f"drop entity {name}: {rows} rows archived",
                        name=name, rows=rows, destructive=True, ddl=ddl)
            users = sorted({e.name for e, _ in self.target.references_to(name)})
            if users:
                step.blocked = f"still referenced by {', '.join(users)}"
            return [step]
        steps: list[Step] = self._workflow_steps(change, rows)
        for f in change.dropped:
            count = self._count(sa.select(old.table.c.id).where(old.table.c[f.name].isnot(None)))
            steps.append(Step("drop_field", f"drop field {name}.{f.name}: {count} values "
                              "archived", name=name, field=f.name, rows=count,
                              destructive=True))
        for old_name, new_name in change.renamed:
            steps.append(Step("rename_field", f"rename field {name}.{old_name} to {new_name} "
                              "(data kept)", name=name, field=new_name))
        for f in change.added:
            steps.append(self._added_step(change, f, rows))
        for before, after in change.changed:
            steps.append(self._changed_step(change, before, after))
        for index in change.create_indexes:
            if index.unique:
                steps.append(self._unique_step(change, index))
        if steps:
            steps[0].ddl = ddl
        elif ddl:
            steps.append(Step("alter_indexes", f"update indexes of {name}", name=name, ddl=ddl))
        elif edited:
            steps.append(Step("update_entity", f"update entity {name} (no table change)",
                              name=name))
        return steps

    def _workflow_steps(self, change: EntityChange, rows: int) -> list[Step]:
        old, new, name = change.old, change.new, change.name
        assert old is not None and new is not None
        if change.add_state:
            initial = new.workflow.initial
            return [Step("start_workflow", f"start workflow {new.workflow.name} on {name}: "
                         f"{rows} records get the state {initial!r}", kind="workflow",
                         name=new.workflow.name, field="state", rows=rows)]
        if change.drop_state:
            count = self._count(sa.select(old.table.c.id).where(old.table.c.state.isnot(None)))
            return [Step("stop_workflow", f"stop workflow {old.workflow.name} on {name}: "
                         f"{count} states archived", kind="workflow", name=old.workflow.name,
                         field="state", rows=count, destructive=True)]
        if new.workflow is None or old.workflow is None:
            return []
        gone = sorted(set(old.workflow.states) - set(new.workflow.states))
        if not gone:
            return []
        stranded = self._count(sa.select(old.table.c.id).where(old.table.c.state.in_(gone)))
        step = Step("remove_states", f"remove state(s) {', '.join(gone)} from workflow "
                    f"{new.workflow.name}", kind="workflow", name=new.workflow.name,
                    field="state", bad_rows=stranded)
        if stranded:
            step.blocked = (f"{stranded} {name} records are in these states; move them "
                            "to another state first")
        return [step]

    def _fill(self, change: EntityChange, f: Field) -> tuple[bool, Any]:
        decision = self.decisions.get(f"{change.name}.{f.name}")
        if decision is None or "fill" not in decision:
            return False, None
        return True, decision["fill"]

    def _fill_problem(self, change: EntityChange, f: Field) -> str | None:
        given, value = self._fill(change, f)
        if not given:
            return "give a fill value"
        if value is None:
            return "the field is required; the fill value cannot be empty" if f.required else None
        checker = Draft202012Validator(f.value_schema, format_checker=FORMAT_CHECKER)
        errors = [e.message for e in checker.iter_errors(value)]
        return f"the fill value does not fit: {errors[0]}" if errors else None

    def _added_step(self, change: EntityChange, f: Field, rows: int) -> Step:
        step = Step("add_field", f"add field {change.name}.{f.name} ({f.type.name})",
                    name=change.name, field=f.name)
        if "default" in f.schema and rows:
            step.rows = rows
            step.summary += f": {rows} rows get the default {f.schema['default']!r}"
        elif f.required and rows:
            step.rows = step.bad_rows = rows
            step.summary += f": {rows} rows would be empty in a required field"
            problem = self._fill_problem(change, f)
            if problem:
                step.needs = "fill"
                step.blocked = problem
        return step

    def _changed_step(self, change: EntityChange, before: Field, after: Field) -> Step:
        bad = sum(1 for _, value in self._converted(change, before, after) if value is _BAD)
        what = "change type of" if after.name in change.retyped else "change"
        step = Step("change_field", f"{what} field {change.name}.{after.name}",
                    name=change.name, field=after.name, bad_rows=bad)
        if bad:
            step.summary += f": {bad} rows have values that do not fit"
            problem = self._fill_problem(change, after)
            if problem:
                step.needs = "fill"
                step.blocked = problem
            else:
                step.summary += f"; they get {self._fill(change, after)[1]!r}"
        return step

    def _unique_step(self, change: EntityChange, index: sa.Index) -> Step:
        old = change.old
        assert old is not None
        names = [c.name for c in index.columns]
        old_names = {new: o for o, new in change.renamed}
        columns = [old.table.c[old_names.get(n, n)] for n in names
                   if old_names.get(n, n) in old.table.c]
        step = Step("add_unique", f"make {', '.join(names)} unique in {change.name}",
                    name=change.name, field=names[0])
        if len(columns) == len(names):
            duplicated = sa.select(*columns).where(*(c.isnot(None) for c in columns)) \
                .group_by(*columns).having(sa.func.count() > 1)
            groups = self._count(duplicated)
            if groups:
                step.bad_rows = groups
                step.blocked = f"{groups} values are shared by several rows; make them " \
                               "distinct first"
        return step

    def _converted(self, change: EntityChange, before: Field, after: Field
                   ) -> Iterator[tuple[str, Any]]:
        """Each row's value of ``before`` as ``after`` takes it, or ``_BAD``; by id chunks."""
        assert change.old is not None
        table = change.old.table
        column = table.c[before.name]
        checker = Draft202012Validator(after.value_schema, format_checker=FORMAT_CHECKER)
        missing: set[str] = set()
        if after.ref is not None and after.ref in self.target.entities:
            target = (self.current.entities.get(after.ref) or self.target.entities[after.ref])
            if after.ref in self.current.entities:
                gone = sa.select(table.c.id).where(
                    column.isnot(None), column.not_in(sa.select(target.table.c.id)))
                missing = set(self.conn.scalars(gone))
        retype = after.type.name != before.type.name
        last = ""
        while True:
            chunk = self.conn.execute(
                sa.select(table.c.id, column).where(table.c.id > last)
                .order_by(table.c.id).limit(CHUNK)).all()
            if not chunk:
                return
            for record_id, raw in chunk:
                yield record_id, self._convert(before, after, raw, retype, checker,
                                               record_id in missing)
            last = chunk[-1][0]

    @staticmethod
    def _convert(before: Field, after: Field, raw: Any, retype: bool,
                 checker: Draft202012Validator, missing: bool) -> Any:
        value = before.from_db(raw)
        if value is None:
            return _BAD if after.required else None
        if missing:
            return _BAD
        try:
            if retype:
                value = after.type.convert(value)
            value = after.from_db(after.to_db(value))
        except (ValueError, TypeError, ArithmeticError):
            return _BAD
        return value if checker.is_valid(value) else _BAD

    # --- DDL ------------------------------------------------------------------------------

    def _ddl(self, change: EntityChange) -> list[str]:
        """The DDL of a change as SQL text, from Alembic's offline mode."""
        buffer = io.StringIO()
        context = MigrationContext.configure(
            dialect_name=self.dialect.name,
            opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True})
        self._structure(Operations(context), change, offline=True)
        return [s.strip() for s in buffer.getvalue().split(";\n") if s.strip()]

    def _structure(self, op: Operations, change: EntityChange, *, offline: bool = False,
                   between: Any = None) -> None:
        """Run the change's DDL; ``between`` runs the data work after columns are added."""
        old, new, name = change.old, change.new, change.name
        tname = table_name(name)
        search = self.dialect.name == "postgresql"
        if old is None:
            assert new is not None
            op.create_table(tname, *[sa.Column(c.name, c.type, primary_key=c.primary_key,
                                               nullable=c.nullable) for c in new.table.columns])
            for index in new.table.indexes:
                op.create_index(index.name, tname, [c.name for c in index.columns],
                                unique=bool(index.unique))
            if search:
                for column in new.search_fields:
                    self._create_search_index(op, tname, column)
            return
        if new is None:
            op.drop_table(tname)
            return
        for index in change.drop_indexes:
            op.drop_index(index.name, table_name=tname)
        for column in change.drop_search if search else ():
            op.drop_index(search_index_name(tname, column), table_name=tname)
        if change.add_state:
            assert new.workflow is not None
            # Every row starts in the initial state at once (instantly on PostgreSQL 11+
            # and SQLite); new rows get theirs from the engine.
            initial = sa.literal(new.workflow.initial, STATE).compile(
                dialect=self.dialect, compile_kwargs={"literal_binds": True})
            op.add_column(tname, sa.Column("state", STATE, server_default=sa.text(str(initial))))
            if self.dialect.name == "postgresql":
                op.alter_column(tname, "state", server_default=None)
        for f in change.added:
            default = self._server_default(f)
            op.add_column(tname, sa.Column(f.name, f.type.column(f.schema),
                                           server_default=default))
            if default is not None and self.dialect.name == "postgresql":
                # The rows have their value; new rows get theirs from the engine.
                op.alter_column(tname, f.name, server_default=None)
        for new_name in sorted(change.retyped):
            f = new.fields[new_name]
            op.add_column(tname, sa.Column(_temporary(new_name), f.type.column(f.schema)))
        if between is not None:
            between()
        renamed = dict(change.renamed)
        old_of = {n: o for o, n in renamed.items()}
        with self._altering(op, tname, offline) as alter:
            if change.drop_state:
                alter.drop_column("state")
            for f in change.dropped:
                alter.drop_column(f.name)
            for new_name in sorted(change.retyped):
                alter.drop_column(old_of.get(new_name, new_name))
                alter.alter_column(_temporary(new_name), new_column_name=new_name)
            for old_name, new_name in change.renamed:
                if new_name not in change.retyped:
                    alter.alter_column(old_name, new_column_name=new_name)
        for index in change.create_indexes:
            op.create_index(index.name, tname, [c.name for c in index.columns],
                            unique=bool(index.unique))
        for column in change.create_search if search else ():
            self._create_search_index(op, tname, column)

    def _server_default(self, f: Field) -> sa.TextClause | None:
        """A new field's default as SQL, so ``ADD COLUMN … DEFAULT`` fills the existing rows
        at once (instantly on PostgreSQL 11+ and SQLite) instead of an UPDATE of each row."""
        value = f.schema.get("default")
        if value is None or not isinstance(value, str | int | float | bool) or f.type.is_array:
            return None
        column_type = f.type.column(f.schema)
        rendered = sa.literal(f.to_db(value), column_type).compile(
            dialect=self.dialect, compile_kwargs={"literal_binds": True})
        return sa.text(str(rendered))

    @staticmethod
    def _create_search_index(op: Operations, tname: str, column: str) -> None:
        """A GIN index over one field's full-text document (PostgreSQL only)."""
        op.create_index(search_index_name(tname, column), tname,
                        [sa.text(search_document(tname, column))], postgresql_using="gin")

    @contextmanager
    def _altering(self, op: Operations, tname: str, offline: bool) -> Iterator[Any]:
        """Column drops and renames: Alembic's batch mode on SQLite, plain ALTER elsewhere."""
        if self.dialect.name == "sqlite" and not offline:
            with op.batch_alter_table(tname, recreate="auto") as batch:
                yield batch
        else:
            yield _TableOps(op, tname)

    # --- applying -------------------------------------------------------------------------

    def apply(self, plan: Plan, publish_id: int) -> None:
        """Carry out ``plan`` on this connection (inside the publishing transaction)."""
        op = Operations(MigrationContext.configure(self.conn))
        for change in plan.changes:
            if change.old is not None and change.new is None:
                self._archive_records(change.old, publish_id)
            if change.old is not None and change.new is not None:
                for f in change.dropped:
                    self._archive_field(change.old, f, publish_id)
                if change.drop_state:
                    self._archive_column(change.old, "state", publish_id)
            self._structure(op, change, between=lambda c=change: self._move_data(c))

    def _archive_records(self, ent: Entity, publish_id: int) -> None:
        from .records import to_record

        rows = self.conn.execute(sa.select(ent.table)).mappings()
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append({"publish_id": publish_id, "entity": ent.name, "field": None,
                          "record_id": row["id"], "value": to_record(ent, row)})
        if batch:
            self.conn.execute(archive_table.insert(), batch)

    def _archive_field(self, ent: Entity, f: Field, publish_id: int) -> None:
        self._archive_column(ent, f.name, publish_id, f.from_db)

    def _archive_column(self, ent: Entity, name: str, publish_id: int,
                        value: Any = lambda raw: raw) -> None:
        column = ent.table.c[name]
        rows = self.conn.execute(sa.select(ent.table.c.id, column).where(column.isnot(None)))
        batch = [{"publish_id": publish_id, "entity": ent.name, "field": name,
                  "record_id": record_id, "value": value(raw)} for record_id, raw in rows]
        if batch:
            self.conn.execute(archive_table.insert(), batch)

    def _move_data(self, change: EntityChange) -> None:
        """Fill added fields and convert changed ones, after the new columns exist."""
        assert change.old is not None and change.new is not None
        tname = table_name(change.name)
        for f in change.added:
            if self._server_default(f) is not None:
                continue  # ADD COLUMN … DEFAULT filled them
            if "default" in f.schema:
                value = f.schema["default"]
            elif f.required:
                value = self._fill(change, f)[1]
            else:
                continue
            column = sa.column(f.name, f.type.column(f.schema))
            self.conn.execute(sa.update(sa.table(tname, column)).values(
                {column: f.to_db(value)}))
        for before, after in change.changed:
            retyped = after.name in change.retyped
            target = _temporary(after.name) if retyped else before.name
            column = sa.column(target, after.type.column(after.schema))
            table = sa.table(tname, sa.column("id"), column)
            fill = after.to_db(self._fill(change, after)[1])
            statement = sa.update(table).where(table.c.id == sa.bindparam("rid")) \
                .values({column.name: sa.bindparam("value", type_=column.type)})
            batch: list[dict[str, Any]] = []
            for record_id, value in self._converted(change, before, after):
                if value is _BAD:
                    batch.append({"rid": record_id, "value": fill})
                elif retyped:
                    batch.append({"rid": record_id, "value": after.to_db(value)})
                if len(batch) >= CHUNK:
                    self.conn.execute(statement, batch)
                    batch = []
            if batch:
                self.conn.execute(statement, batch)


class _Bad:
    def __repr__(self) -> str:
        return "<does not fit>"


_BAD = _Bad()


def _temporary(name: str) -> str:
    return f"{name}__retyped"


class _TableOps:
    """The two batch operations the planner uses, bound to one table for plain ``op``."""

    def __init__(self, op: Operations, tname: str) -> None:
        self.op, self.tname = op, tname

    def drop_column(self, name: str) -> None:
        self.op.drop_column(self.tname, name)

    def alter_column(self, name: str, **kw: Any) -> None:
        self.op.alter_column(self.tname, name, **kw)
