"""The application factory: where its configuration comes from, and its WSGI module."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from blockscrm.platform.app import create_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("DATABASE_URL", "REDIS_URL", "BLOCKS_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BLOCKS_INSTANCE_PATH", str(tmp_path / "instance"))
    (tmp_path / "instance").mkdir()
    return tmp_path


def test_the_platform_imports_from_the_repository_root() -> None:
    """``platform/`` has no ``__init__.py``, so the standard ``platform`` stays reachable."""
    done = subprocess.run([sys.executable, "-c", "import sqlalchemy, blockscrm.platform.app"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_configuration_layers(clean_environment: Path, monkeypatch: pytest.MonkeyPatch
                              ) -> None:
    instance = clean_environment / "instance"
    (instance / "blocks.cfg").write_text(
        f"DATABASE_URL = 'sqlite:///{clean_environment / 'file.db'}'\n"
        "REDIS_URL = 'redis://file'\nSECRET_KEY = 'from-file'\n")
    app = create_app()
    assert app.config["REDIS_URL"] == "redis://file"
    assert app.extensions["blocks"].url.endswith("file.db")
    app.extensions["blocks"].close()
    monkeypatch.setenv("REDIS_URL", "redis://env")
    monkeypatch.setenv("BLOCKS_SECRET_KEY", "from-env")
    app = create_app({"SECRET_KEY": "from-argument"})
    assert app.config["REDIS_URL"] == "redis://env"
    assert app.config["SECRET_KEY"] == "from-argument"
    assert app.extensions["blocks"].secret == b"from-argument"
    app.extensions["blocks"].close()


def test_each_app_has_its_own_workspace(clean_environment: Path) -> None:
    first = create_app({"DATABASE_URL": f"sqlite:///{clean_environment / 'a.db'}"})
    second = create_app({"DATABASE_URL": f"sqlite:///{clean_environment / 'b.db'}"})
    assert first.extensions["blocks"] is not second.extensions["blocks"]
    assert first.extensions["blocks"].url != second.extensions["blocks"].url
    for app in (first, second):
        app.extensions["blocks"].close()


def test_the_wsgi_module_builds_the_app_from_the_environment(
        clean_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{clean_environment / 'wsgi.db'}")
    monkeypatch.delitem(sys.modules, "blockscrm.platform.wsgi", raising=False)
    wsgi = importlib.import_module("blockscrm.platform.wsgi")
    assert wsgi.app.extensions["blocks"].url.endswith("wsgi.db")
    assert "api" in wsgi.app.blueprints
    wsgi.app.extensions["blocks"].close()
