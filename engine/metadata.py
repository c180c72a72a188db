"""The metadata service: drafts, plan, publish, and every published version.

Definitions are edited as drafts and made live by :meth:`MetadataService.publish`, which
applies the :class:`~blockscrm.engine.plan.Plan` for all drafts in one transaction.
Every published version is kept, so any two can be diffed and an earlier one restored
(as a draft, through a plan like any other change).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .definitions import KINDS, SLUG, check_envelope, pointer
from .entities import Entity, compile_entity, reference_errors
from .errors import Conflict, DefinitionError, NotFound
from .fieldtypes import text_problem
from .plan import Plan, Planner
from .rules import bind_rules, parse_rule, to_text
from .store import DefinitionVersion, Draft, Publish, utcnow

if TYPE_CHECKING:
    from .workspace import Catalog, Workspace

Document = dict[str, Any]
Decisions = Mapping[str, Mapping[str, Any]]
Changes = Mapping[tuple[str, str], Document | None]
#: Keys publishing sets; a draft's own value for them is ignored.
MANAGED_KEYS = ("version",)


def diff_documents(before: Any, after: Any, path: tuple[str | int, ...] = ()
                   ) -> Iterator[dict[str, Any]]:
    """Yield each difference between two JSON documents as ``{op, path, before, after}``."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            if key not in after:
                yield {"op": "remove", "path": pointer(*path, key), "before": before[key]}
            elif key not in before:
                yield {"op": "add", "path": pointer(*path, key), "after": after[key]}
            else:
                yield from diff_documents(before[key], after[key], (*path, key))
    elif before != after:
        yield {"op": "replace", "path": pointer(*path), "before": before, "after": after}


