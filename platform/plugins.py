"""The plugins' part of the platform: each plugin's API routes mounted under
``/api/v1/plugins/<name>/``, answering 404 in a workspace that has not enabled it.

A plugin's blueprint may name views that skip the API's authentication in
``public = {"view_name", …}`` (an incoming webhook, which its sender signs instead of
logging in); those views check the caller themselves.
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort

from blockscrm.engine import Workspace
from blockscrm.engine.plugins import implementations

from .extension import current_workspace

#: The endpoints that skip the API's authentication and CSRF check (see the module).
PUBLIC_ENDPOINTS = "blocks.public_endpoints"


def init_app(app: Flask, workspace: Workspace) -> None:
    """Mount every installed plugin's routes (a disabled one's answer 404); a plugin whose
    hook fails is left out, logged with its name, and the app starts without it."""
    app.extensions[PUBLIC_ENDPOINTS] = set()
    every = frozenset(workspace.pm.infos)
    for plugin, hook, _ in implementations(workspace.pm, "blocks_api_routes", every):
        try:
            routes = hook()
        except Exception:
            app.logger.exception("the plugin %s gave no API routes: its hook failed", plugin)
            continue
        if routes is not None:
            _mount(app, plugin, routes)


def _mount(app: Flask, plugin: str, routes: Blueprint) -> None:
    """Mount ``routes`` inside a blueprint of the platform's own, whose check that the
    plugin is enabled runs first (the plugin's blueprint itself is left as it is, so one
    made once at import serves every app of the process)."""
    name = "plugin_" + plugin.replace("-", "_")
    outer = Blueprint(name, __name__)

    @outer.before_request
    def enabled_here() -> None:
        if plugin not in current_workspace().plugins.enabled():
            abort(404, f"the plugin {plugin!r} is not enabled in this workspace")

    outer.register_blueprint(routes, name="routes")
    app.register_blueprint(outer, url_prefix=f"/api/v1/plugins/{plugin}")
    app.extensions[PUBLIC_ENDPOINTS].update(
        f"{name}.routes.{view}" for view in getattr(routes, "public", ()))
