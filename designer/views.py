"""The view editor: what its page (``designer/view.html``, ``static/view.js``) needs beyond
the shell, the fields of every entity (:mod:`~blockscrm.designer.contexts`, as the dashboard
editor has them too).

A view is saved and published through the metadata routes like any definition; the fields
here only tell the editor what it may offer (columns, sort keys, kanban groups, sums), and
the engine checks them again at publish (``engine/presentation.py``).
"""

from __future__ import annotations

from typing import Any

from .contexts import entity_fields, field_list_texts
from .editors import editor_context


@editor_context("view")
def _view_context(name: str | None) -> dict[str, Any]:
    return {"fields": entity_fields(), "field_texts": field_list_texts()}
