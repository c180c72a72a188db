"""Reading a request: its JSON body, its query parameters and its ``If-Match``.

A malformed input is refused here, before the engine runs, with a problem naming what
was wrong: the body, or the query parameter by its name.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from blockscrm.engine import QueryError

from ..problems import abort_with_problem

TRUE = frozenset({"true", "1", "yes"})
FALSE = frozenset({"false", "0", "no"})


def json_body(*, optional: bool = False) -> Any:
    """The request body parsed as JSON, whatever its ``Content-Type`` says.

    :param optional: an empty body answers ``{}`` instead of being refused.
    """
    data = request.get_data(cache=True)
    if not data.strip():
        if optional:
            return {}
        abort_with_problem(400, "The request needs a JSON body.",
                           errors={"": ["the body is empty; send a JSON object"]})
    try:
        return current_app.json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        reason = "nests too deep" if isinstance(exc, RecursionError) else str(exc)
        abort_with_problem(400, "The request body is not valid JSON.",
                           errors={"": [f"not valid JSON: {reason}"]})


def _no_constant(name: str) -> Any:
    """JSON has no ``NaN`` or ``Infinity``, though Python's parser takes them."""
    raise ValueError(f"{name} is not a JSON value")


def json_object(*, optional: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; anything else is refused (422)."""
    body = json_body(optional=optional)
    if not isinstance(body, dict):
        abort_with_problem(422, "The request body must be a JSON object.",
                           errors={"": ["must be a JSON object"]})
    return body


def text_parameter(name: str) -> str | None:
    """A query parameter's text; a blank one counts as absent (as a form sends it)."""
    value = request.args.get(name, "")
    return value if value.strip() else None


def int_parameter(name: str, default: int) -> int:
    """A whole-number query parameter; its range is the engine's to check.

    :raises QueryError: naming the parameter when it is not a whole number.
    """
    value = text_parameter(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise QueryError({name: [f"must be a whole number, not {value!r}"]}) from None


def bool_parameter(name: str) -> bool:
    """A ``true``/``false`` query parameter (absent is false).

    :raises QueryError: naming the parameter when it is neither.
    """
    value = (text_parameter(name) or "false").lower()
    if value not in TRUE | FALSE:
        raise QueryError({name: ["must be true or false"]})
    return value in TRUE


def if_match_version() -> int | None:
    """The record version ``If-Match`` names, or None when the write is unconditional
    (no header, or ``*``)."""
    if "If-Match" not in request.headers:
        return None
    tags = request.if_match
    if tags.star_tag:
        return None
    strong = tags.as_set()
    if len(strong) != 1 or not _is_number(next(iter(strong))):
        abort_with_problem(400, "If-Match must name one record version, as its ETag does.",
                           errors={"If-Match": ['must be one quoted version, such as "3"']})
    return int(next(iter(strong)))


def if_match_revision() -> str | None:
    """The definition revision ``If-Match`` names (its ETag), or None (no header, ``*``)."""
    if "If-Match" not in request.headers or request.if_match.star_tag:
        return None
    tags = request.if_match.as_set()
    if len(tags) != 1:
        abort_with_problem(400, "If-Match must name one definition revision, as its ETag "
                                "does.", errors={"If-Match": ["must be one quoted revision"]})
    return next(iter(tags))


def _is_number(tag: str) -> bool:
    return tag.isascii() and tag.isdigit()
