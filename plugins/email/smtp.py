"""One SMTP session with a workspace's email settings: connect, STARTTLS, log in.

Both the delivery hook and ``blocks email test-connection`` go through :func:`session`,
so the command line tests exactly what an automation's email will do.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

#: Unless the settings say otherwise: the submission port, and how many seconds an SMTP
#: server may keep us waiting on any one step.
DEFAULT_PORT = 587
DEFAULT_TIMEOUT = 10.0


def address(settings: Mapping[str, Any]) -> str:
    """Where the settings point, as messages name it: ``host:port``."""
    return f"{settings['host']}:{settings.get('port', DEFAULT_PORT)}"


def describe(error: Exception) -> str:
    """What went wrong, readable on its own (an SMTP reply keeps its code)."""
    if isinstance(error, smtplib.SMTPResponseException):
        reply = error.smtp_error.decode(errors="replace") if isinstance(
            error.smtp_error, bytes) else str(error.smtp_error)
        return f"{type(error).__name__}: {error.smtp_code} {reply}"
    return f"{type(error).__name__}: {error}"


@contextmanager
def session(settings: Mapping[str, Any], report: Callable[[str], Any] = lambda _: None
            ) -> Iterator[smtplib.SMTP]:
    """An SMTP connection ready to send, closed (with QUIT) afterwards; ``report`` is told
    each step that worked.

    :raises OSError: the server cannot be reached (refused, timed out, unknown host).
    :raises smtplib.SMTPException: the server refused a step (STARTTLS, login).
    """
    port, timeout = settings.get("port", DEFAULT_PORT), settings.get("timeout", DEFAULT_TIMEOUT)
    with smtplib.SMTP(settings["host"], port, timeout=float(timeout)) as smtp:
        report(f"connected to {address(settings)}")
        if settings.get("starttls", True):
            smtp.starttls(context=ssl.create_default_context())
            report("started TLS")
        if settings.get("username"):
            smtp.login(settings["username"], settings.get("password", ""))
            report(f"logged in as {settings['username']}")
        yield smtp
