"""Reading a blueprint folder: YAML with line numbers, every file checked against its
meta-schema, every problem reported as ``file:line: pointer: message``.

A blueprint is a folder (DESIGN.md, "Blueprints"): ``blueprint.yaml``, then one YAML
file per definition under ``entities/``, ``forms/``, ``views/``, ``workflows/``,
``automations/``, ``approvals/``, ``dashboards/`` and ``roles/``, sample records in
``data/`` (YAML or CSV, loaded in file-name order), ``translations/<language>.yaml`` and
scenarios in ``tests/``. Only ``true`` and ``false`` are booleans, so ``on:`` stays a key
and ``no`` stays Norway; dates stay text, as the records keep them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from ..definitions import SLUG, iter_meta_errors, pointer, schema_file
from ..errors import BlocksError

#: Folder of each definition kind, in the order a blueprint is written out.
FOLDERS = {"entity": "entities", "workflow": "workflows", "role": "roles", "form": "forms",
           "view": "views", "dashboard": "dashboards", "automation": "automations",
           "approval": "approvals"}
KIND_OF = {folder: kind for kind, folder in FOLDERS.items()}
_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class BlueprintError(BlocksError):
    """A blueprint that cannot be read or used; ``problems`` lists each as
    ``file:line: pointer: message``."""

    title = "Invalid blueprint"

    def __init__(self, problems: list[str], message: str | None = None) -> None:
        self.problems = problems
        super().__init__(message or "\n".join(problems))


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's booleans (``true``/``false`` only) and no
    timestamps."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _TIMESTAMP)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|false)$"), list("tf"))


@dataclass
class YamlFile:
    """One YAML file's data and its node tree, which knows the line of every value."""

    path: Path
    relative: str
    data: Any
    node: yaml.Node | None

    def line(self, parts: list[str | int] | tuple[str | int, ...]) -> int:
        """The line of the value at ``parts``, or of the nearest enclosing value."""
        node = self.node
        if node is None:
            return 1
        for part in parts:
            child = _child(node, part)
            if child is None:
                break
            node = child
        return node.start_mark.line + 1

    def problem(self, parts: list[str | int] | tuple[str | int, ...], message: str) -> str:
        return f"{self.relative}:{self.line(parts)}: {pointer(*parts)}: {message}"


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return value
    elif isinstance(node, yaml.SequenceNode) and str(part).isdigit():
        index = int(part)
        return node.value[index] if index < len(node.value) else None
    return None


def _duplicate_keys(node: yaml.Node, path: tuple[str | int, ...] = ()
                    ) -> Iterator[tuple[tuple[str | int, ...], int, str]]:
    """Keys given twice in one mapping (PyYAML would silently keep the last)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    yield path, key.start_mark.line + 1, f"the key {key.value!r} is given twice"
                seen.add(key.value)
                yield from _duplicate_keys(value, (*path, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, i))


def read_yaml(path: Path, root: Path) -> YamlFile:
    """Parse one YAML file. :raises BlueprintError: naming the file and line."""
    relative = path.relative_to(root).as_posix()
    try:
        text = path.read_text("utf-8")
        loader = Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise BlueprintError([f"{relative}:{line}: {exc.problem or exc}"]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BlueprintError([f"{relative}:1: {exc}"]) from None
    duplicates = list(_duplicate_keys(node)) if node is not None else []
    if duplicates:
        raise BlueprintError([f"{relative}:{line}: {pointer(*p)}: {message}"
                              for p, line, message in duplicates])
    return YamlFile(path, relative, data, node)


def schema_problems(file: YamlFile, schema: dict[str, Any]) -> list[str]:
    """Each way ``file``'s data breaks ``schema``, with its line."""
    validator = Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(file.data), key=lambda e: list(e.absolute_path)):
        rule = error.validator
        problems.append(file.problem(list(error.absolute_path), f"{rule}: {error.message}"))
    return problems


