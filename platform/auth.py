"""Who is calling: API tokens, the screens' session cookie, CSRF, login and logout.

Every request learns its caller once, before its view runs: a ``Bearer`` token (API
clients) or the session cookie (screens), each looked up again on every request, so a
revoked token or a deactivated user stops at once in every web process. Forms and
cookie-authenticated writes need a CSRF token (Flask-WTF's, checked here rather than
on every view so a ``Bearer`` call, which no browser sends by itself, needs none).
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.wrappers import Response

from blockscrm.engine import (
    AuthenticationFailed,
    TooManyAttempts,
    User,
    ValidationError,
    Workspace,
)

from .extension import current_workspace

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()
TOKENS = "/api/v1/auth/tokens"
#: API paths any caller may reach: asking for a token (it carries its credentials, so
#: it needs no CSRF token either), the API's description.
PUBLIC = frozenset({TOKENS, "/api/v1/openapi.json"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask, workspace: Workspace) -> None:
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked in _identify
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid for the session's life
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    if not app.secret_key:
        # Shared by every process on the database, so a session survives any worker.
        app.secret_key = workspace.secret
    csrf.init_app(app)
    app.before_request(_identify)
    app.register_blueprint(bp)


def local_target(target: str) -> str | None:
    """``target`` when it is an address on this site's screens, else None: after login,
    never send a user elsewhere (``//evil.example``, ``/\\evil.example`` and control
    characters all lead off-site in some browser)."""
    if not target.startswith(("/app/", "/designer/")) or "\\" in target \
            or not target.isprintable():
        return None
    return target


def current_user() -> User | None:
    """The caller of this request (None before login)."""
    return g.get("user")


def _identify() -> Response | None:
    """Find the caller; refuse an unauthenticated API call (401) or a cookie write
    without its CSRF token (400)."""
    ws = current_workspace()
    header = request.headers.get("Authorization", "")
    g.user = None
    if header.startswith("Bearer "):
        g.user = ws.accounts.user_for_token(header[7:].strip())
        if g.user is None:
            raise AuthenticationFailed("the token is unknown or revoked")
        return None
    user_id = session.get("user_id")
    if user_id:
        g.user = ws.accounts.active_user(user_id)
        if g.user is None:
            session.clear()
    if request.endpoint in current_app.extensions.get("blocks.public_endpoints", ()):
        return None  # a plugin's view that checks its caller itself (a signed webhook)
    if g.user is None and request.path.startswith("/api/") and request.path not in PUBLIC:
        raise AuthenticationFailed("log in, or send an API token as 'Authorization: Bearer'")
    if request.method not in SAFE_METHODS and request.path != TOKENS:
        csrf.protect()  # the login form, and every write a session cookie authenticates
    return None


# --- API tokens ------------------------------------------------------------------------------


@bp.post(TOKENS)
def issue_token() -> tuple[dict[str, Any], int]:
    """Trade a username and password for an API token (answered once)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        body = {}
    ws = current_workspace()
    user = ws.accounts.authenticate(str(body.get("username", "")),
                                    str(body.get("password", "")))
    name = body.get("name") if isinstance(body.get("name"), str) else None
    return {"token": ws.accounts.issue_token(user, name), "user": _public(user)}, 201


@bp.delete(TOKENS + "/current")
def revoke_token() -> tuple[str, int]:
    """Revoke the token this request was made with."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise AuthenticationFailed("send the token to revoke as 'Authorization: Bearer'")
    current_workspace().accounts.revoke_token(header[7:].strip())
    return "", 204


@bp.get("/api/v1/auth/me")
def me() -> dict[str, Any]:
    user = current_user()
    assert user is not None  # _identify refused the anonymous
    return _public(user)


@bp.get("/api/v1/notifications")
def notifications() -> dict[str, Any]:
    """The caller's newest notifications (``unread=true``: only those) and the unread count."""
    user = current_user()
    assert user is not None
    unread = request.args.get("unread", "").lower() in ("1", "true", "yes")
    return current_workspace().accounts.notifications(user, unread=unread)


@bp.post("/api/v1/notifications/read")
def read_notifications() -> dict[str, Any]:
    """Mark notifications read: ``{"ids": [1, 2]}``, or every one with no body."""
    user = current_user()
    assert user is not None
    body = request.get_json(silent=True)
    ids = body.get("ids") if isinstance(body, dict) else None
    if ids is not None and (not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids)):
        raise ValidationError([("ids", "must be a list of notification ids")])
    changed = current_workspace().accounts.mark_read(user, ids)
    return {"marked": changed}


def _public(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "display_name": user.display_name,
            "email": user.email, "language": user.language, "roles": sorted(user.roles),
            "teams": sorted(user.teams)}


# --- screens: login and logout ---------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The login form; a good password starts a session, a bad one says so (and a run
    of bad ones makes the next try wait)."""
    from .i18n import gettext  # i18n reads the current user from here

    error, status = None, 200
    if request.method == "POST":
        try:
            user = current_workspace().accounts.authenticate(
                request.form.get("username", ""), request.form.get("password", ""))
        except AuthenticationFailed:
            error, status = gettext("Wrong username or password."), 401
        except TooManyAttempts as exc:
            error = gettext("Too many failed attempts: try again in %(seconds)s s.",
                            seconds=exc.retry_after)
            status = 429
        else:
            session.clear()  # a new session id: no fixation
            session["user_id"] = user.id
            return redirect(local_target(request.args.get("next", ""))
                            or url_for("screens.home"))
    return render_template("login.html", error=error,
                           username=request.form.get("username", "")), status


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/")
def home() -> Any:
    """The screens' start page, or the login form."""
    return redirect(url_for("screens.home" if current_user() else "auth.login"))


__all__ = ["CSRFError", "bp", "csrf", "current_user", "init_app"]
