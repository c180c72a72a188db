"""The app's one :class:`~blockscrm.engine.Workspace`, kept on ``app.extensions``.

The workspace holds the engine's connection pool and its metadata cache, so each app
opens it once; keeping it on the app rather than in a module global lets tests (and
one process) run several apps on several databases side by side.
"""

from __future__ import annotations

from flask import Flask, current_app

from blockscrm.engine import Workspace

KEY = "blocks"


def init_app(app: Flask) -> Workspace:
    """Open the workspace named by ``DATABASE_URL`` for ``app``.

    Cursors are signed with ``SECRET_KEY`` when one is configured, else with the key
    the workspace keeps in its database (which every process on it shares).
    ``PLUGIN_MANAGER`` replaces the installed plugins (a test's own).
    """
    workspace = Workspace(app.config.get("DATABASE_URL"), secret=app.config.get("SECRET_KEY"),
                          redis_url=app.config.get("REDIS_URL"),
                          pm=app.config.get("PLUGIN_MANAGER"))
    app.extensions[KEY] = workspace
    return workspace


def current_workspace() -> Workspace:
    """The workspace of the app handling the current request."""
    workspace: Workspace = current_app.extensions[KEY]
    return workspace
