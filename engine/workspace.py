"""A workspace: one database holding one company's metadata and data.

Everything lives on the :class:`Workspace` object, nothing in module globals, so several
workspaces can be open in one process without seeing each other. The compiled metadata
(the :class:`Catalog`) is cached by the published metadata version, so any number of
processes can share a database and still follow each other's publishes.
"""

from __future__ import annotations

import os
import secrets
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .access import role_errors
from .accounts import User
from .actions import Action
from .approvals import compile_approval
from .automations import compile_automation, transition_rules
from .entities import Entity, Field, compile_entity
from .errors import DefinitionError, NotFound
from .fieldtypes import FieldType
from .notes import NoteService
from .plugins import (
    CardType,
    PluginManager,
    PluginService,
    PluginState,
    Registries,
    create_plugin_manager,
    load_states,
)
from .presentation import Dashboard, Form, View, compile_dashboard, compile_form, compile_view
from .rules import RuleFunction, bind_rules
from .saved_views import SavedViewService
from .store import Base, DefinitionVersion, Publish, Setting
from .workflows import compile_workflow

DEFAULT_URL = "sqlite:///blocks.db"
_WRITE = "blocks_write"
_AFTER_COMMIT = "blocks_after_commit"
#: The published metadata's version, asked once per transaction (built once).
_VERSION = sa.select(sa.func.max(Publish.id))


@dataclass
class Catalog:
    """The published metadata of one version, compiled: what records and queries run on."""

    version: int
    documents: dict[tuple[str, str], dict[str, Any]]
    entities: dict[str, Entity] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    forms: dict[str, Form] = field(default_factory=dict)
    dashboards: dict[str, Dashboard] = field(default_factory=dict)
    #: Each plugin's state in the workspace (enabled, settings) as of this version.
    plugins: dict[str, PluginState] = field(default_factory=dict)

    def entity(self, name: str) -> Entity:
        try:
            return self.entities[name]
        except KeyError:
            raise NotFound(f"no published entity named {name!r}") from None

    def view_for(self, entity: str, name: str | None = None) -> View | None:
        """The view ``name`` of ``entity``, else its default view, else its first."""
        views = [v for v in self.views.values() if v.entity == entity]
        if name is not None:
            return next((v for v in views if v.name == name), None)
        return next((v for v in views if v.default), views[0] if views else None)

    def form_for(self, entity: str) -> Form | None:
        """The entity's default form, else its first; None: the screens lay out every
        field."""
        forms = [f for f in self.forms.values() if f.entity == entity]
        return next((f for f in forms if f.default), forms[0] if forms else None)

    def references_to(self, target: str) -> list[tuple[Entity, Field]]:
        """Every reference field, in any entity, that points at ``target``."""
        return [(e, f) for e in self.entities.values() for f in e.fields.values()
                if f.ref == target]


def _workflow_clashes(workflows: Mapping[str, Mapping[str, Any]]
                      ) -> Iterator[tuple[str, str]]:
    """One workflow per entity: a record has one state."""
    owner: dict[str, str] = {}
    for name, doc in workflows.items():
        first = owner.setdefault(doc["entity"], name)
        if first != name:
            yield (f"/workflow/{name}/entity",
                   f"{doc['entity']} already follows the workflow {first!r}")


def _compile_presentation(catalog: Catalog, card_types: Mapping[str, CardType]
                          ) -> list[tuple[str, str]]:
    """The views, forms and dashboards, onto ``catalog``; their problems by pointer."""
    errors = []
    entities = catalog.entities
    for (kind, name), doc in sorted(catalog.documents.items()):
        if kind == "dashboard":
            board, problems = compile_dashboard(doc, entities, card_types)
            catalog.dashboards[name] = board
        elif kind in ("view", "form"):
            entity = entities.get(doc["entity"])
            if entity is None:
                errors.append((f"/{kind}/{name}/entity", f"no entity named {doc['entity']!r}"))
                continue
            if kind == "view":
                catalog.views[name], problems = compile_view(doc, entity)
            else:
                catalog.forms[name], problems = compile_form(doc, entity)
        else:
            continue
        errors += [(f"/{kind}/{name}{where}", message) for where, message in problems]
    return errors