@dataclass(frozen=True)
class Requirement:
    name: str
    specifier: SpecifierSet

    def __str__(self) -> str:
        return f"{self.name}{self.specifier}" if str(self.specifier) else self.name


@dataclass
class DataFile:
    """Sample records of one entity: each a dict of field values plus ``_key`` (how later
    records refer to it), ``_owner`` (a username) and ``_transitions`` (taken in order)."""

    file: YamlFile | None
    relative: str
    entity: str
    records: list[dict[str, Any]]
    #: For CSV files: the row's line number, by position (values arrive as text).
    lines: list[int] | None = None

    def line(self, index: int) -> int:
        if self.lines is not None:
            return self.lines[index]
        return self.file.line(["records", index]) if self.file else 1


@dataclass
class Blueprint:
    """A blueprint as read from its folder: checked, with its translations merged."""

    path: Path
    name: str
    version: str
    label: dict[str, str]
    description: str | None
    requires: list[Requirement]
    #: ``{(kind, name): document}`` in the order the blueprint is written out.
    documents: dict[tuple[str, str], dict[str, Any]]
    #: Where each definition came from, to point a later problem at its file.
    sources: dict[tuple[str, str], YamlFile] = field(default_factory=dict)
    data: list[DataFile] = field(default_factory=list)
    scenarios: list[YamlFile] = field(default_factory=list)

    @property
    def parsed_version(self) -> Version:
        return Version(self.version)

    def manifest(self) -> dict[str, Any]:
        """``blueprint.yaml``'s content."""
        manifest: dict[str, Any] = {"name": self.name, "version": self.version,
                                    "label": self.label}
        if self.description:
            manifest["description"] = self.description
        if self.requires:
            manifest["requires"] = [r.name if not str(r.specifier) else
                                    {"name": r.name, "version": str(r.specifier)}
                                    for r in self.requires]
        return manifest

    def locate(self, key: str) -> str:
        """``file:line`` for a definition error key such as ``/entity/deal/properties/x``."""
        parts = key.strip("/").split("/")
        if len(parts) >= 2 and (parts[0], parts[1]) in self.sources:
            source = self.sources[(parts[0], parts[1])]
            inner = [p.replace("~1", "/").replace("~0", "~") for p in parts[2:]]
            return f"{source.relative}:{source.line(inner)}: {pointer(*inner)}"
        return key


def load(path: str | Path) -> Blueprint:
    """Read and check the blueprint in folder ``path``.

    :raises BlueprintError: listing every problem found, each with its file and line.
    """
    root = Path(path)
    if not (root / "blueprint.yaml").is_file():
        raise BlueprintError([f"{root}: no blueprint.yaml: not a blueprint folder"])
    manifest = read_yaml(root / "blueprint.yaml", root)
    problems = schema_problems(manifest, schema_file("blueprint"))
    if problems:
        raise BlueprintError(problems)
    requires, documents, sources = [], {}, {}
    for i, item in enumerate(manifest.data.get("requires", [])):
        name, spec = (item, "") if isinstance(item, str) else (item["name"],
                                                               item.get("version", ""))
        try:
            requires.append(Requirement(name, SpecifierSet(spec)))
        except InvalidSpecifier:
            problems.append(manifest.problem(["requires", i, "version"],
                                             f"{spec!r} is not a version specifier"))
    for folder in (p for p in sorted(root.iterdir()) if p.is_dir()):
        if folder.name not in (*KIND_OF, "data", "translations", "tests"):
            problems.append(f"{folder.name}/: not a blueprint folder; use one of "
                            f"{', '.join([*FOLDERS.values(), 'data', 'translations', 'tests'])}")
    for kind, folder in FOLDERS.items():
        for file_path in _files(root / folder, (".yaml", ".yml")):
            file = _read_checked(file_path, root, problems)
            if file is None:
                continue
            document = file.data
            if not isinstance(document, dict):
                problems.append(file.problem([], "a definition is a mapping"))
                continue
            document.setdefault("kind", kind)
            if document["kind"] != kind:
                problems.append(file.problem(["kind"], f"must be {kind!r} in {folder}/"))
                continue
            if document.get("name") != file_path.stem:
                problems.append(file.problem(["name"], f"must be {file_path.stem!r}, as the "
                                                       "file is named"))
                continue
            problems += [file.problem(_parts(p), m) for p, m in iter_meta_errors(document)]
            document.pop("version", None)  # a published version's number, not the blueprint's
            documents[(kind, document["name"])] = document
            sources[(kind, document["name"])] = file
    for file_path in _files(root / "translations", (".yaml", ".yml")):
        file = _read_checked(file_path, root, problems)
        if file is not None:
            problems += _translate(file, file_path.stem, documents)
    data = []
    for file_path in _files(root / "data", (".yaml", ".yml", ".csv")):
        try:
            data.append(_read_data(file_path, root))
        except BlueprintError as exc:
            problems += exc.problems
    scenarios = []
    for file_path in _files(root / "tests", (".yaml", ".yml")):
        file = _read_checked(file_path, root, problems)
        if file is not None:
            problems += schema_problems(file, schema_file("scenario"))
            scenarios.append(file)
    if problems:
        raise BlueprintError(problems)
    return Blueprint(root, manifest.data["name"], manifest.data["version"],
                     manifest.data["label"], manifest.data.get("description"), requires,
                     documents, sources, data, scenarios)


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in suffixes)


