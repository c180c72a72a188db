"""Create and edit a record from its form definition."""

from __future__ import annotations

from . import bp  # noqa: F401