class MetadataService:
    """Drafts, plans, publishes and versions of one workspace's definitions."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    # --- drafts ---------------------------------------------------------------------------

    def check(self, document: Any) -> Document:
        """Validate a definition on its own (meta-schema, then its kind's own rules).

        :raises DefinitionError: with every problem keyed by JSON Pointer.
        """
        check_envelope(document)
        self.ws.catalog()  # the registries follow the plugins enabled now
        problems = list(_text_problems(document, ()))
        if problems:
            raise DefinitionError(problems)
        document = {k: v for k, v in copy.deepcopy(document).items() if k not in MANAGED_KEYS}
        if document["kind"] == "entity":
            entity = compile_entity(document, self.ws.field_types)
            errors = bind_rules(entity, self._probe_catalog(entity), self.ws.rule_functions)
            if errors:
                raise DefinitionError(errors)
        return document

    def _probe_catalog(self, entity: Entity) -> Catalog:
        """The published entities, the other drafts that compile, and ``entity``: what a
        new definition's rules are checked against when it is saved."""
        catalog = self.draft_catalog()
        catalog.entities[entity.name] = entity
        return catalog

    def draft_catalog(self) -> Catalog:
        """The published entities with every draft entity that compiles over them: what
        the designer builds against before anything is published."""
        from .workspace import Catalog

        with self.ws.reading() as conn:
            published = self.ws.catalog(conn)
            drafts = conn.execute(sa.select(Draft.name, Draft.document)
                                  .where(Draft.kind == "entity")).all()
        entities = dict(published.entities)
        for name, document in drafts:
            if document is None:
                entities.pop(name, None)
                continue
            try:
                entities[name] = compile_entity(document, self.ws.field_types)
            except DefinitionError:
                continue
        return Catalog(published.version, published.documents, entities)

    def draft_entity(self, name: str, document: Any = None) -> Entity:
        """An entity as the drafts have it, its rules bound, to build rules on before
        anything is published; ``document`` stands in for its draft (an editor's unsaved
        state).

        :raises NotFound: no such entity, published or drafted.
        :raises DefinitionError: ``document`` is not a valid entity named ``name``.
        """
        if document is not None:
            document = self.check(document)
            if (document["kind"], document["name"]) != ("entity", name):
                raise DefinitionError({"/entity/name": [f"must be {name!r}, as in the address"]})
            entity = compile_entity(document, self.ws.field_types)
            catalog = self._probe_catalog(entity)
        else:
            catalog = self.draft_catalog()
            found = catalog.entities.get(name)
            if found is None:
                raise NotFound(f"no entity named {name!r}")
            entity = found
        bind_rules(entity, catalog, self.ws.rule_functions)
        return entity

    def problems(self, kind: str, name: str) -> dict[str, list[str]]:
        """What publishing would refuse in one definition as it stands now, with the other
        drafts: its problems keyed by JSON Pointer into it. The meta-schema is checked when
        a draft is saved; this asks the rest (fields, states and actions it names, its
        rules' types) without publishing, so an editor can show them where they are.

        Problems elsewhere that keep it from being checked at all (a draft entity it stands
        on that does not compile) are not its own and are left out.
        """
        _named(kind, name)
        with self.ws.reading() as conn:
            documents = dict(self.ws.catalog(conn).documents)
            for k, n, document in conn.execute(sa.select(Draft.kind, Draft.name,
                                                         Draft.document)):
                if document is None:
                    documents.pop((k, n), None)
                else:
                    documents[(k, n)] = document
        if (kind, name) not in documents:
            raise NotFound(f"no {kind} named {name!r}")
        try:
            self.ws.compile(documents)
        except DefinitionError as exc:
            prefix = f"/{kind}/{name}"
            return {key[len(prefix):] or "/": messages for key, messages in exc.errors.items()
                    if key == prefix or key.startswith(prefix + "/")}
        return {}

    def check_rule(self, entity: str, source: Any, *, saving: bool = False,
                   document: Any = None) -> dict[str, Any]:
        """A condition or formula read against ``entity`` as :meth:`draft_entity` has it:
        its tree, its text and the type of its value, for an editor that shows both forms.
        ``saving`` allows ``changed()`` and ``previous()``, which read a write.

        :raises NotFound: no such entity, published or drafted.
        :raises DefinitionError: under ``/rule``, text that does not parse, a tree that is
            not well typed, or one that has no text form.
        """
        rules = self.draft_entity(entity, document).rules
        assert rules is not None
        try:
            tree = parse_rule(source)
            found = rules.checker(saving=saving).check(tree)
            text = to_text(tree)
        except ValueError as exc:  # no parse, not well typed, or a tree with no text form
            raise DefinitionError({"/rule": [str(exc)]}) from None
        return {"tree": tree, "text": text, "type": str(found)}

    def create(self, document: Any, *, actor: str | None = None) -> Document:
        """Save a new definition as a draft.

        :raises Conflict: when a definition of that kind and name exists.
        """
        document = self.check(document)
        with self.ws.transaction() as conn:
            key = (document["kind"], document["name"])
            if self._draft(conn, *key) is not None or self._published(conn, *key) is not None:
                raise Conflict(f"a {key[0]} named {key[1]!r} exists already")
            self._save(conn, document, actor)
        return document

    def replace(self, kind: str, name: str, document: Any, *, actor: str | None = None,
                expected: str | None = None) -> Document:
        """Save ``document`` as the draft of an existing (or new) definition.

        ``expected`` is the :meth:`revision` the editor started from: when someone else
        saved the definition since, nothing is saved.

        :raises Conflict: ``expected`` is stale.
        """
        document = self.check(document)
        if (document["kind"], document["name"]) != (kind, name):
            raise DefinitionError({"/name": [f"must be {name!r}, as in the address"]})
        with self.ws.transaction() as conn:
            self._check_revision(conn, kind, name, expected)
            self._save(conn, document, actor)
        return document

    def revision(self, kind: str, name: str) -> str:
        """A fingerprint of the definition as it stands (its draft, else the published
        one): an editor sends it back to save, so two editors never overwrite each
        other's work unknowingly."""
        _named(kind, name)
        with self.ws.reading() as conn:
            return self._revision(conn, kind, name)

    def _revision(self, conn: sa.Connection, kind: str, name: str) -> str:
        draft = self._draft(conn, kind, name)
        current = draft.document if draft is not None else self._published(conn, kind, name)
        text = json.dumps(_unversioned(current), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def _check_revision(self, conn: sa.Connection, kind: str, name: str,
                        expected: str | None) -> None:
        if expected is None:
            return
        if conn.dialect.name == "postgresql":  # one check-and-save at a time
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7302)"))
        if self._revision(conn, kind, name) != expected:
            saved = conn.execute(sa.select(Draft.saved_by, Draft.saved_at).where(
                Draft.kind == kind, Draft.name == name)).first()
            who = f" (saved by {saved[0] or 'someone'} at {saved[1]:%Y-%m-%d %H:%M} UTC)" \
                if saved else ""
            raise Conflict(f"{kind} {name!r} changed since it was loaded{who}; load it "
                           "again and redo the change")

    def publishes(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest publishes: when, by whom, and which definitions each changed."""
        with self.ws.reading() as conn:
            rows = conn.execute(sa.select(Publish.id, Publish.published_at,
                                          Publish.published_by, Publish.plan)
                                .order_by(Publish.id.desc()).limit(limit)).all()
        return [{"id": i, "published_at": at.isoformat() + "Z", "published_by": by,
                 "definitions": (plan or {}).get("definitions", [])}
                for i, at, by, plan in rows]

    def get(self, kind: str, name: str) -> Document:
        """The draft where one exists, else the published definition."""
        _named(kind, name)
        with self.ws.reading() as conn:
            draft = self._draft(conn, kind, name)
            if draft is not None and draft.document is not None:
                return copy.deepcopy(draft.document)
            published = self._published(conn, kind, name)
        if published is None or (draft is not None and draft.document is None):
            raise NotFound(f"no {kind} named {name!r}")
        return copy.deepcopy(published)  # the caller's to change; the catalog's stays

    def list(self, kind: str) -> list[Document]:
        """Every definition of a kind: drafts over the published ones, by name."""
        if kind not in KINDS:
            raise NotFound(f"no definition kind named {kind!r}")
        with self.ws.reading() as conn:
            documents = {n: d for (k, n), d in self.ws.catalog(conn).documents.items()
                         if k == kind}
            for name, document in conn.execute(sa.select(Draft.name, Draft.document)
                                               .where(Draft.kind == kind)):
                if document is None:
                    documents.pop(name, None)
                else:
                    documents[name] = document
        return [copy.deepcopy(documents[n]) for n in sorted(documents)]

    def delete(self, kind: str, name: str, *, actor: str | None = None,
               expected: str | None = None) -> None:
        """Discard an unpublished draft, or mark a published definition for deletion
        (``expected`` as in :meth:`replace`)."""
        _named(kind, name)
        with self.ws.transaction() as conn:
            self._check_revision(conn, kind, name, expected)
            published = self._published(conn, kind, name)
            draft = self._draft(conn, kind, name)
            if published is None and draft is None:
                raise NotFound(f"no {kind} named {name!r}")
            if published is None:
                conn.execute(sa.delete(Draft).where(Draft.kind == kind, Draft.name == name))
            else:
                self._save(conn, None, actor, kind=kind, name=name)

    def discard(self, kind: str, name: str) -> None:
        """Drop the pending draft (edit or deletion) of a definition."""
        _named(kind, name)
        with self.ws.transaction() as conn:
            done = conn.execute(sa.delete(Draft).where(Draft.kind == kind, Draft.name == name))
            if not done.rowcount:
                raise NotFound(f"no draft of {kind} {name!r}")

    # --- plan and publish -----------------------------------------------------------------

    def plan(self, *, decisions: Decisions | None = None, changes: Changes | None = None
             ) -> Plan:
        """What publishing every draft would do now, with its effect on existing rows.

        ``changes`` (``{(kind, name): document, or None to delete}``) stands in for the
        drafts: how a blueprint is planned without touching anyone's drafts.
        """
        with self.ws.reading() as conn:
            return self._plan(conn, decisions, changes)[0]

    def publish(self, *, confirm: bool = False, decisions: Decisions | None = None,
                actor: str | None = None, changes: Changes | None = None) -> Plan:
        """Apply the plan for all drafts (or for ``changes``, as in :meth:`plan`) in one
        transaction and answer it.

        ``decisions`` answers what a plan asks (``{"deal.amount": {"fill": 0}}`` for rows
        whose values would not fit). Destructive steps need ``confirm=True``.

        :raises DefinitionError: when a draft is invalid with the others.
        :raises Conflict: carrying the plan, when a step is blocked, waits for a decision,
            or is destructive without ``confirm``.
        """
        with self.ws.transaction() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7301)"))
            current = self.ws.catalog(conn)
            plan, target, drafts = self._plan(conn, decisions, changes)
            if not plan.definitions:
                return plan
            if plan.waiting:
                reasons = "; ".join(f"{s.summary}: {s.blocked}" for s in plan.waiting)
                raise Conflict(f"The plan cannot be applied: {reasons}", plan=plan)
            if plan.destructive and not confirm:
                raise Conflict("The plan has destructive steps; publish with confirm",
                               plan=plan)
            publish_id = conn.execute(
                sa.insert(Publish).values(published_at=utcnow(), published_by=actor,
                                          plan=plan.to_dict())
                .returning(Publish.id)).scalar_one()
            # No catalog is read from here on: one built inside this transaction must not be
            # cached under the new version before it commits.
            Planner(conn, current, target, decisions).apply(plan, publish_id)
            for (kind, name), document in sorted(drafts.items()):
                self._record_version(conn, publish_id, kind, name, document)
            if changes is None:
                conn.execute(sa.delete(Draft))
        return plan

    def pending(self) -> list[tuple[str, str]]:
        """The ``(kind, name)`` of every unpublished draft."""
        with self.ws.reading() as conn:
            return [(k, n) for k, n in conn.execute(
                sa.select(Draft.kind, Draft.name).order_by(Draft.kind, Draft.name))]

    def _plan(self, conn: sa.Connection, decisions: Decisions | None,
              changes: Changes | None = None
              ) -> tuple[Plan, Catalog, dict[tuple[str, str], Document | None]]:
        current = self.ws.catalog(conn)
        drafts = dict(changes) if changes is not None else {(k, n): d for k, n, d in conn.execute(
            sa.select(Draft.kind, Draft.name, Draft.document))}
        documents = dict(current.documents)
        definitions = []
        for (kind, name), document in sorted(drafts.items()):
            exists = (kind, name) in documents
            if document is None:
                if exists:
                    documents.pop((kind, name))
                    definitions.append({"kind": kind, "name": name, "action": "delete"})
            elif _unversioned(documents.get((kind, name))) != _unversioned(document):
                documents[(kind, name)] = document
                entry: dict[str, Any] = {"kind": kind, "name": name,
                                         "action": "update" if exists else "create"}
                if exists:  # what a reviewer reads before publishing
                    entry["changes"] = list(diff_documents(
                        _unversioned(current.documents[(kind, name)]), _unversioned(document)))
                definitions.append(entry)
        target = self._compile_all(documents, current)
        plan = Planner(conn, current, target, decisions).plan(definitions)
        return plan, target, {(d["kind"], d["name"]): drafts[(d["kind"], d["name"])]
                              for d in definitions}

    def _compile_all(self, documents: dict[tuple[str, str], Document], current: Catalog
                     ) -> Catalog:
        errors: list[tuple[str, str]] = []
        for (kind, name), document in sorted(documents.items()):
            if kind == "entity":
                try:
                    compile_entity(document, self.ws.field_types)
                except DefinitionError as exc:
                    errors += [(f"/{kind}/{name}{p}", m) for p, ms in exc.errors.items()
                               for m in ms]
        if errors:
            raise DefinitionError(errors)
        target = self.ws.compile(documents)
        # A reference to an entity being dropped is the plan's to refuse, with the plan.
        dropping = {n for k, n in current.documents if k == "entity"} - set(target.entities)
        problems = [(f"/entity/{e}{p}", m)
                    for e, p, m in reference_errors(target.entities, allowed=dropping)]
        if problems:
            raise DefinitionError(problems)
        return target

    # --- versions -------------------------------------------------------------------------

    def versions(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Every published version of a definition, oldest first."""
        with self.ws.reading() as conn:
            rows = conn.execute(
                sa.select(DefinitionVersion.version, DefinitionVersion.publish_id,
                          Publish.published_at, Publish.published_by,
                          DefinitionVersion.document)
                .join(Publish, Publish.id == DefinitionVersion.publish_id)
                .where(DefinitionVersion.kind == kind, DefinitionVersion.name == name)
                .order_by(DefinitionVersion.version)).all()
        if not rows:
            raise NotFound(f"no published {kind} named {name!r}")
        return [{"version": v, "publish_id": p, "published_at": at.isoformat() + "Z",
                 "published_by": by, "deleted": doc is None} for v, p, at, by, doc in rows]

    def version(self, kind: str, name: str, version: int) -> Document | None:
        """One published version's document (None where that version deleted it)."""
        if not isinstance(version, int) or not 0 < version < 2**31:  # no column holds more
            raise NotFound(f"{kind} {name!r} has no version {version}")
        with self.ws.reading() as conn:
            row = conn.execute(
                sa.select(DefinitionVersion.document).where(
                    DefinitionVersion.kind == kind, DefinitionVersion.name == name,
                    DefinitionVersion.version == version)).first()
        if row is None:
            raise NotFound(f"{kind} {name!r} has no version {version}")
        return row[0]

    def diff(self, kind: str, name: str, before: int, after: int) -> list[dict[str, Any]]:
        """What changed in a definition between two published versions."""
        old = self.version(kind, name, before) or {}
        new = self.version(kind, name, after) or {}
        return [d for d in diff_documents(old, new) if d["path"] != "/version"]

    def restore(self, kind: str, name: str, version: int, *,
                actor: str | None = None) -> Document | None:
        """Make an earlier version the draft; publishing it goes through a plan as usual."""
        document = self.version(kind, name, version)
        with self.ws.transaction() as conn:
            self._save(conn, document, actor, kind=kind, name=name)
        return document

    # --- storage --------------------------------------------------------------------------

    def _draft(self, conn: sa.Connection, kind: str, name: str) -> Draft | None:
        row = conn.execute(sa.select(Draft.document).where(
            Draft.kind == kind, Draft.name == name)).first()
        return None if row is None else Draft(kind=kind, name=name, document=row[0])

    def _published(self, conn: sa.Connection, kind: str, name: str) -> Document | None:
        return self.ws.catalog(conn).documents.get((kind, name))

    def _save(self, conn: sa.Connection, document: Document | None, actor: str | None, *,
              kind: str | None = None, name: str | None = None) -> None:
        kind = kind or (document or {})["kind"]
        name = name or (document or {})["name"]
        conn.execute(sa.delete(Draft).where(Draft.kind == kind, Draft.name == name))
        conn.execute(sa.insert(Draft).values(kind=kind, name=name, document=document,
                                             saved_at=utcnow(), saved_by=actor))

    def _record_version(self, conn: sa.Connection, publish_id: int, kind: str, name: str,
                        document: Document | None) -> None:
        latest = conn.scalar(sa.select(sa.func.max(DefinitionVersion.version)).where(
            DefinitionVersion.kind == kind, DefinitionVersion.name == name)) or 0
        if document is not None:
            document = {**_without_renames(document), "version": latest + 1}
        conn.execute(sa.insert(DefinitionVersion).values(
            kind=kind, name=name, version=latest + 1, publish_id=publish_id,
            document=document))


def _named(kind: str, name: str) -> None:
    """:raises NotFound: for a kind or a name no definition can have, before any SQL (a
    NUL character would be a database error, not a missing definition)."""
    if kind not in KINDS or not isinstance(name, str) or not SLUG.match(name):
        raise NotFound(f"no {kind} named {name!r}")


def _text_problems(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[str, str]]:
    """Text in a definition that no database could store, by JSON Pointer."""
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key)
            if problem:
                yield pointer(*path, key), f"the key {problem}"
            yield from _text_problems(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _text_problems(item, (*path, i))
    else:
        problem = text_problem(value)
        if problem:
            yield pointer(*path), problem


def _unversioned(document: Document | None) -> Document | None:
    return None if document is None else {k: v for k, v in document.items() if k != "version"}


def _without_renames(document: Document) -> Document:
    """A published definition forgets ``x-renamed-from``: the rename has been done."""
    if document.get("kind") != "entity":
        return document
    properties = {n: {k: v for k, v in p.items() if k != "x-renamed-from"}
                  for n, p in document.get("properties", {}).items()}
    return {**document, "properties": properties}
