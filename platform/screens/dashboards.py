"""Dashboards: cards of figures over the records the viewer may read."""

from __future__ import annotations

from flask import render_template

from ..extension import current_workspace
from ..i18n import label
from . import bp
from .helpers import navigation, the_user


@bp.get("/dashboards/<name>")
def dashboard(name: str) -> str:
    user = the_user()
    board = current_workspace().catalog().dashboards.get(name)
    if board is None:
        from blockscrm.engine import NotFound

        raise NotFound(f"no dashboard named {name!r}")
    return render_template("app/dashboard.html", nav=navigation(user), board=board,
                           title=label(board.label, board.name))
