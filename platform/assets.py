"""The screens' JavaScript libraries, served from ``node_modules``.

``./run`` installs them from the npm registry (``package.json``, with a lock file); the
repository holds none of their code. Only the files named here are served, under
``/assets/<name>``, with a long cache lifetime: a new version comes with a new install.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Blueprint, abort, send_from_directory
from werkzeug.wrappers import Response

bp = Blueprint("assets", __name__, url_prefix="/assets")

#: What the templates load, and where npm puts it.
FILES = {
    "htmx.js": "htmx.org/dist/htmx.min.js",
    "sortable.js": "sortablejs/Sortable.min.js",
    "echarts.js": "echarts/dist/echarts.min.js",
    # The workflow diagram: Cytoscape.js, its extensions for drawing an edge by dragging
    # and for laying a graph out, and lodash, which edgehandles expects as the global _.
    "cytoscape.js": "cytoscape/dist/cytoscape.min.js",
    "cytoscape-edgehandles.js": "cytoscape-edgehandles/cytoscape-edgehandles.js",
    "cytoscape-dagre.js": "cytoscape-dagre/dist/cytoscape-dagre.min.js",
    "lodash.js": "lodash/lodash.min.js",
}


def node_modules() -> Path:
    """``BLOCKS_NODE_MODULES``, else the ``node_modules`` beside the repository's
    ``package.json`` (this file, in the strict editable install, links into it)."""
    configured = os.environ.get("BLOCKS_NODE_MODULES")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent / "node_modules"


@bp.get("/<name>")
def asset(name: str) -> Response:
    relative = FILES.get(name)
    if relative is None:
        abort(404)
    path = node_modules() / relative
    if not path.is_file():
        abort(404, f"{name} is not installed: run ./run (it installs the npm packages)")
    return send_from_directory(path.parent, path.name, max_age=7 * 24 * 3600)
