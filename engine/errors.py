"""The engine's one exception tree; the platform maps each class to one HTTP status.

    BlocksError
    ├── ValidationError      a record or a decision is wrong; per-field messages (422)
    ├── DefinitionError      a definition is wrong; messages keyed by JSON Pointer (422)
    ├── QueryError           a malformed filter, sort, cursor, field list or limit (400)
    ├── NotFound             no such entity, record or definition (404)
    ├── Conflict             stale version, existing name, publish needing confirmation (409)
    ├── PermissionDenied     the actor may not do this (403)
    ├── ActionFailed         a rule's action could not do its work (422 when saving)
    ├── Locked               a record waits on an approval: it cannot change now (423)
    ├── PluginFailed         a plugin's hook raised: the write it was part of rolled back (500)
    ├── AuthenticationFailed wrong username, password or token (401)
    └── TooManyAttempts      too many failed logins: wait ``retry_after`` seconds (429)

Errors carry structured data rather than only a message, the way jsonschema's
``ValidationError`` carries ``path`` and ``schema_path``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Messages = dict[str, list[str]]


def _merge(pairs: Iterable[tuple[str, str]]) -> Messages:
    merged: Messages = {}
    for key, message in pairs:
        bucket = merged.setdefault(key, [])
        if message not in bucket:
            bucket.append(message)
    return merged


class BlocksError(Exception):
    """Root of every error the engine raises on purpose."""

    title = "Error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title


class _ErrorsByKey(BlocksError):
    """An error that lists every problem at once, keyed by a field name or a JSON Pointer."""

    def __init__(
        self,
        errors: Mapping[str, Iterable[str]] | Iterable[tuple[str, str]],
        message: str | None = None,
    ) -> None:
        if isinstance(errors, Mapping):
            pairs = [(key, msg) for key, msgs in errors.items() for msg in msgs]
        else:
            pairs = list(errors)
        self.errors: Messages = _merge(pairs)
        summary = "; ".join(f"{key}: {', '.join(msgs)}" for key, msgs in self.errors.items())
        super().__init__(message or f"{self.title}: {summary}")


class ValidationError(_ErrorsByKey):
    """A record, a set of values or a decision breaks a rule; ``errors`` maps field to messages."""

    title = "Validation failed"


class DefinitionError(_ErrorsByKey):
    """A definition breaks its meta-schema or a semantic rule; ``errors`` maps JSON Pointer
    to messages (``/properties/x/x-field``)."""

    title = "Invalid definition"


class QueryError(_ErrorsByKey):
    """A query's filter, sort, cursor, field list or limit is malformed; ``errors`` maps the
    query parameter to messages."""

    title = "Bad query"


class NotFound(BlocksError):
    """No such entity, record or definition."""

    title = "Not found"


class Conflict(BlocksError):
    """The write collides with the current state (stale version, existing name, a publish
    that needs confirmation); ``plan`` carries the refused plan where there is one."""

    title = "Conflict"

    def __init__(self, message: str | None = None, *, plan: Any = None) -> None:
        super().__init__(message)
        self.plan = plan


class PermissionDenied(BlocksError):
    """The actor may not do this."""

    title = "Forbidden"


class AuthenticationFailed(BlocksError):
    """Wrong username, password or token (the message never says which); ``scheme`` is
    how the caller should authenticate (``Bearer``, or a signed webhook's scheme)."""

    title = "Authentication failed"

    def __init__(self, message: str | None = None, *, scheme: str = "Bearer") -> None:
        super().__init__(message)
        self.scheme = scheme


class TooManyAttempts(BlocksError):
    """Too many failed logins for this username: refused, whatever the password, for
    ``retry_after`` more seconds."""

    title = "Too many attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


class ActionFailed(BlocksError):
    """An automation's action could not do its work (a webhook's target is down, SMTP
    refused, a value it sets is invalid): a rule run with the save rolls the save back
    with this, naming the rule and the action; a job is retried."""

    title = "Automation failed"


class Locked(BlocksError):
    """The record is locked while an approval of it is pending."""

    title = "Locked"


class PluginFailed(BlocksError):
    """A plugin's hook raised an error of its own: whatever write it was part of is rolled
    back, and the error names the plugin (``plugin``) and the hook (``hook``)."""

    title = "Plugin failed"

    def __init__(self, plugin: str, hook: str, error: Exception) -> None:
        super().__init__(f"the plugin {plugin!r} failed in {hook}: "
                         f"{type(error).__name__}: {error}")
        self.plugin = plugin
        self.hook = hook
