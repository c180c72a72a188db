"""Layers: a blueprint's definitions are the base, the workspace's changes sit on top.

When a blueprint is upgraded, each of its definitions is merged three ways, like a
version-control merge: what the workspace changed since the old base is kept, what the
blueprint changed is taken, and a value both changed differently is a conflict, reported
rather than settled. Lists (a form's layout, a workflow's states) merge whole: a form
the workspace rearranged stays as the workspace left it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..definitions import pointer

Document = dict[str, Any]
_ABSENT: Any = object()


@dataclass(frozen=True)
class MergeConflict:
    """One value the workspace and the blueprint both changed, differently."""

    path: str
    base: Any
    ours: Any
    theirs: Any

    def __str__(self) -> str:
        def show(value: Any) -> str:
            return "(absent)" if value is _ABSENT else repr(value)

        return (f"{self.path or '/'}: the workspace has {show(self.ours)}, the blueprint "
                f"changes {show(self.base)} to {show(self.theirs)}")


def merge(base: Any, ours: Any, theirs: Any, path: tuple[str | int, ...] = ()
          ) -> tuple[Any, list[MergeConflict]]:
    """Three-way merge of JSON values: ``ours`` is the workspace's, ``theirs`` the new
    blueprint's, ``base`` what the blueprint installed before. A conflict keeps ours."""
    if ours == base:
        return theirs, []
    if theirs == base or ours == theirs:
        return ours, []
    if all(isinstance(v, dict) for v in (base, ours, theirs)):
        merged: dict[str, Any] = {}
        conflicts: list[MergeConflict] = []
        # The blueprint's key order first (a definition's field order), then the
        # workspace's own keys where the workspace put them last.
        for key in [*theirs, *(k for k in ours if k not in theirs)]:
            value, found = merge(base.get(key, _ABSENT), ours.get(key, _ABSENT),
                                 theirs.get(key, _ABSENT), (*path, key))
            conflicts += found
            if value is not _ABSENT:
                merged[key] = value
        return merged, conflicts
    return ours, [MergeConflict(pointer(*path) if path else "", base, ours, theirs)]


def absent(value: Any) -> bool:
    return value is _ABSENT


def unversioned(document: Document | None) -> Document | None:
    """A definition without the version publishing stamps on it."""
    return None if document is None else {k: v for k, v in document.items() if k != "version"}
