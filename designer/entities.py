"""The entity editor: a page shell whose script (``static/entity.js``) loads the entity
through ``GET /api/v1/meta/entity/<name>`` and saves it as a draft with ``PUT`` (or
``POST`` for a new one), so what it saves passes the same checks as any API client's.
"""

from __future__ import annotations

from typing import Any

from flask import render_template

from blockscrm.platform.extension import current_workspace
from blockscrm.platform.i18n import gettext

from . import bp


def _palette() -> list[tuple[str, str, str | None]]:
    """The field types a designer picks from, in the palette's order: each with its label
    and the JSON type the engine gives its values (None for a formula)."""
    labels = {
        "text": gettext("Text"), "long_text": gettext("Long text"),
        "integer": gettext("Integer"), "decimal": gettext("Decimal"),
        "currency": gettext("Currency"), "percent": gettext("Percent"),
        "boolean": gettext("Yes/no"), "date": gettext("Date"),
        "datetime": gettext("Date and time"), "email": gettext("Email"),
        "phone": gettext("Phone"), "url": gettext("URL"),
        "select": gettext("Select"), "multi_select": gettext("Multi-select"),
        "reference": gettext("Reference"), "user": gettext("User"),
        "tags": gettext("Tags"), "formula": gettext("Formula"),
    }
    types = current_workspace().field_types
    return [(name, label, types[name].json_schema.get("type"))
            for name, label in labels.items() if name in types]


def _editor(name: str | None, published: list[str]) -> str:
    return render_template("designer/entity.html", name=name, published=published,
                           palette=_palette())


@bp.get("/entity/new")
def new_entity() -> str:
    """An empty entity to build; its first save creates the draft."""
    return _editor(None, [])


@bp.get("/entity/<name>")
def entity(name: str) -> str:
    """An entity's editor (404 when there is no such entity)."""
    ws = current_workspace()
    ws.metadata.get("entity", name)  # a 404 for no such entity
    published: dict[str, Any] = ws.catalog().documents.get(("entity", name), {})
    # Which fields are published: renaming one of those renames its column.
    return _editor(name, list(published.get("properties", {})))
