"""Lists users save: columns, filter and sort of one entity, for themselves or shared
with everyone who may read the entity.

A saved view is checked when it is saved (its filter must compile for the user who
saves it) and again whenever it is opened, through the query, as the user opening it:
sharing a view never shares records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .accounts import User
from .errors import NotFound, PermissionDenied, QueryError, ValidationError
from .fieldtypes import text_problem
from .store import SavedView, utcnow

if TYPE_CHECKING:
    from .workspace import Workspace


class SavedViewService:
    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def save(self, user: User, entity: str, name: str, *, columns: list[str] | None = None,
             filter: Any = None, sort: list[str] | None = None,  # noqa: A002
             shared: bool = False
             ) -> dict[str, Any]:
        """:raises ValidationError: no name, or a filter, sort or column the user's query
        refuses (naming the part)."""
        name = name.strip() if isinstance(name, str) else ""
        problem = text_problem(name) or ("must not be empty" if not name else None) or (
            "must be at most 200 characters" if len(name) > 200 else None)
        if problem:
            raise ValidationError([("name", problem)])
        for key, names in (("columns", columns), ("sort", sort)):
            if names is not None and not (isinstance(names, list | tuple)
                                          and all(isinstance(n, str) for n in names)):
                raise ValidationError([(key, "must be a list of field names")])
        query = self.ws.query(entity, user=user)
        workflow = query.entity.workflow is not None
        try:
            if filter is not None:
                query = query.filter(filter)
            if sort:
                query = query.sort(*sort)
            if columns:
                # A list shows the workflow state as a column, though no query selects it
                # by name (every record carries it).
                query.fields(*[c for c in columns if c != "state" or not workflow])
        except QueryError as exc:
            raise ValidationError([("columns" if key == "fields" else key, message)
                                   for key, messages in exc.errors.items()
                                   for message in messages]) from None
        definition = {"columns": columns or None, "filter": filter, "sort": sort or None}
        with self.ws.transaction() as conn:
            view_id = conn.execute(sa.insert(SavedView).values(
                entity=entity, name=name, owner_id=user.id, shared=bool(shared),
                definition=definition, created_at=utcnow()).returning(SavedView.id)
            ).scalar_one()
        return {"id": view_id, "entity": entity, "name": name, "shared": bool(shared),
                "owner_id": user.id, **definition}

    def list(self, user: User, entity: str) -> list[dict[str, Any]]:
        """The user's own views of ``entity`` and those shared, by name."""
        with self.ws.reading() as conn:
            rows = conn.execute(sa.select(SavedView).where(
                SavedView.entity == entity,
                sa.or_(SavedView.owner_id == user.id, SavedView.shared.is_(True)))
                .order_by(SavedView.name, SavedView.id)).mappings().all()
        return [_view(row) for row in rows]

    def get(self, user: User, view_id: int) -> dict[str, Any]:
        """:raises NotFound: no such view, or another user's personal one."""
        if not isinstance(view_id, int) or not 0 < view_id < 2**31:
            raise NotFound(f"no saved view {view_id}")
        with self.ws.reading() as conn:
            row = conn.execute(sa.select(SavedView).where(SavedView.id == view_id)
                               ).mappings().first()
        if row is None or not (row["shared"] or row["owner_id"] == user.id):
            raise NotFound(f"no saved view {view_id}")
        return _view(row)

    def delete(self, user: User, view_id: int) -> dict[str, Any]:
        """Its owner or an admin may delete a view; answers the view it deleted.

        :raises PermissionDenied, NotFound:"""
        view = self.get(user, view_id)
        if view["owner_id"] != user.id and not user.is_admin:
            raise PermissionDenied("only its owner or an admin may delete this view")
        with self.ws.transaction() as conn:
            conn.execute(sa.delete(SavedView).where(SavedView.id == view_id))
        return view


def _view(row: Any) -> dict[str, Any]:
    definition = row["definition"] or {}
    return {"id": row["id"], "entity": row["entity"], "name": row["name"],
            "shared": row["shared"], "owner_id": row["owner_id"],
            "columns": definition.get("columns"), "filter": definition.get("filter"),
            "sort": definition.get("sort")}
