"""The generic screens under ``/app/``, rendered from the published metadata: no entity
has a template of its own. Every page reads through the engine as the logged-in user,
so it shows only what the access rules allow.

One module per screen: :mod:`.shell` (home, search, inbox, notifications, preferences),
:mod:`.lists`, :mod:`.kanban`, :mod:`.records` (the record's 360° view), :mod:`.forms`
and :mod:`.dashboards`; :mod:`.helpers` holds what they share.
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from blockscrm.engine import BlocksError

from ..auth import current_user
from ..extension import current_workspace
from ..problems import status_of

bp = Blueprint("screens", __name__, url_prefix="/app")


@bp.before_request
def _logged_in() -> Response | None:
    if current_user() is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if request.method in ("GET", "HEAD"):
        # A page only reads: its many reads share one snapshot (see Workspace.snapshot).
        g.snapshot = current_workspace().snapshot()
        g.snapshot.__enter__()
    return None


@bp.teardown_request
def _end_snapshot(error: BaseException | None) -> None:
    snapshot = g.pop("snapshot", None)
    if snapshot is not None:
        snapshot.__exit__(type(error) if error else None, error,
                          error.__traceback__ if error else None)


@bp.errorhandler(BlocksError)
def _refused(error: BlocksError) -> tuple[str, int]:
    """An engine error on a screen: a page that says what went wrong, in the shell."""
    from .helpers import navigation

    status = status_of(error) or 500
    nav = navigation(g.user) if g.get("user") else {"entities": [], "dashboards": []}
    return render_template("app/error.html", nav=nav, error=error, status=status), status


# The screens register their routes on ``bp`` as they are imported.
from . import approvals, dashboards, forms, helpers, kanban, lists, records, shell  # noqa: E402, F401

bp.add_app_template_global(helpers.display)
