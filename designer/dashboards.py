"""The dashboard editor: what its page (``designer/dashboard.html``, ``static/dashboard.js``)
needs beyond the shell, and the preview of a card with real data.

A preview is computed exactly as the dashboard screen computes a published card
(``platform/screens/dashboards.py``), as the designer (an admin) over the published
records, and drawn with the screen's own template parts; the card need not be saved. The
view editor previews its first rows the same way, as a table card.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from werkzeug.wrappers import Response

from blockscrm.engine import DefinitionError
from blockscrm.engine.definitions import iter_meta_errors
from blockscrm.engine.presentation import compile_dashboard
from blockscrm.platform.extension import current_workspace
from blockscrm.platform.i18n import gettext
from blockscrm.platform.problems import abort_with_problem
from blockscrm.platform.screens.dashboards import card_assets, card_body, compute_card
from blockscrm.platform.screens.helpers import current_catalog, the_user

from . import bp
from .contexts import entity_fields, field_list_texts
from .editors import editor_context


@editor_context("dashboard")
def _dashboard_context(name: str | None) -> dict[str, Any]:
    roles = [{"name": d["name"], "label": d.get("label", {})}
             for d in current_workspace().metadata.list("role")]
    return {"fields": entity_fields(), "field_texts": field_list_texts(), "roles": roles,
            "card_assets": card_assets()}


@bp.post("/dashboard/preview")
def preview_card() -> Response:
    """One card, as ``{"card": <card>, "index": <its place>}`` says it: its body as the
    dashboard will show it (``{"html": …}``). A card the meta-schema or the published
    entities refuse answers 422 with its problems keyed by ``/cards/<index>/…``, the
    pointers a save of the dashboard would answer."""
    body: Any = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("index"), int):
        abort_with_problem(400, "send {\"card\": <a dashboard card>, \"index\": <integer>}")
    index, card = body["index"], body.get("card")
    document = {"kind": "dashboard", "name": "preview", "label": {"en": "Preview"},
                "cards": [card]}
    problems = list(iter_meta_errors(document))
    catalog = current_catalog()
    if not problems and card["entity"] not in catalog.entities:
        problems = [("/cards/0/entity", gettext("Publish this entity to preview the card."))]
    if not problems:
        board, problems = compile_dashboard(document, catalog.entities,
                                            current_workspace().card_types)
    if problems:
        raise DefinitionError([(where.replace("/cards/0", f"/cards/{index}", 1), message)
                               for where, message in problems])
    compiled = board.cards[0]
    shown = compute_card(catalog.entities[compiled.entity], compiled, the_user(), index)
    return jsonify({"html": str(card_body(shown))})
