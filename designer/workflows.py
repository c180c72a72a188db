"""The workflow editor: a diagram of states and the transitions between them, drawn by
``static/workflow.js`` on the page ``designer/workflow.html``.

The page reads and writes the workflow through the metadata routes like every editor. From
here it gets what the engine knows and the meta-schema does not say: what each state
category means (which ones close a record, so that a state there needs no way out), and,
as the automation builder has them, the entities' fields and the actions with their
settings (a transition runs the same actions as a rule, edited in the same list).
"""

from __future__ import annotations

from typing import Any

from blockscrm.engine.workflows import CATEGORIES
from blockscrm.platform.i18n import pgettext

from .contexts import builder_context
from .editors import editor_context

#: The category a record is in until it is closed (won, lost or closed).
OPEN = "open"


@editor_context("workflow")
def workflow_context(name: str | None) -> dict[str, Any]:
    """The state categories (their labels, and which close a record) and what the actions'
    list needs (``context``)."""
    labels = {"open": pgettext("workflow state category", "Open"),
              "won": pgettext("workflow state category", "Won"),
              "lost": pgettext("workflow state category", "Lost"),
              "closed": pgettext("workflow state category", "Closed")}
    return {
        **builder_context(),
        "categories": [[c, labels.get(c, c)] for c in CATEGORIES],
        "final_categories": [c for c in CATEGORIES if c != OPEN],
    }
