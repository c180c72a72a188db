"""The project's shape: the namespace, the folder mapping, the engine's public surface."""

from __future__ import annotations

import ast
import configparser
import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import blockscrm.engine as engine
from blockscrm.engine.definitions import KINDS, meta_schema, schema_file

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module", ["blockscrm.engine", "blockscrm.platform.app"])
def test_the_packages_import_from_the_repository_root(module: str) -> None:
    """A root-level ``platform/__init__.py`` would shadow the standard library's
    ``platform`` here, and SQLAlchemy would fail to import."""
    assert not (ROOT / "platform" / "__init__.py").exists()
    done = subprocess.run([sys.executable, "-c", f"import sqlalchemy, {module}"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_setup_cfg_lists_every_package_on_disk() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    mapping = dict(line.split(" = ") for line in
                   config["options"]["package_dir"].strip().splitlines())
    listed = set(config["options"]["packages"].split())
    on_disk = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("*.py"):
            relative = init.parent.relative_to(ROOT / folder)
            if "__pycache__" not in relative.parts:
                on_disk.add(".".join([package, *relative.parts]))
    assert listed == on_disk


def test_the_engine_imports_nothing_from_flask() -> None:
    for path in (ROOT / "engine").rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n.split(".")[0] in {"flask", "werkzeug"}], path
    done = subprocess.run(
        [sys.executable, "-c", "import sys, blockscrm.engine; "
                               "print(sorted(m for m in sys.modules if m.startswith('flask')))"],
        capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_public_surface_is_sorted_and_complete() -> None:
    assert engine.__all__ == sorted(engine.__all__)
    for name in engine.__all__:
        assert getattr(engine, name) is not None


def test_every_meta_schema_is_a_valid_json_schema() -> None:
    for kind in KINDS:
        schema = meta_schema(kind)
        Draft202012Validator.check_schema(schema)
        assert schema["properties"]["kind"] == {"const": kind}
    for name in ("blueprint", "scenario"):  # a blueprint's own files
        Draft202012Validator.check_schema(schema_file(name))
    shipped = {p.stem for p in (ROOT / "engine" / "metaschemas").glob("*.json")}
    assert shipped == {*KINDS, "blueprint", "scenario"}
    json.loads((ROOT / "engine" / "metaschemas" / "entity.json").read_text("utf-8"))
