"""The generic screens under ``/app/``, rendered from the published metadata: no entity
has a template of its own. Every page reads through the engine as the logged-in user,
so it shows only what the access rules allow."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from blockscrm.engine import Entity, User
from blockscrm.engine.access import grant_for

from .auth import current_user
from .extension import current_workspace

bp = Blueprint("screens", __name__, url_prefix="/app")
PAGE = 50
COLUMNS = 6


@bp.before_request
def _logged_in() -> Response | None:
    if current_user() is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


def label(labels: Any, user: User, fallback: str) -> str:
    """A metadata label in the user's language, else English, else its name."""
    labels = labels if isinstance(labels, dict) else {}
    return str(labels.get(user.language) or labels.get("en") or fallback)


def navigation(user: User) -> list[dict[str, str]]:
    """The entities the user may read, by label."""
    catalog = current_workspace().catalog()
    items = [{"name": e.name, "label": label(e.label, user, e.name)}
             for e in catalog.entities.values()
             if grant_for(user, e, catalog).read is not None]
    return sorted(items, key=lambda i: i["label"].lower())


def columns(entity: Entity, user: User) -> list[dict[str, str]]:
    """The list's columns: the first fields the user may see."""
    hidden = grant_for(user, entity, current_workspace().catalog()).hidden
    shown = [f for f in entity.fields.values() if f.name not in hidden][:COLUMNS]
    return [{"name": f.name, "label": label(f.label, user, f.name)} for f in shown]


@bp.get("/")
def home() -> str:
    user = current_user()
    assert user is not None
    return render_template("app/home.html", user=user, nav=navigation(user))


@bp.get("/<entity>")
def list_view(entity: str) -> str:
    """One page of an entity's records: quick search, sort by column, next page."""
    user = current_user()
    assert user is not None
    ws = current_workspace()
    query = ws.query(entity, user=user).limit(PAGE)
    text = request.args.get("q", "").strip()
    if text:
        query = query.search(text)
    sort = request.args.get("sort", "")
    if sort:
        query = query.sort(sort)
    page = query.page(request.args.get("cursor") or None)
    ent = ws.catalog().entity(entity)
    return render_template("app/list.html", user=user, nav=navigation(user), entity=ent,
                           title=label(ent.label, user, ent.name), columns=columns(ent, user),
                           page=page, q=text, sort=sort)