def configure_sqlite(engine: sa.Engine, *, always_immediate: bool = False) -> None:
    """WAL, busy waits and real transactions on SQLite.

    pysqlite's own transaction handling defers BEGIN and breaks transactional DDL, so
    the driver's is switched off and BEGIN is emitted here: IMMEDIATE for writes (or for
    every transaction, ``always_immediate``: what a baseline that only writes wants), so
    two writers queue on the lock instead of failing half-way.
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        immediate = always_immediate or conn.get_execution_options().get(_WRITE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Workspace:
    """One company's CRM: metadata, records, queries, audit trail.

    >>> ws = Workspace("sqlite:///crm.db")          # doctest: +SKIP
    >>> ws.metadata.save_draft({...}); ws.metadata.publish()   # doctest: +SKIP
    >>> ws.records.create("deal", {"title": "Acme"})          # doctest: +SKIP
    """

    def __init__(self, url: str | None = None, *, pm: PluginManager | None = None,
                 secret: str | None = None, redis_url: str | None = None) -> None:
        from .access import Access
        from .accounts import AccountService
        from .approvals import ApprovalService
        from .automations import AutomationService
        from .blueprints import BlueprintService
        from .jobs import make_jobs
        from .metadata import MetadataService
        from .records import RecordService

        self.url = url or os.environ.get("DATABASE_URL") or DEFAULT_URL
        self.engine = sa.create_engine(self.url)
        if self.engine.dialect.name == "sqlite":
            configure_sqlite(self.engine)
        self.pm = pm or create_plugin_manager()
        self._secret = secret or os.environ.get("BLOCKS_SECRET_KEY")
        self._catalog: Catalog | None = None
        self._by_connection: weakref.WeakKeyDictionary[sa.Connection, Catalog] = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()
        #: The write transaction open in this context (thread, task), for joining it.
        self._open: ContextVar[sa.Connection | None] = ContextVar(f"blocks_tx_{id(self)}",
                                                                  default=None)
        #: The read snapshot open in this context (see :meth:`snapshot`).
        self._snapshot: ContextVar[sa.Connection | None] = ContextVar(
            f"blocks_snapshot_{id(self)}", default=None)
        Base.metadata.create_all(self.engine)
        with self.engine.connect() as conn:
            self._use_plugins(frozenset(n for n, state in load_states(conn).items()
                                        if state.enabled))
        self.plugins = PluginService(self)
        self.metadata = MetadataService(self)
        self.records = RecordService(self)
        self.accounts = AccountService(self)
        self.access = Access(self)
        self.automations = AutomationService(self)
        self.approvals = ApprovalService(self)
        self.notes = NoteService(self)
        self.saved_views = SavedViewService(self)
        self.blueprints = BlueprintService(self)
        #: Where asynchronous rules' runs go: RQ on Redis (``REDIS_URL``), else inline.
        self.jobs = make_jobs(self, redis_url or os.environ.get("REDIS_URL"))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def secret(self) -> bytes:
        """The key that signs cursors: ``BLOCKS_SECRET_KEY``, else one the workspace keeps in
        its database, so every process on it accepts the others' cursors."""
        if self._secret is None:
            self._secret = self._stored_secret()
        return self._secret.encode()

    def _stored_secret(self) -> str:
        with self.transaction() as conn:
            value = conn.scalar(sa.select(Setting.value).where(Setting.key == "secret_key"))
            if value is None:
                value = secrets.token_hex(32)
                conn.execute(sa.insert(Setting).values(key="secret_key", value=value))
            return str(value)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A write transaction: everything in it lands together or not at all.

        One opened while another is open in the same context joins it, so what an
        automation's action writes during a save (say, ``records.update``) lands or fails
        with that save. Work registered with :meth:`after_commit` runs once the outermost
        transaction has committed, never before.
        """
        joined = self._open.get()
        if joined is not None:
            yield joined
            return
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            token = self._open.set(conn)
            try:
                with conn.begin():
                    yield conn
            finally:
                self._open.reset(token)
                pending = conn.info.pop(_AFTER_COMMIT, [])
        for work in pending:  # reached only when the block committed
            work()

    def after_commit(self, work: Callable[[], Any]) -> None:
        """Run ``work`` once the transaction open now commits (at once when none is);
        a transaction that rolls back drops it."""
        conn = self._open.get()
        if conn is None:
            work()
        else:
            conn.info.setdefault(_AFTER_COMMIT, []).append(work)

    @contextmanager
    def snapshot(self) -> Iterator[sa.Connection]:
        """A read transaction that every read in this context joins, until it ends.

        A screen asks the engine twenty questions (the records, their references' titles,
        counts, views, the catalog); inside a snapshot they share one connection, one
        catalog check and one consistent view of the data. Writes do not join it: a
        :meth:`transaction` opened inside still opens its own.
        """
        joined = self._open.get() or self._snapshot.get()
        if joined is not None:
            yield joined
            return
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                # READ COMMITTED would let each statement see newer commits.
                conn = conn.execution_options(isolation_level="REPEATABLE READ",
                                              postgresql_readonly=True)
            with conn.begin():
                token = self._snapshot.set(conn)
                try:
                    yield conn
                finally:
                    self._snapshot.reset(token)

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A read-only connection with one consistent snapshot (inside a write
        transaction, that transaction, so a read sees what it wrote; inside a
        :meth:`snapshot`, the snapshot)."""
        joined = self._open.get() or self._snapshot.get()
        if joined is not None:
            yield joined
            return
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # --- metadata -------------------------------------------------------------------------

    def catalog(self, conn: sa.Connection | None = None) -> Catalog:
        """The compiled published metadata, rebuilt only when another publish has happened."""
        if conn is None:
            with self.reading() as own:
                return self.catalog(own)
        known = self._by_connection.get(conn)
        if known is not None:
            return known  # one version check per transaction, however many callers ask
        catalog = self._current_catalog(conn)
        self._by_connection[conn] = catalog
        return catalog

    def _use_plugins(self, enabled: frozenset[str]) -> None:
        """Fill the registries (field types, rule functions, actions, triggers) from the
        built-ins and the ``enabled`` plugins: a disabled plugin's hooks are not called."""
        registries = self.registries = Registries.collect(self.pm, enabled)
        self.field_types: dict[str, FieldType] = registries.field_types
        self.rule_functions: dict[str, RuleFunction] = registries.rule_functions
        self.actions: dict[str, Action] = registries.actions
        self.triggers: dict[str, Any] = registries.triggers
        self.card_types: dict[str, CardType] = registries.card_types
        self._registered_for = enabled

    def _current_catalog(self, conn: sa.Connection) -> Catalog:
        current = conn.execute(_VERSION).scalar() or 0
        cached = self._catalog
        if cached is not None and cached.version == current:
            return cached
        with self._lock:
            rows = conn.execute(
                sa.select(DefinitionVersion.kind, DefinitionVersion.name,
                          DefinitionVersion.document)
                .where(DefinitionVersion.publish_id <= current)
                .order_by(DefinitionVersion.version)
            ).all()
            documents: dict[tuple[str, str], dict[str, Any]] = {}
            for kind, name, document in rows:
                if document is None:
                    documents.pop((kind, name), None)
                else:
                    documents[(kind, name)] = document
            states = load_states(conn)
            enabled = frozenset(n for n, state in states.items() if state.enabled)
            if enabled != self._registered_for:
                self._use_plugins(enabled)
            catalog = self.compile(documents, current)
            catalog.plugins = states
            self._catalog = catalog
            return catalog

    def known_catalog(self) -> Catalog:
        """The catalog this process saw last, without asking the database; whoever reads
        with it checks the version in its own transaction (see ``Query``)."""
        return self._catalog or self.catalog()

    def compile(self, documents: dict[tuple[str, str], dict[str, Any]], version: int = 0,
                registries: Registries | None = None) -> Catalog:
        """Compile definitions into a catalog, rules included, with the registries of the
        enabled plugins (or ``registries``: what a set of plugins would leave).

        :raises DefinitionError: keyed by JSON Pointer into the set of definitions
            (``/entity/<name>/<pointer>``).
        """
        reg = registries or self.registries
        metadata = sa.MetaData()
        workflows = {name: doc for (kind, name), doc in sorted(documents.items())
                     if kind == "workflow"}
        errors = list(_workflow_clashes(workflows))
        stateful = {doc["entity"] for doc in workflows.values()}
        entities = {
            name: compile_entity(doc, reg.field_types, metadata, with_state=name in stateful)
            for (kind, name), doc in sorted(documents.items()) if kind == "entity"
        }
        catalog = Catalog(version=version, documents=documents, entities=entities)
        errors += [(f"/entity/{name}{where}", message) for name, entity in entities.items()
                   for where, message in bind_rules(entity, catalog, reg.rule_functions)]
        errors += [error for (kind, name), doc in sorted(documents.items()) if kind == "role"
                   for error in role_errors(name, doc, entities)]
        roles = {name for kind, name in documents if kind == "role"}
        for name, doc in workflows.items():
            entity = entities.get(doc["entity"])
            if entity is None:
                errors.append((f"/workflow/{name}/entity", f"no entity named {doc['entity']!r}"))
                continue
            if errors:
                continue  # its guards need the entity's rules bound
            workflow, problems = compile_workflow(doc, entity, roles)
            errors += [(f"/workflow/{name}{where}", message) for where, message in problems]
            entity.workflow = workflow
        # Every rule and approval is checked (each is reported), once what they stand on
        # (entities, workflows) compiled.
        blocked = bool(errors)
        for (kind, name), doc in sorted(documents.items()):
            if kind != "automation" or blocked:
                continue
            entity = entities.get(doc["entity"])
            if entity is None:
                errors.append((f"/automation/{name}/entity",
                               f"no entity named {doc['entity']!r}"))
                continue
            rule, problems = compile_automation(doc, entity, catalog, reg.actions,
                                                reg.triggers)
            errors += [(f"/automation/{name}{where}", message) for where, message in problems]
            if rule is not None:
                entity.automations.append(rule)
        for (kind, name), doc in sorted(documents.items()):
            if kind != "approval" or blocked:
                continue
            entity = entities.get(doc["entity"])
            if entity is None:
                errors.append((f"/approval/{name}/entity", f"no entity named {doc['entity']!r}"))
                continue
            process, problems = compile_approval(doc, entity, catalog, reg.actions)
            errors += [(f"/approval/{name}{where}", message) for where, message in problems]
            if process is not None:
                entity.approvals.append(process)
        for name, doc in workflows.items():
            entity = entities.get(doc["entity"])
            if entity is not None and entity.workflow is not None and not errors:
                rules, problems = transition_rules(doc, entity, catalog, reg.actions)
                errors += [(f"/workflow/{name}{where}", m) for where, m in problems]
                entity.automations += rules
        if not errors:
            errors += _compile_presentation(catalog, reg.card_types)
        if errors:
            raise DefinitionError(errors)
        return catalog

    def entity(self, name: str) -> Entity:
        return self.catalog().entity(name)

    def query(self, entity: str, *, user: User | None = None) -> Any:
        """A :class:`~blockscrm.engine.query.Query` over the published ``entity``, as
        ``user`` may see it (None: the system, which sees everything).

        :raises PermissionDenied: the user may not read the entity."""
        from .query import Query

        return Query(self, entity, user=user)
