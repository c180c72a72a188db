"""Dashboards: cards of figures over the records the viewer may read.

Every card is computed as the viewer (``ws.query(entity, user=user)``), so the same
dashboard shows a rep their own pipeline and a manager the team's. A card over an entity
the viewer may not read says so instead of failing the page. Each chart segment (and a
number) links to the list behind it: the card's filter and the segment's group, written
in the rule language's text form.

The designer previews a card not yet published through :func:`compute_card`, and draws it
with the screen's own template parts (:func:`card_body`, :func:`card_assets`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, render_template, url_for
from markupsafe import Markup

from blockscrm.engine import BlocksError, Entity, NotFound, PermissionDenied, User
from blockscrm.engine.access import grant_for
from blockscrm.engine.presentation import Card
from blockscrm.engine.rules import parse_rule

from ..extension import current_workspace
from ..i18n import format_money, format_number, gettext, label
from . import bp
from .helpers import (
    current_catalog,
    display,
    field_label,
    is_person,
    navigation,
    option_label,
    record_title,
    reference_titles,
    state_label,
    the_user,
    visible_fields,
)
from .lists import rule_text

CHARTS = ("bar", "line", "pie", "funnel")


@bp.get("/dashboards/<name>")
def dashboard(name: str) -> str:
    """The dashboard's cards, each computed as the viewer; one meant for other roles is
    refused."""
    user = the_user()
    catalog = current_catalog()
    board = catalog.dashboards.get(name)
    if board is None:
        raise NotFound(gettext("There is no dashboard named %(name)s.", name=name))
    if board.roles and not user.is_admin and not board.roles & set(user.roles):
        raise PermissionDenied(gettext("This dashboard is not meant for your roles."))
    cards = [compute_card(catalog.entities[card.entity], card, user, index)
             for index, card in enumerate(board.cards)]
    return render_template("app/dashboard.html", nav=navigation(user), board=board,
                           title=label(board.label, board.name), cards=cards,
                           charts=any(c["type"] in CHARTS and c["available"] for c in cards))


def compute_card(entity: Entity, card: Card, user: User, index: int) -> dict[str, Any]:
    """What the template draws for one card (published or not: the designer's preview),
    with the id ``card-<index>``; ``available`` is False (with nothing else computed) when
    the viewer may not read what it counts."""
    shown: dict[str, Any] = {"id": f"card-{index}", "type": card.type,
                             "title": label(card.title, entity.name), "width": card.width,
                             "entity": entity.name, "available": False}
    catalog = current_catalog()
    if grant_for(user, entity, catalog).read is None:
        return shown
    try:
        if card.type.startswith("plugin:"):
            shown["html"] = _plugin_card(card, user)
        elif card.type == "number":
            shown.update(_number(entity, card, user))
        elif card.type == "table":
            shown.update(_table(entity, card, user))
        else:
            shown["chart"] = _chart(entity, card, user)
    except BlocksError:  # it counts what is hidden from this viewer
        return shown
    shown["available"] = True
    return shown


def _plugin_card(card: Card, user: User) -> Markup | None:
    """A plugin's card, drawn by its plugin as the viewer; None (said in its place) when
    drawing it failed, which is logged with the plugin's name."""
    ws = current_workspace()
    card_type = ws.card_types.get(card.type.removeprefix("plugin:"))
    if card_type is None:  # its plugin was disabled since the dashboard was published
        return None
    try:
        return Markup(card_type.render(ws, card, user))  # the plugin escapes what it shows
    except Exception:  # one plugin's card does not take the dashboard down
        current_app.logger.exception("the plugin of the card type %s failed", card.type)
        return None


def card_body(shown: dict[str, Any]) -> Markup:
    """A computed card's body (title and figure) as the dashboard screen draws it."""
    return _template_block("card_body", card=shown)


def card_assets() -> Markup:
    """The dashboard screen's card styles and chart script (``window.blocksDrawCharts(scope)``
    draws the charts of card bodies put in ``scope``), for another page that shows cards."""
    return _template_block("screen_head") + _template_block("chart_script")


def _template_block(name: str, **context: Any) -> Markup:
    """One block of ``app/dashboard.html``, rendered alone with the app's template context."""
    template = current_app.jinja_env.get_template("app/dashboard.html")
    current_app.update_template_context(context)
    return Markup("".join(template.blocks[name](template.new_context(context))))


def _query(entity: Entity, card: Card, user: User) -> Any:
    query = current_workspace().query(entity.name, user=user)
    return query if card.filter is None else query.filter(card.filter)


def list_url(entity: Entity, card: Card, *conditions: Any) -> str:
    """The list of the records behind a figure: the card's filter and ``conditions``."""
    parts = ([parse_rule(card.filter)] if card.filter is not None else []) + list(conditions)
    if not parts:
        return url_for("screens.list_view", entity=entity.name)
    tree = parts[0] if len(parts) == 1 else {"and": parts}
    return url_for("screens.list_view", entity=entity.name, filter=rule_text(tree))


def _metric_text(entity: Entity, metric: str, value: Any) -> str:
    """A figure formatted like the field it adds up (money for a currency)."""
    if value is None:
        value = 0
    name = metric.partition(":")[2]
    found = entity.fields.get(name)
    if found is not None and found.type.name == "currency" and not metric.startswith("count"):
        return format_money(value, found.schema.get("x-currency"))
    return format_number(round(value, 2) if isinstance(value, float) else value)


def _metric_label(entity: Entity, metric: str) -> str:
    if metric == "count":
        return gettext("Records")
    function, _, name = metric.partition(":")
    words = {"sum": gettext("Total %(field)s", field=field_label(entity, name)),
             "avg": gettext("Average %(field)s", field=field_label(entity, name)),
             "min": gettext("Lowest %(field)s", field=field_label(entity, name)),
             "max": gettext("Highest %(field)s", field=field_label(entity, name))}
    return words.get(function, metric)


def _number(entity: Entity, card: Card, user: User) -> dict[str, Any]:
    rows = _query(entity, card, user).aggregate((), {"value": card.metric})
    value = rows[0]["value"] if rows else 0
    return {"value": value or 0, "text": _metric_text(entity, card.metric, value),
            "caption": _metric_label(entity, card.metric), "url": list_url(entity, card)}


def _chart(entity: Entity, card: Card, user: User) -> dict[str, Any]:
    """The chart's points: label, value, colour and the list behind each. A funnel has a
    point per workflow state, in the workflow's order, the empty ones too."""
    group = "state" if card.type == "funnel" else str(card.group_by)
    rows = _query(entity, card, user).aggregate(group, {"value": card.metric})
    found = {row[group]: row["value"] for row in rows}
    if card.type == "funnel":
        states = sorted(entity.workflow.states.values(), key=lambda s: s.order)
        keys: list[Any] = [s.name for s in states]
    else:
        keys = list(found)
    field, _, bucket = group.partition(":")
    titles = reference_titles(entity, [{field: k} for k in keys], [field], user)
    points = []
    for key in keys:
        text, color = _group_label(entity, field, key, titles)
        value = found.get(key) or 0
        points.append({"label": text, "value": value, "color": color,
                       "text": _metric_text(entity, card.metric, value),
                       "url": list_url(entity, card, _segment(field, bucket, key))})
    return {"type": card.type, "name": _metric_label(entity, card.metric), "points": points}


def _group_label(entity: Entity, field: str, key: Any, titles: dict[str, str]
                 ) -> tuple[str, str | None]:
    """A group's label (an option's, a state's, a reference's title) and colour."""
    if key is None:
        return gettext("(empty)"), None
    if field == "state" and entity.workflow is not None:
        found = entity.workflow.states.get(key)
        return state_label(entity, key), getattr(found, "color", None)
    kind = entity.fields[field].type.name if field in entity.fields else "text"
    if kind == "select":
        return option_label(entity, field, key)
    if kind == "boolean":
        return (gettext("Yes") if key else gettext("No")), None
    if kind == "reference" or is_person(entity, field):
        return titles.get(key, str(key)), None
    return str(key), None


def _segment(field: str, bucket: str, key: Any) -> Any:
    """The condition a segment stands for: the group's value, or a date bucket's range
    (``close_date >= date("2026-01-01") and close_date < date("2026-02-01")``; the last
    bucket of the calendar, which has no day after it, only from its first day)."""
    if not bucket or key is None:
        return {"==": [{"var": field}, key]}
    start, end = _bucket_range(bucket, str(key))
    since = {">=": [{"var": field}, {"date": [start.isoformat()]}]}
    if end is None:
        return since
    return {"and": [since, {"<": [{"var": field}, {"date": [end.isoformat()]}]}]}


def _bucket_range(bucket: str, key: str) -> tuple[dt.date, dt.date | None]:
    """The first day of a ``day``/``month``/``year`` bucket and the first day after it
    (None for a bucket that ends the calendar, on 9999-12-31)."""
    if bucket == "day":
        start = dt.date.fromisoformat(key)
    elif bucket == "month":
        year, month = (int(part) for part in key.split("-"))
        start = dt.date(year, month, 1)
    else:
        start = dt.date(int(key), 1, 1)
    try:
        if bucket == "day":
            return start, start + dt.timedelta(days=1)
        if bucket == "month":
            return start, dt.date(start.year + start.month // 12, start.month % 12 + 1, 1)
        return start, dt.date(start.year + 1, 1, 1)
    except (ValueError, OverflowError):
        return start, None


def _table(entity: Entity, card: Card, user: User) -> dict[str, Any]:
    """The card's first records (its columns the viewer may see), linked to their pages."""
    names = visible_fields(entity, user, card.columns)
    query = _query(entity, card, user).limit(card.limit)
    if card.sort:
        query = query.sort(*card.sort)
    items = query.page().items
    titles = reference_titles(entity, items, names, user)
    rows = [{"url": url_for("screens.record_view", entity=entity.name, record_id=r["id"]),
             "title": record_title(entity, r),
             "cells": [display(entity, n, r, titles) for n in names]} for r in items]
    return {"columns": [field_label(entity, n) for n in names], "rows": rows,
            "url": list_url(entity, card)}
