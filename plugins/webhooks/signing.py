"""Webhook signatures, both ways: ``sha256=`` and the HMAC-SHA256 of the signed bytes in
hex, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def signature(secret: str, signed: bytes) -> str:
    """The ``X-Blocks-Signature`` of ``signed`` with ``secret``."""
    return PREFIX + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def matches(secret: str, signed: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``signed``, compared in constant time (a
    timing difference would let a caller guess it byte by byte)."""
    return hmac.compare_digest(signature(secret, signed).encode(), header.encode())


def incoming_signed(timestamp: str, delivery: str, body: bytes) -> bytes:
    """What an incoming call's signature covers: its timestamp and delivery id with its
    body, so that a captured call cannot be replayed under a new timestamp or id."""
    return f"{timestamp}.{delivery}.".encode() + body
