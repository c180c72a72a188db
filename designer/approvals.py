"""The approval builder: what its page (``designer/approval.html``, ``static/approval.js``)
needs beyond the editor's shell. Its steps and its submit, approve, reject and recall
events run the same actions as automations, so it offers what the automation builder
offers (:func:`~blockscrm.designer.contexts.builder_context`)."""

from __future__ import annotations

from typing import Any

from .contexts import builder_context
from .editors import editor_context


@editor_context("approval")
def _approval(name: str | None) -> dict[str, Any]:
    return builder_context()
