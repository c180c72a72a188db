"""The view editor: what its page (``designer/view.html``, ``static/view.js``) needs beyond
the shell, the fields of every entity, which the dashboard editor offers as well.

A view is saved and published through the metadata routes like any definition; the fields
here only tell the editor what it may offer (columns, sort keys, kanban groups, sums), and
the engine checks them again at publish (``engine/presentation.py``).
"""

from __future__ import annotations

from typing import Any

from blockscrm.engine.presentation import SHOWN_SYSTEM_FIELDS
from blockscrm.engine.rules.types import NUMBER, rule_type_of
from blockscrm.platform.extension import current_workspace
from blockscrm.platform.i18n import gettext, label
from blockscrm.platform.screens.helpers import field_label

from .editors import editor_context

#: The field type a system field has, as the editors tell kinds of fields apart.
SYSTEM_TYPES = {"state": "state", "owner_id": "user", "created_by": "user",
                "updated_by": "user", "created_at": "datetime", "updated_at": "datetime"}


def entity_fields() -> dict[str, list[dict[str, Any]]]:
    """Every entity's fields (drafts included) as the editors offer them, by entity:
    ``{"name", "label", "type", "number"}`` each, its own fields first, then the system
    fields a list may show (``state`` only where a workflow applies)."""
    ws = current_workspace()
    with_workflow = {d["entity"] for d in ws.metadata.list("workflow")}
    found: dict[str, list[dict[str, Any]]] = {}
    for name, entity in ws.metadata.draft_catalog().entities.items():
        fields = [{"name": n, "label": label(f.label, n), "type": f.type.name,
                   "number": rule_type_of(f.type) is NUMBER}
                  for n, f in entity.fields.items()]
        fields += [{"name": n, "label": field_label(entity, n), "type": SYSTEM_TYPES[n],
                    "number": False}
                   for n in SHOWN_SYSTEM_FIELDS if n != "state" or name in with_workflow]
        found[name] = fields
    return found


def field_list_texts() -> dict[str, str]:
    """What the lists of fields the editors share say (``BlocksFieldLists`` in view.js)."""
    return {"fields": gettext("Fields"), "chosen": gettext("Shown, in order"),
            "add": gettext("Add"), "add_field": gettext("Add a field"),
            "choose": gettext("Choose…"), "none": gettext("None yet."),
            "up": gettext("Move up"), "down": gettext("Move down"),
            "remove": gettext("Remove"), "drag": gettext("Drag to reorder"),
            "key": gettext("Sort by"), "direction": gettext("Direction"),
            "ascending": gettext("Ascending"), "descending": gettext("Descending"),
            "add_key": gettext("Add a sort key")}


@editor_context("view")
def _view_context(name: str | None) -> dict[str, Any]:
    return {"fields": entity_fields(), "field_texts": field_list_texts()}
