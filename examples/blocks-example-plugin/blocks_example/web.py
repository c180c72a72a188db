"""The plugin's web parts: an API route answering a summary of an entity's ratings, and
a panel on the record view showing a record's stars and the greeting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from markupsafe import Markup

from blockscrm.engine import Entity, User, Workspace
from blockscrm.platform.auth import current_user
from blockscrm.platform.extension import current_workspace

from .rating import RATING, stars
from .stamp import DEFAULT_GREETING, PLUGIN


def rating_fields(entity: Entity) -> list[str]:
    return [name for name, f in entity.fields.items() if f.type.name == RATING.name]


def routes() -> Blueprint:
    """A new blueprint on each call: each app mounts (and changes) its own, under
    ``/api/v1/plugins/example/``."""
    bp = Blueprint(PLUGIN, __name__)

    @bp.get("/summary/<entity>")
    def summary(entity: str) -> dict[str, Any]:
        """How many records of ``entity`` the caller may read, and their average rating
        per rating field (those hidden from the caller left out)."""
        query = current_workspace().query(entity, user=current_user())
        averages = {}
        for name in rating_fields(query.entity):
            if name in query.grant.hidden:
                continue
            # Grouped by rating, so the database does the counting even though a plugin's
            # field type is no number to the query's own metrics.
            groups = [row for row in query.aggregate(group_by=name) if row[name] is not None]
            rated = sum(row["count"] for row in groups)
            total = sum(row[name] * row["count"] for row in groups)
            averages[name] = round(total / rated, 2) if rated else None
        return {"entity": entity, "count": query.count(exact=True).value,
                "average": averages}

    return bp


def render_panel(ws: Workspace, entity: Entity, record: Mapping[str, Any], user: User) -> str:
    """The record's stars and the workspace's greeting. What comes from records,
    definitions and settings is escaped: ``Markup.format`` escapes its arguments."""
    greeting = ws.plugins.settings(PLUGIN).get("greeting", DEFAULT_GREETING)
    rows = Markup("").join(
        Markup('<dt>{}</dt><dd class="stars">{}</dd>').format(
            label.get(user.language) or label.get("en") or name,
            "—" if record.get(name) is None else stars(record[name]))
        for name, label in ((n, entity.fields[n].label) for n in rating_fields(entity)))
    return Markup("<p>{}, {}!</p><dl>{}</dl>").format(
        greeting, user.display_name or user.username, rows)
