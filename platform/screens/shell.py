"""The shell around every screen: home, the search across entities, notifications, and
the user's preferences (language, time zone)."""

from __future__ import annotations

import zoneinfo

from flask import flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from blockscrm.engine.errors import BlocksError, ValidationError

from ..auth import local_target
from ..extension import current_workspace
from ..i18n import gettext
from . import bp
from .helpers import current_catalog, navigation, record_title, the_user, title_field

#: Records shown per entity in the search's answer.
SEARCH_HITS = 5


@bp.get("/counts")
def counts() -> str:
    """The header's badges: what waits for the user. Pages load them after they show."""
    ws, user = current_workspace(), the_user()
    figures = {"approvals": ws.approvals.pending_count(user),
               "notifications": ws.accounts.notifications(user, limit=0)["unread"]}
    return render_template("app/_counts.html", counts=figures)


@bp.get("/")
def home() -> str:
    user = the_user()
    return render_template("app/home.html", nav=navigation(user))


@bp.get("/search")
def search() -> str:
    """Every entity the user may read, searched for ``q``: a few hits each."""
    user = the_user()
    ws = current_workspace()
    text = request.args.get("q", "").strip()[:200]
    groups = []
    nav = navigation(user)
    if text:
        catalog = current_catalog()
        for item in nav["entities"]:
            entity = catalog.entity(item["name"])
            if not entity.search_fields:
                continue
            try:
                query = ws.query(entity.name, user=user).search(text).limit(SEARCH_HITS)
                shown = title_field(entity)
                page = (query.fields(shown) if shown else query).page()
            except BlocksError:
                continue
            if page.items:
                groups.append({"entity": item, "hits": [
                    {"id": r["id"], "title": record_title(entity, r)} for r in page.items]})
    return render_template("app/search.html", nav=nav, q=text, groups=groups)


@bp.get("/notifications")
def notifications() -> str:
    user = the_user()
    items = current_workspace().accounts.notifications(user, limit=100)["items"]
    return render_template("app/notifications.html", nav=navigation(user), items=items)


@bp.post("/notifications/read")
def notifications_read() -> Response:
    current_workspace().accounts.mark_read(the_user())
    return redirect(url_for("screens.notifications"))


@bp.get("/preferences")
def preferences() -> str:
    user = the_user()
    return render_template("app/preferences.html", nav=navigation(user),
                           time_zones=sorted(zoneinfo.available_timezones()))


@bp.post("/preferences")
def save_preferences() -> Response | tuple[str, int]:
    """Language and time zone; the next page is shown in them."""
    user = the_user()
    language = request.form.get("language") or None
    time_zone = request.form.get("time_zone") or None
    try:
        updated = current_workspace().accounts.set_preferences(
            user.username, language=language, time_zone=time_zone)
    except ValidationError as exc:
        return render_template("app/preferences.html", nav=navigation(user), errors=exc.errors,
                               time_zones=sorted(zoneinfo.available_timezones())), 422
    g.user = updated
    g.pop("language", None)
    flash(gettext("Preferences saved."))
    return redirect(local_target(request.form.get("next") or "")
                    or url_for("screens.preferences"))
