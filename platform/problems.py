"""Errors as problem details (RFC 9457, ``application/problem+json``).

The platform maps the engine's exception tree to HTTP in this one place: each class
answers one status, and its per-field messages travel under ``errors``. Werkzeug's
own HTTP errors (an unknown URL, a wrong method, a malformed request) answer the same
shape, and an unexpected exception is logged and answered as a problem too, so a
client never has to parse an HTML error page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from flask import Flask, Response, abort, current_app, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from blockscrm.engine import (
    ActionFailed,
    AuthenticationFailed,
    BlocksError,
    Conflict,
    DefinitionError,
    Locked,
    NotFound,
    PermissionDenied,
    PluginFailed,
    QueryError,
    TooManyAttempts,
    ValidationError,
)

MEDIA_TYPE = "application/problem+json"

#: One status per engine error; the most specific class a raised error is wins.
STATUSES: dict[type[BlocksError], int] = {
    ActionFailed: 422,
    QueryError: 400,
    AuthenticationFailed: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    ValidationError: 422,
    DefinitionError: 422,
    Locked: 423,
    PluginFailed: 500,
    TooManyAttempts: 429,
}


def problem(status: int, detail: str | None = None, *, title: str | None = None,
            errors: Mapping[str, list[str]] | None = None,
            headers: Mapping[str, str] | None = None, **extra: Any) -> Response:
    """A problem-details response; ``errors`` maps a field, a query parameter or a JSON
    Pointer to its messages, and ``extra`` adds members (the refused ``plan``)."""
    body: dict[str, Any] = {"type": "about:blank",
                            "title": title or HTTP_STATUS_CODES.get(status, "Error"),
                            "status": status}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = dict(errors)
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = MEDIA_TYPE
    response.headers.extend(dict(headers or {}))
    return response


def abort_with_problem(status: int, detail: str, *,
                       errors: Mapping[str, list[str]] | None = None) -> NoReturn:
    """Stop the request with a problem the platform itself finds (a body that is not
    JSON, a malformed header), where no engine error fits."""
    abort(problem(status, detail, errors=errors))


def status_of(error: BlocksError) -> int | None:
    """The status of an engine error, by its most specific mapped class."""
    return next((STATUSES[cls] for cls in type(error).__mro__ if cls in STATUSES), None)


def _engine_error(error: BlocksError) -> Response:
    status = status_of(error)
    if status is None:
        return _unexpected(error)
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(error, Conflict) and error.plan is not None:
        extra["plan"] = error.plan.to_dict()
    if isinstance(error, AuthenticationFailed):
        headers["WWW-Authenticate"] = error.scheme
    if isinstance(error, TooManyAttempts):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, PluginFailed):
        extra["plugin"] = error.plugin
    return problem(status, error.message, title=error.title,
                   errors=getattr(error, "errors", None), headers=headers, **extra)


def _http_error(error: HTTPException) -> Response:
    # Werkzeug's own headers (Allow on a 405, WWW-Authenticate on a 401) stay; its
    # Content-Type, for an HTML page, does not.
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return problem(error.code or 500, error.description, title=error.name, headers=headers)


def _unexpected(error: Exception) -> Response:
    current_app.logger.error("unexpected error", exc_info=error)
    return problem(500, "The server met an unexpected error; it has been logged.")


def init_app(app: Flask) -> None:
    """Answer every error of ``app`` as problem details."""
    app.register_error_handler(BlocksError, _engine_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