def _read_checked(path: Path, root: Path, problems: list[str]) -> YamlFile | None:
    try:
        return read_yaml(path, root)
    except BlueprintError as exc:
        problems += exc.problems
        return None


def _parts(json_pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in json_pointer.split("/")[1:] if p]


def _translate(file: YamlFile, language: str,
               documents: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Add ``language``'s text to the label maps the file's keys point at:
    ``entity/deal/properties/amount/x-label: 金额``."""
    if not isinstance(file.data, dict):
        return [file.problem([], "translations are a mapping of label path to text")]
    problems = []
    for key, text in file.data.items():
        parts = str(key).split("/")
        target: Any = documents.get((parts[0], parts[1])) if len(parts) > 2 else None
        for part in _parts("/" + "/".join(parts[2:])) if target is not None else []:
            if isinstance(target, dict):
                target = target.get(part)
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                target = None
        if not isinstance(target, dict) or not isinstance(text, str) or not text:
            problems.append(f"{file.relative}:{file.line([key])}: {key}: points at no label "
                            "of a definition in this blueprint, or has no text")
            continue
        target[language] = text
    return problems


def _read_data(path: Path, root: Path) -> DataFile:
    relative = path.relative_to(root).as_posix()
    if path.suffix == ".csv":
        # The entity is the file's name after an ordering prefix: 01-account.csv.
        entity = re.sub(r"^[0-9]+[-_]", "", path.stem)
        if not SLUG.match(entity):
            raise BlueprintError([f"{relative}:1: the file name must name the entity"])
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            records, lines = [], []
            for row in reader:
                lines.append(reader.line_num)
                records.append({k: v for k, v in row.items() if k and v not in (None, "")})
        return DataFile(None, relative, entity, records, lines)
    file = read_yaml(path, root)
    problems = schema_problems(file, _DATA_SCHEMA)
    if problems:
        raise BlueprintError(problems)
    return DataFile(file, relative, file.data["entity"], file.data["records"])


_DATA_SCHEMA = {
    "type": "object", "required": ["entity", "records"], "additionalProperties": False,
    "properties": {
        "entity": {"type": "string", "pattern": SLUG.pattern},
        "records": {"type": "array", "items": {
            "type": "object",
            "properties": {"_key": {"type": "string", "minLength": 1},
                           "_owner": {"type": "string", "minLength": 1},
                           "_transitions": {"type": "array", "items": {
                               "type": "string", "pattern": SLUG.pattern}}}}}}}
