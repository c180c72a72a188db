"""The score-history panel of a scored record's 360° view: its score, and each change
with the reasons that gave the points. Everything drawn from records and settings is
escaped."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from blockscrm.engine import DefinitionError, Entity, Panel, User, Workspace

from .history import changes
from .settings import scoring_for, settings_of

#: The changes the panel shows, newest first (the API serves them all).
SHOWN = 20


def panels_for(ws: Workspace, entity: Entity) -> list[Panel]:
    """The panel, on the scored entity's records only."""
    settings = settings_of(ws.catalog())
    if settings is None or settings["entity"] != entity.name:
        return []
    return [Panel("score-history", {"en": "Score history"}, render)]


def render(ws: Workspace, entity: Entity, record: Mapping[str, Any], user: User) -> str:
    try:
        scoring = scoring_for(ws, entity.name)
    except DefinitionError as exc:
        return f'<p class="field-error">{escape(exc.message)}</p>'
    if scoring is None or scoring.score_field not in record:
        return '<p class="muted">The score is hidden from you.</p>'
    rows = "".join(_row(change) for change in changes(ws, entity.name, record["id"],
                                                       limit=SHOWN))
    score = record[scoring.score_field]
    head = (f'<p class="lead-score">Score <strong data-score>'
            f'{"no score yet" if score is None else escape(str(score))}</strong></p>')
    if not rows:
        return head + '<p class="muted">No score changes yet.</p>'
    return (head + '<table class="records score-history"><thead><tr><th>When</th>'
            '<th>Score</th><th>Why</th></tr></thead><tbody>' + rows + '</tbody></table>')


def _row(change: Mapping[str, Any]) -> str:
    before = change["previous"]
    moved = (f'{escape(str(before))} → ' if before is not None else "") \
        + escape(str(change["score"]))
    why = ", ".join(f'{escape(r["label"])}{_count(r)} {r["points"]:+d}'
                    for r in change["reasons"]) or "no points"
    return (f'<tr><td><time datetime="{escape(change["at"])}">{escape(change["at"][:16])}'
            f'</time></td><td>{moved}</td><td>{why}</td></tr>')


def _count(reason: Mapping[str, Any]) -> str:
    return f' &times;{reason["count"]}' if "count" in reason else ""
