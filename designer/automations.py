"""The automation builder: what its page (``designer/automation.html``, ``static/automation.js``)
needs beyond the editor's shell.

A rule reads like a sentence, and its parts name things the browser cannot list through
the metadata routes alone: each entity's fields with their types (which may be set, which
hold a user, which a date), the actions the engine knows with the JSON Schema of their
settings (plugins add some, so the forms follow the registry), and the people and teams a
rule may name (:func:`~blockscrm.designer.contexts.builder_context`, which the approval
and workflow editors share).
"""

from __future__ import annotations

from typing import Any

from .contexts import builder_context
from .editors import editor_context


@editor_context("automation")
def _automation(name: str | None) -> dict[str, Any]:
    return builder_context()
