"""The form editor: its page (``designer/form.html``, ``static/form.js``) saves the form
through the metadata REST routes like every editor; this module adds the live preview.

The preview lays out the unsaved form with the generic form screen's own code
(:func:`blockscrm.platform.screens.forms.preview`), against the entity as the drafts have
it, so what the designer sees is what the new-record screen will show once published.
"""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from blockscrm.engine import DefinitionError
from blockscrm.engine.presentation import compile_form
from blockscrm.platform.api.inputs import json_object
from blockscrm.platform.extension import current_workspace
from blockscrm.platform.screens import forms
from blockscrm.platform.screens.helpers import the_user

from . import bp


@bp.post("/form/preview")
def preview_form() -> str:
    """The form ``{"form": document, "values": [[field, text], …]}`` as the new-record
    screen will show it, as HTML; the values are what the designer typed into the preview,
    for its rules to read. 422 with the problems by JSON Pointer when it cannot be laid out.
    """
    body = json_object()
    document = body.get("form")
    if not isinstance(document, dict):
        raise DefinitionError({"/form": ["a form definition is required"]})
    ws = current_workspace()
    checked = ws.metadata.check(_previewable(document))
    entity = ws.metadata.draft_entity(checked["entity"])
    form, problems = compile_form(checked, entity)
    if problems:
        raise DefinitionError(problems)
    values = body.get("values") or []
    typed = MultiDict([(str(pair[0]), str(pair[1])) for pair in values
                       if isinstance(pair, list) and len(pair) == 2])
    return forms.preview(entity, the_user(), form, typed)


def _previewable(document: dict[str, Any]) -> dict[str, Any]:
    """The form as far as it can be shown while it is being built: sections with no field
    yet (and tabs left with no section) left out, as the screens leave them out, and a
    stand-in name and label until they are typed (they do not change the layout). What
    is malformed otherwise stays, for the meta-schema to name."""
    def filled(holder: dict[str, Any]) -> bool:
        """Leave out the holder's empty sections; whether it has any left."""
        sections = holder.get("sections")
        if isinstance(sections, list):
            holder["sections"] = [s for s in sections
                                  if not (isinstance(s, dict) and s.get("fields") == [])]
        return holder.get("sections") != []

    shown = {**document, "kind": "form", "name": document.get("name") or "preview",
             "label": document.get("label") or {"en": "Preview"}}
    if not filled(shown):
        del shown["sections"]
    if isinstance(shown.get("tabs"), list):
        shown["tabs"] = [t for t in ({**t} if isinstance(t, dict) else t
                                     for t in shown["tabs"])
                         if not isinstance(t, dict) or filled(t)]
        if not shown["tabs"]:
            del shown["tabs"]
    return shown
