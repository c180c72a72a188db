"""The kanban board: one column per workflow state or select option."""

from __future__ import annotations

from . import bp  # noqa: F401
