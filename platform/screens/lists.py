"""An entity's list: from its view definition (columns, filter, sort, page size), with
quick search, sort by column and cursor pagination."""

from __future__ import annotations

from flask import render_template, request

from ..extension import current_workspace
from ..i18n import label
from . import bp
from .helpers import (
    default_columns,
    field_label,
    navigation,
    reference_titles,
    the_user,
    visible_fields,
)

PAGE = 50


@bp.get("/<entity>")
def list_view(entity: str) -> str:
    """One page of an entity's records: quick search, sort by column, next page."""
    user = the_user()
    ws = current_workspace()
    ent = ws.catalog().entity(entity)
    view = ws.catalog().view_for(entity)
    names = visible_fields(ent, user, view.columns) if view else default_columns(ent, user)
    query = ws.query(entity, user=user).limit(view.page_size if view else PAGE)
    if view is not None and view.filter is not None:
        query = query.filter(view.filter)
    text = request.args.get("q", "").strip()
    if text:
        query = query.search(text)
    sort = request.args.get("sort", "")
    if sort:
        query = query.sort(sort)
    elif view is not None and view.sort:
        query = query.sort(*view.sort)
    page = query.page(request.args.get("cursor") or None)
    columns = [{"name": n, "label": field_label(ent, n)} for n in names]
    return render_template("app/list.html", nav=navigation(user), entity=ent,
                           title=label(ent.label, ent.name), columns=columns, page=page,
                           titles=reference_titles(ent, page.items, names, user),
                           q=text, sort=sort)
