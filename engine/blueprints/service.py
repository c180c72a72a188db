"""Installing blueprints: plan, apply, export, each layer-aware.

A blueprint's definitions become the workspace's base layer; whatever the workspace
changes afterwards is its own layer on top (see :mod:`.layers`). :meth:`BlueprintService.plan`
shows everything applying would do — definitions with their diff, the DDL and its effect
on rows, the rules that would start acting, the sample data — and
:meth:`BlueprintService.apply` does exactly that in one publish. Applying what is
already there changes nothing.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import yaml
from packaging.version import InvalidVersion, Version

from ..errors import BlocksError, Conflict, DefinitionError, NotFound
from ..metadata import diff_documents
from ..plan import Plan
from ..store import BlueprintRecord, InstalledBlueprint, utcnow
from .files import FOLDERS, Blueprint, BlueprintError, DataFile, Requirement, load
from .layers import MergeConflict, merge, unversioned

if TYPE_CHECKING:
    from ..workspace import Workspace

Key = tuple[str, str]
Document = dict[str, Any]


def shipped_folders() -> list[Path]:
    """Where blueprints are looked for by name: ``BLOCKS_BLUEPRINT_PATH`` (folders
    separated like ``PATH``), then the blueprints shipped with Blocks."""
    folders = [Path(p) for p in os.environ.get("BLOCKS_BLUEPRINT_PATH", "").split(os.pathsep)
               if p]
    with contextlib.suppress(ModuleNotFoundError):  # an engine installed on its own
        folders.append(Path(str(resources.files("blockscrm.blueprints"))))
    return folders


class Library:
    """The blueprints available to install, found by name in a list of folders."""

    def __init__(self, folders: Iterable[Path] | None = None) -> None:
        self.folders = list(folders) if folders is not None else shipped_folders()

    def available(self) -> dict[str, Blueprint]:
        """Every readable blueprint, by name (the first folder that has one wins)."""
        found: dict[str, Blueprint] = {}
        for folder in self.folders:
            for path in sorted(folder.glob("*/blueprint.yaml")) if folder.is_dir() else []:
                try:
                    blueprint = load(path.parent)
                except BlueprintError:
                    continue
                found.setdefault(blueprint.name, blueprint)
        return found

    def get(self, name_or_path: str | Path) -> Blueprint:
        """A blueprint by folder path, or by name from the library.

        :raises NotFound: nothing of that name; :raises BlueprintError: it is invalid.
        """
        path = Path(name_or_path)
        if (path / "blueprint.yaml").is_file():
            return load(path)
        for folder in self.folders:
            candidate = folder / str(name_or_path)
            if (candidate / "blueprint.yaml").is_file():
                return load(candidate)
        for blueprint in self.available().values():
            if blueprint.name == str(name_or_path):
                return blueprint
        raise NotFound(f"no blueprint named {str(name_or_path)!r}; available: "
                       f"{', '.join(sorted(self.available())) or 'none'}")


@dataclass
class DefinitionChange:
    """What applying does to one definition."""

    kind: str
    name: str
    action: str  # create, update or delete
    blueprint: str
    diff: list[dict[str, Any]] = field(default_factory=list)
    #: The workspace's own changes to it that the merge keeps.
    kept: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        mark = {"create": "+", "update": "~", "delete": "-"}[self.action]
        lines = [f"{mark} {self.kind} {self.name}  ({self.blueprint})"]
        for d in self.diff:
            if d["op"] == "add":
                lines.append(f"    + {d['path']}: {_short(d['after'])}")
            elif d["op"] == "remove":
                lines.append(f"    - {d['path']}: {_short(d['before'])}")
            else:
                lines.append(f"    ~ {d['path']}: {_short(d['before'])} -> {_short(d['after'])}")
        if self.kept:
            lines.append(f"    keeps {len(self.kept)} change(s) the workspace made: "
                         + ", ".join(d["path"] for d in self.kept))
        return "\n".join(lines)


def _short(value: Any, limit: int = 80) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6
                          ).strip().removesuffix("...").strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass
class BlueprintPlan:
    """Everything applying a blueprint (and the ones it requires) would do."""

    #: ``(name, installed version or None, version applied)``, requirements first.
    blueprints: list[tuple[str, str | None, str]]
    definitions: list[DefinitionChange]
    schema: Plan | None
    #: Automations and approvals that would start acting: ``(kind, name, what)``.
    rules: list[tuple[str, str, str]]
    #: Sample records not loaded yet, by blueprint and entity.
    data: dict[str, dict[str, int]]
    conflicts: list[str]
    #: Whether applying loads the sample data (else it is only mentioned).
    with_data: bool = False
    #: The definitions to publish: ``{(kind, name): document or None}``.
    changes: dict[Key, Document | None] = field(repr=False, default_factory=dict)
    #: The base layer each blueprint leaves behind.
    bases: dict[str, dict[str, Document]] = field(repr=False, default_factory=dict)
    chain: list[Blueprint] = field(repr=False, default_factory=list)

    @property
    def empty(self) -> bool:
        versions_change = any(old != new for _, old, new in self.blueprints)
        return not (self.definitions or self.conflicts or versions_change
                    or (self.with_data and any(self.data.values())))

    def to_dict(self) -> dict[str, Any]:
        return {"blueprints": [{"name": n, "installed": o, "version": v}
                               for n, o, v in self.blueprints],
                "definitions": [{"kind": c.kind, "name": c.name, "action": c.action,
                                 "blueprint": c.blueprint, "diff": c.diff, "kept": c.kept}
                                for c in self.definitions],
                "schema": self.schema.to_dict() if self.schema else None,
                "rules": [{"kind": k, "name": n, "what": w} for k, n, w in self.rules],
                "data": self.data, "with_data": self.with_data, "conflicts": self.conflicts}

    def __str__(self) -> str:
        if self.empty:
            return "No changes."
        lines = []
        for name, old, new in self.blueprints:
            if old is None:
                lines.append(f"Install {name} {new}")
            elif old != new:
                lines.append(f"Upgrade {name} {old} -> {new}")
        if self.conflicts:
            lines += ["", "Conflicts (nothing is applied until they are resolved):"]
            lines += [f"  ! {c}" for c in self.conflicts]
        if self.definitions:
            lines += ["", "Definitions:"] + [str(c) for c in self.definitions]
        if self.schema is not None and self.schema.steps:
            lines += ["", "Database:", str(self.schema)]
        if self.rules:
            lines += ["", "Rules that would start acting:"]
            lines += [f"  {kind} {name}: {what}" for kind, name, what in self.rules]
        for blueprint, counts in self.data.items():
            if counts and self.with_data:
                lines += ["", f"Sample data from {blueprint}:"]
                lines += [f"  {entity}: {n} record(s)" for entity, n in counts.items()]
            elif counts:
                lines += ["", f"Sample data from {blueprint}: {sum(counts.values())} records, "
                              "not loaded unless asked (--with-data)"]
        return "\n".join(lines)


class BlueprintService:
    """Plan, apply and export blueprints in one workspace."""

    def __init__(self, workspace: Workspace, library: Library | None = None) -> None:
        self.ws = workspace
        self.library = library or Library()

    # --- what is installed ----------------------------------------------------------------

    def installed(self) -> dict[str, dict[str, Any]]:
        """Each installed blueprint by name: version, manifest, installed_at and _by."""
        with self.ws.reading() as conn:
            rows = conn.execute(sa.select(
                InstalledBlueprint.name, InstalledBlueprint.version, InstalledBlueprint.manifest,
                InstalledBlueprint.installed_at, InstalledBlueprint.installed_by)
                .order_by(InstalledBlueprint.name)).mappings().all()
        return {r["name"]: dict(r) for r in rows}

    def _bases(self, conn: sa.Connection) -> dict[str, tuple[str, dict[str, Document]]]:
        return {name: (version, base) for name, version, base in conn.execute(
            sa.select(InstalledBlueprint.name, InstalledBlueprint.version,
                      InstalledBlueprint.base))}

    # --- plan -----------------------------------------------------------------------------

    def resolve(self, blueprint: Blueprint) -> list[Blueprint]:
        """``blueprint`` and every blueprint it requires that is not installed in a fitting
        version, requirements first.

        :raises BlueprintError: a cycle, or a requirement the library cannot meet.
        """
        with self.ws.reading() as conn:
            installed = {n: v for n, (v, _) in self._bases(conn).items()}
        order: list[Blueprint] = []
        visiting: list[str] = []

        def visit(bp: Blueprint) -> None:
            if bp.name in visiting:
                cycle = " -> ".join([*visiting[visiting.index(bp.name):], bp.name])
                raise BlueprintError([f"blueprint.yaml: requires: a cycle: {cycle}"])
            if any(b.name == bp.name for b in order):
                return
            visiting.append(bp.name)
            for requirement in bp.requires:
                have = installed.get(requirement.name)
                if have is not None and requirement.specifier.contains(have,
                                                                       prereleases=True):
                    continue
                visit(self._find(requirement, bp))
            visiting.pop()
            order.append(bp)

        visit(blueprint)
        return order

    def _find(self, requirement: Requirement, needed_by: Blueprint) -> Blueprint:
        try:
            found = self.library.get(requirement.name)
        except NotFound:
            raise BlueprintError([f"{needed_by.name}: requires {requirement}, which is "
                                  "neither installed nor available"]) from None
        if not requirement.specifier.contains(found.version, prereleases=True):
            raise BlueprintError([f"{needed_by.name}: requires {requirement}, but "
                                  f"{found.name} {found.version} is what is available"])
        return found

    def plan(self, blueprint: Blueprint | str | Path, *, with_data: bool = False
             ) -> BlueprintPlan:
        """What applying ``blueprint`` (and what it requires) would do; changes nothing."""
        if not isinstance(blueprint, Blueprint):
            blueprint = self.library.get(blueprint)
        chain = self.resolve(blueprint)
        with self.ws.reading() as conn:
            bases = self._bases(conn)
            current = {k: unversioned(d) for k, d in self.ws.catalog(conn).documents.items()}
            loaded = set(conn.execute(sa.select(BlueprintRecord.blueprint, BlueprintRecord.key)))
        changes: dict[Key, Document | None] = {}
        definitions: list[DefinitionChange] = []
        conflicts: list[str] = []
        new_bases: dict[str, dict[str, Document]] = {}
        owners: dict[Key, str] = {}
        versions = []
        for bp in chain:
            old_version, old_base = bases.get(bp.name, (None, {}))
            if old_version is not None and _version(old_version) > bp.parsed_version:
                raise BlueprintError([f"{bp.name} {old_version} is installed; {bp.version} "
                                      "is older (a downgrade is not applied)"])
            versions.append((bp.name, old_version, bp.version))
            new_bases[bp.name] = {f"{k}/{n}": d for (k, n), d in bp.documents.items()}
            for key in [*bp.documents, *(_key(k) for k in old_base
                                         if _key(k) not in bp.documents)]:
                if key in owners:
                    conflicts.append(f"{key[0]} {key[1]} is defined by both {owners[key]} "
                                     f"and {bp.name}")
                    continue
                owners[key] = bp.name
                change = self._merge_one(key, bp, old_base.get("/".join(key)),
                                         bp.documents.get(key), current.get(key), conflicts)
                if change is not None:
                    document, entry = change
                    changes[key] = copy.deepcopy(document)
                    definitions.append(entry)
        schema = None
        if changes:
            try:
                schema = self.ws.metadata.plan(changes=changes)
            except DefinitionError as exc:
                found = self._definition_conflicts(exc, chain, owners)
                if not any(c.kept for c in definitions) and all(
                        not p.endswith("(the workspace's own definition)") for p in found):
                    # Nothing of the workspace's is involved: the blueprint itself is wrong.
                    raise BlueprintError([p.rsplit(" (from ", 1)[0] for p in found]) from None
                conflicts += found
        data = {bp.name: _data_counts(bp, loaded) for bp in chain}
        return BlueprintPlan(versions, definitions, schema, self._new_rules(current, changes),
                             data, conflicts, with_data, changes, new_bases, chain)

    def _merge_one(self, key: Key, bp: Blueprint, base: Document | None,
                   theirs: Document | None, ours: Document | None, conflicts: list[str]
                   ) -> tuple[Document | None, DefinitionChange] | None:
        """The target document for one definition and how it changes, or None when it
        stays as it is."""
        kind, name = key
        if theirs is None:  # the blueprint drops it
            if ours is None:
                return None
            if ours != base:
                conflicts.append(f"{kind} {name}: {bp.name} {bp.version} drops it, but the "
                                 "workspace has changed it; it is kept")
                return None
            return None, DefinitionChange(kind, name, "delete", bp.name)
        if base is None:  # new to this blueprint
            if ours is None or ours == theirs:
                target = theirs
            else:
                conflicts.append(f"{kind} {name}: exists in the workspace and differs from "
                                 f"{bp.name}'s")
                return None
        elif ours is None:  # the workspace deleted it: its change is kept
            return None
        else:
            target, found = merge(base, ours, theirs)
            conflicts += [f"{kind} {name}: {c}" for c in found]
        if target == ours:
            return None
        entry = DefinitionChange(kind, name, "update" if ours is not None else "create",
                                 bp.name, list(diff_documents(ours, target))
                                 if ours is not None else [])
        if base is not None and ours is not None:
            entry.kept = [d for d in diff_documents(base, ours)
                          if d["path"] not in {x["path"] for x in diff_documents(base, theirs)}]
        return target, entry

    @staticmethod
    def _definition_conflicts(exc: DefinitionError, chain: list[Blueprint],
                              owners: dict[Key, str]) -> list[str]:
        """The merged definitions do not fit together: say where, and whose each is."""
        problems = []
        for key, messages in exc.errors.items():
            parts = key.strip("/").split("/")
            whose = owners.get((parts[0], parts[1])) if len(parts) >= 2 else None
            where = key if len(parts) < 2 else f"{parts[0]} {parts[1]} /{'/'.join(parts[2:])}"
            for bp in chain:
                if whose == bp.name:
                    where = bp.locate(key)
            origin = f"from {whose}" if whose else "the workspace's own definition"
            problems += [f"{where}: {m} ({origin})" for m in messages]
        return problems

    @staticmethod
    def _new_rules(current: Mapping[Key, Document | None],
                   changes: Mapping[Key, Document | None]) -> list[tuple[str, str, str]]:
        rules = []
        for (kind, name), document in sorted(changes.items()):
            if kind not in ("automation", "approval") or document is None:
                continue
            before = current.get((kind, name))
            active = document.get("enabled", True)
            if active and (before is None or not before.get("enabled", True)):
                if kind == "automation":
                    trigger = document["trigger"]
                    what = f"{document['entity']} on {trigger['on']}" + (
                        f" {trigger['transition']}" if trigger.get("transition") else "")
                else:
                    what = f"{document['entity']}, {len(document['steps'])} step(s)"
                rules.append((kind, name, what))
        return rules

    # --- apply ----------------------------------------------------------------------------

    def apply(self, blueprint: Blueprint | str | Path, *, with_data: bool = False,
              confirm: bool = False, actor: str | None = None) -> BlueprintPlan:
        """Apply ``blueprint`` (requirements first) in one publish, record its base layer,
        then load its sample data when asked. Answers the plan it applied.

        :raises Conflict: with the plan, when it has conflicts, when drafts are pending,
            or when a step is destructive and ``confirm`` is not given.
        """
        pending = self.ws.metadata.pending()
        if pending:
            names = ", ".join(f"{k} {n}" for k, n in pending[:5])
            raise Conflict(f"unpublished drafts are pending ({names}); publish or discard "
                           "them before applying a blueprint")
        plan = self.plan(blueprint, with_data=with_data)
        if plan.conflicts:
            raise Conflict("the blueprint conflicts with this workspace:\n"
                           + "\n".join(plan.conflicts), plan=plan)
        if plan.schema is not None and plan.schema.destructive and not confirm:
            steps = "; ".join(s.summary for s in plan.schema.steps if s.destructive)
            raise Conflict(f"applying would remove data ({steps}); it needs confirming",
                           plan=plan)
        actor = actor or f"blueprint:{plan.chain[-1].name}"
        with self.ws.transaction() as conn:
            if plan.changes:
                self.ws.metadata.publish(changes=plan.changes, confirm=confirm, actor=actor)
            for bp in plan.chain:
                self._record_install(conn, bp, plan.bases[bp.name], actor)
        if with_data:
            for bp in plan.chain:
                self.load_data(bp, actor=actor)
        return plan

    @staticmethod
    def _record_install(conn: sa.Connection, bp: Blueprint, base: dict[str, Document],
                        actor: str | None) -> None:
        conn.execute(sa.delete(InstalledBlueprint).where(InstalledBlueprint.name == bp.name))
        conn.execute(sa.insert(InstalledBlueprint).values(
            name=bp.name, version=bp.version, manifest=bp.manifest(), base=base,
            installed_at=utcnow(), installed_by=actor))

    def load_data(self, bp: Blueprint, *, actor: str | None = None) -> int:
        """Create ``bp``'s sample records not loaded before, all in one transaction, and
        answer how many. A reference names an earlier record by its ``_key``."""
        actor = actor or f"blueprint:{bp.name}"
        created = 0
        with self.ws.transaction() as conn:
            ids = {key: record_id for key, record_id in conn.execute(
                sa.select(BlueprintRecord.key, BlueprintRecord.record_id)
                .where(BlueprintRecord.blueprint == bp.name))}
            users = {u.username: u.id for u in self.ws.accounts.users()}
            catalog = self.ws.catalog(conn)
            for data in bp.data:
                for index, raw in enumerate(data.records):
                    key = str(raw.get("_key") or f"{data.relative}#{index}")
                    if key in ids:
                        continue
                    try:
                        record_id = self._load_record(catalog, data, raw, ids, users, actor)
                    except BlocksError as exc:
                        raise BlueprintError([f"{data.relative}:{data.line(index)}: "
                                              f"{exc.message}"]) from None
                    ids[key] = record_id
                    conn.execute(sa.insert(BlueprintRecord).values(
                        blueprint=bp.name, key=key, entity=data.entity, record_id=record_id))
                    created += 1
        return created

    def _load_record(self, catalog: Any, data: DataFile, raw: Mapping[str, Any],
                     ids: Mapping[str, str], users: Mapping[str, str], actor: str) -> str:
        entity = catalog.entity(data.entity)
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name.startswith("_"):
                continue
            found = entity.fields.get(name)
            if found is not None and data.lines is not None:  # CSV: text to the field's type
                value = _from_text(value, found.value_schema)
            if found is not None and found.ref and isinstance(value, str):
                if value not in ids:
                    raise BlueprintError([f"{name}: no earlier sample record has the key "
                                          f"{value!r}"])
                value = ids[value]
            values[name] = value
        owner = raw.get("_owner")
        if owner is not None:
            values["owner_id"] = users.get(owner, actor)
        record = self.ws.records.create(data.entity, values, actor=actor)
        for transition in raw.get("_transitions", []):
            record = self.ws.records.transition(data.entity, record["id"], transition,
                                                actor=actor)
        return str(record["id"])

    # --- export ---------------------------------------------------------------------------

    def export(self, folder: str | Path, *, layer: str | None = None, name: str | None = None,
               version: str | None = None, force: bool = False) -> list[Path]:
        """Write the workspace's configuration (or one layer: an installed blueprint's
        base, or ``"workspace"`` for its own changes) as a blueprint; answer the files.

        The output holds no records, ids or timestamps, so exporting the same
        configuration twice gives the same bytes.
        """
        folder = Path(folder)
        with self.ws.reading() as conn:
            bases = self._bases(conn)
            manifests = {n: m for n, m in conn.execute(sa.select(InstalledBlueprint.name,
                                                                InstalledBlueprint.manifest))}
            current = {k: unversioned(d) for k, d in self.ws.catalog(conn).documents.items()}
        if layer is None:
            documents = current
            manifest = {"name": name or _slug(folder.name), "version": version or "1.0.0",
                        "label": {"en": name or folder.name}}
        elif layer == "workspace":
            base_docs = {_key(k): d for _, base in bases.values() for k, d in base.items()}
            documents = {k: d for k, d in current.items() if base_docs.get(k) != d}
            manifest = {"name": name or _slug(folder.name), "version": version or "1.0.0",
                        "label": {"en": name or folder.name}}
            if bases:
                manifest["requires"] = [{"name": n, "version": f">={v}"}
                                        for n, (v, _) in sorted(bases.items())]
        elif layer in bases:
            documents = {_key(k): d for k, d in bases[layer][1].items()}
            manifest = dict(manifests[layer])
        else:
            raise NotFound(f"no layer named {layer!r}: use 'workspace' or one of "
                           f"{', '.join(sorted(bases)) or '(no blueprint installed)'}")
        _prepare_folder(folder, force)
        written = [_write_yaml(folder / "blueprint.yaml", manifest)]
        for (kind, doc_name), document in sorted(
                documents.items(), key=lambda item: (list(FOLDERS).index(item[0][0]), item[0])):
            if document is not None:
                written.append(_write_yaml(folder / FOLDERS[kind] / f"{doc_name}.yaml",
                                           document))
        return written


def _prepare_folder(folder: Path, force: bool) -> None:
    if folder.exists() and any(folder.iterdir()):
        if not force:
            raise Conflict(f"{folder} is not empty; export into a new folder (or use force "
                           "to replace an earlier export's definitions)")
        if not (folder / "blueprint.yaml").is_file():
            raise Conflict(f"{folder} holds no blueprint; it is not replaced")
        for sub in [*FOLDERS.values(), "translations"]:
            shutil.rmtree(folder / sub, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def _write_yaml(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100),
                    encoding="utf-8")
    return path


def _key(text: str) -> Key:
    kind, _, name = text.partition("/")
    return kind, name


def _slug(text: str) -> str:
    import re

    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return slug if slug and slug[0].isalpha() else f"workspace-{slug}".strip("-")


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def _data_counts(bp: Blueprint, loaded: set[tuple[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for data in bp.data:
        for index, raw in enumerate(data.records):
            key = str(raw.get("_key") or f"{data.relative}#{index}")
            if (bp.name, key) not in loaded:
                counts[data.entity] = counts.get(data.entity, 0) + 1
    return counts


def _from_text(value: Any, schema: Mapping[str, Any]) -> Any:
    """A CSV cell as its field's JSON type (``;`` separates the items of a list)."""
    if not isinstance(value, str):
        return value
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    try:
        if "integer" in kinds:
            return int(value)
        if "number" in kinds:
            return float(value) if any(c in value for c in ".eE") else int(value)
    except ValueError:
        return value
    if "boolean" in kinds and value in ("true", "false"):
        return value == "true"
    if "array" in kinds:
        return [item.strip() for item in value.split(";") if item.strip()]
    return value


__all__ = ["BlueprintPlan", "BlueprintService", "DefinitionChange", "Library", "MergeConflict"]
