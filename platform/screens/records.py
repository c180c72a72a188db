"""The record's 360° view."""

from __future__ import annotations

from flask import render_template

from ..extension import current_workspace
from ..i18n import label
from . import bp
from .helpers import field_label, navigation, record_title, reference_titles, the_user


@bp.get("/<entity>/<record_id>")
def record_view(entity: str, record_id: str) -> str:
    user = the_user()
    ws = current_workspace()
    ent = ws.catalog().entity(entity)
    record = ws.records.get(entity, record_id, user=user)
    names = [n for n in ent.fields if n in record]
    return render_template("app/record.html", nav=navigation(user), entity=ent,
                           entity_label=label(ent.label, ent.name), record=record,
                           title=record_title(ent, record),
                           fields=[{"name": n, "label": field_label(ent, n)} for n in names],
                           titles=reference_titles(ent, [record], names, user))
