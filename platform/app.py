"""The Flask application factory: ``create_app()`` builds one app, and does no work at
import time, so gunicorn's workers, the CLI and tests each build their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from . import assets, auth, extension, i18n, plugins, problems, screens
from .api import bp as api_bp

#: Environment variables read into the configuration, and the key each sets.
ENVIRONMENT = {"DATABASE_URL": "DATABASE_URL", "REDIS_URL": "REDIS_URL",
               "BLOCKS_SECRET_KEY": "SECRET_KEY"}
INSTANCE_CONFIG = "blocks.cfg"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the platform's WSGI application.

    Configuration, each source over the one before: defaults, ``blocks.cfg`` in the
    instance folder (``BLOCKS_INSTANCE_PATH`` when set, else Flask's), the environment
    (``DATABASE_URL``, ``REDIS_URL``, ``BLOCKS_SECRET_KEY``), then ``config``. An unset
    ``DATABASE_URL`` means the engine's default, a SQLite file; an unset ``REDIS_URL``
    runs jobs inline.
    """
    app = Flask(__name__, instance_path=os.environ.get("BLOCKS_INSTANCE_PATH") or None,
                instance_relative_config=True)
    app.config.from_mapping(DATABASE_URL=None, REDIS_URL=None, SECRET_KEY=None)
    app.config.from_pyfile(INSTANCE_CONFIG, silent=True)
    app.config.update({key: os.environ[name] for name, key in ENVIRONMENT.items()
                       if os.environ.get(name)})
    if config:
        app.config.update(config)
    # A definition's keys keep their order (its fields' order is the form's and the
    # list's): Flask would sort them.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    workspace = extension.init_app(app)
    problems.init_app(app)
    auth.init_app(app, workspace)
    i18n.init_app(app)
    app.register_blueprint(api_bp)
    plugins.init_app(app, workspace)
    app.register_blueprint(screens.bp)
    app.register_blueprint(assets.bp)
    from blockscrm.designer import bp as designer_bp  # the designer builds on the platform

    app.register_blueprint(designer_bp)
    return app
