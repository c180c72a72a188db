"""The definition editors other than the entity's: one route pair for every kind
(``/designer/<kind>/new`` and ``/designer/<kind>/<name>``), each drawing the page shell
``designer/<kind>.html`` whose script loads and saves the definition through the metadata
REST routes (see ``static/editor.js``).

Each kind's module registers what its page needs beyond the shell with
:func:`editor_context` (the forms' module the fields of every entity, say).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import render_template

from blockscrm.platform.extension import current_workspace

from . import bp
from .contexts import entity_choices

#: The kinds with an editor here (the entity's has its own routes, in ``entities``).
EDITED = ("form", "view", "dashboard", "workflow", "automation", "approval")
Context = Callable[[str | None], dict[str, Any]]
_contexts: dict[str, Context] = {}


def editor_context(kind: str) -> Callable[[Context], Context]:
    """Register what the editor of ``kind`` needs for one definition (None: a new one)."""
    def register(function: Context) -> Context:
        _contexts[kind] = function
        return function
    return register


def _editor(kind: str, name: str | None) -> str:
    if name is not None:
        current_workspace().metadata.get(kind, name)  # a 404 for no such definition
    extra = _contexts[kind](name) if kind in _contexts else {}
    return render_template(f"designer/{kind}.html", kind=kind, name=name,
                           entities=entity_choices(), **extra)


_KINDS = "any(" + ", ".join(EDITED) + ")"


@bp.get(f"/<{_KINDS}:kind>/new")
def new_definition(kind: str) -> str:
    """An empty definition of ``kind`` to build; its first save creates the draft."""
    return _editor(kind, None)


@bp.get(f"/<{_KINDS}:kind>/<name>")
def definition(kind: str, name: str) -> str:
    """A definition's editor (404 when there is no such definition)."""
    return _editor(kind, name)
