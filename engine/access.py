"""Who may do what with an entity's records: role grants, record scopes, sharing.

A role definition grants, per entity (or ``*`` for the rest): ``create`` and ``export``
(yes or no); ``read``, ``update`` and ``delete`` over no records, the user's own, their
teams', or all; and fields ``hidden`` or ``read_only``. A user holding several roles gets
the widest grant of each; a field stays hidden only while every role that reads the
entity hides it. A record shared with a user (or one of their teams) can be read, and
edited when shared to edit, beyond their own or their team's records, in an entity a
role lets them read (sharing widens a scope; it grants no entity). ``admin`` and the
system (no user) may do everything.

The record service and queries call these checks on every path, so a hidden record never
shows through a list, a count, a group-by or an export, whatever screen or API asks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .accounts import User
from .errors import NotFound, PermissionDenied, ValidationError
from .rules import dependencies
from .store import member_table, share_table

if TYPE_CHECKING:
    from .entities import Entity
    from .workspace import Catalog, Workspace

SCOPES = ("own", "team", "all")
_WIDTH = {None: 0, "own": 1, "team": 2, "all": 3}
ACCESS = ("read", "edit")


def _scope(value: Any) -> str | None:
    if value is True:
        return "all"
    return value if value in SCOPES else None


@dataclass(frozen=True)
class Grant:
    """What one user may do with one entity."""

    entity: str
    create: bool = False
    read: str | None = None
    update: str | None = None
    delete: str | None = None
    export: bool = False
    hidden: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()

    def require(self, action: str) -> None:
        """:raises PermissionDenied: unless the grant allows ``action`` on some record."""
        allowed = getattr(self, action)
        if not allowed:
            raise PermissionDenied(f"you may not {action} {self.entity} records")


def grant_for(user: User | None, entity: Entity, catalog: Catalog) -> Grant:
    """The widest grant of the user's roles on ``entity``."""
    name = entity.name
    if user is None or user.is_admin:
        return Grant(name, True, "all", "all", "all", True)
    if not user.active:
        return Grant(name)
    entries = []
    for role in sorted(user.roles):
        document = catalog.documents.get(("role", role))
        permissions = (document or {}).get("permissions", {})
        entry = permissions.get(name, permissions.get("*"))
        if entry is not None:
            entries.append(entry)
    if not entries:
        return Grant(name)

    def widest(action: str) -> str | None:
        return max((_scope(e.get(action)) for e in entries), key=_WIDTH.__getitem__)

    def flagged(action: str, flags: tuple[str, ...]) -> frozenset[str]:
        """Fields every role granting ``action`` flags: a role that shows a field wins."""
        sets = [frozenset(f for f, flag in e.get("fields", {}).items() if flag in flags)
                for e in entries if _scope(e.get(action))]
        return frozenset.intersection(*sets) if sets else frozenset()

    hidden = _with_formulas(entity, flagged("read", ("hidden",)))
    read_only = flagged("update", ("hidden", "read_only")) | hidden
    return Grant(name, any(e.get("create") is True for e in entries), widest("read"),
                 widest("update"), widest("delete"),
                 any(e.get("export") is True for e in entries), hidden, read_only)


def _with_formulas(entity: Entity, hidden: frozenset[str]) -> frozenset[str]:
    """A formula that reads a hidden field would show it: it is hidden too."""
    found = set(hidden)
    changed = bool(found)
    while changed:
        changed = False
        for name, tree in entity.formulas.items():
            if name not in found and {d.split(".")[0] for d in dependencies(tree)} & found:
                found.add(name)
                changed = True
    return frozenset(found)


class Access:
    """The checks, bound to one workspace; the record service and queries use them."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def visible(self, user: User | None, scope: str | None, entity: Entity,
                table: sa.Table | None = None) -> sa.ColumnElement[bool] | None:
        """The SQL condition a row must meet to be within ``scope`` for the user (None:
        every row), shared rows included."""
        if user is None or scope == "all" or user.is_admin:
            return None
        table = entity.table if table is None else table
        shared = table.c.id.in_(sa.select(share_table.c.record_id).where(
            share_table.c.entity == entity.name, _with(user)))
        if scope is None:
            return shared
        mine = table.c.owner_id == user.id
        if scope == "team" and user.teams:
            mine = sa.or_(mine, table.c.owner_id.in_(
                sa.select(member_table.c.user_id).where(member_table.c.team.in_(user.teams))))
        return sa.or_(mine, shared)

    def check_row(self, conn: sa.Connection, user: User | None, grant: Grant, action: str,
                  entity: Entity, row: Mapping[str, Any]) -> None:
        """:raises NotFound: the user may not read the record (its existence stays hidden);
        :raises PermissionDenied: they may read it but not ``action`` it."""
        if user is None or user.is_admin:
            return
        if not self._within(conn, user, grant.read, entity, row, "read"):
            raise NotFound(f"no {entity.name} record with id {row['id']!r}")
        if action != "read" and not self._within(conn, user, getattr(grant, action), entity,
                                                 row, "edit"):
            raise PermissionDenied(f"you may not {action} this {entity.name} record")

    def _within(self, conn: sa.Connection, user: User, scope: str | None, entity: Entity,
                row: Mapping[str, Any], access: str) -> bool:
        owner = row.get("owner_id")
        if scope == "all" or (scope in ("own", "team") and owner == user.id):
            return True
        if scope == "team" and owner is not None and user.teams and conn.scalar(
                sa.select(member_table.c.user_id).where(member_table.c.user_id == owner,
                                                        member_table.c.team.in_(user.teams))):
            return True
        levels = ("read", "edit") if access == "read" else ("edit",)
        return conn.scalar(sa.select(sa.literal(1)).where(
            share_table.c.entity == entity.name, share_table.c.record_id == row["id"],
            share_table.c.access.in_(levels), _with(user))) is not None

    def refuse_fields(self, grant: Grant, names: Iterable[str], action: str) -> None:
        """:raises PermissionDenied: naming the read-only (or hidden) fields among ``names``."""
        refused = sorted(set(names) & grant.read_only)
        if refused:
            raise PermissionDenied(f"you may not {action} {', '.join(refused)} on "
                                   f"{grant.entity} records")

    # --- sharing --------------------------------------------------------------------------

    def share(self, entity: str, record_id: str, *, with_user: str | None = None,
              with_team: str | None = None, access: str = "read",
              by: User | None = None) -> None:
        """Share one record with a user or a team, to read or to edit. Whoever may edit the
        record may share it."""
        if access not in ACCESS:
            raise ValidationError([("access", "must be read or edit")])
        with self.ws.transaction() as conn:
            who, user_id = self._sharing(conn, entity, record_id, with_user, with_team, by)
            conn.execute(sa.delete(share_table).where(
                share_table.c.entity == entity, share_table.c.record_id == record_id, who))
            conn.execute(sa.insert(share_table).values(entity=entity, record_id=record_id,
                                                       user_id=user_id, team=with_team,
                                                       access=access))

    def unshare(self, entity: str, record_id: str, *, with_user: str | None = None,
                with_team: str | None = None, by: User | None = None) -> None:
        with self.ws.transaction() as conn:
            who, _ = self._sharing(conn, entity, record_id, with_user, with_team, by)
            conn.execute(sa.delete(share_table).where(
                share_table.c.entity == entity, share_table.c.record_id == record_id, who))

    def _sharing(self, conn: sa.Connection, entity: str, record_id: str,
                 with_user: str | None, with_team: str | None, by: User | None
                 ) -> tuple[sa.ColumnElement[bool], str | None]:
        """Check that ``by`` may edit the record and that the one user or team exists;
        answer which share rows are theirs, and the user's id.

        :raises ValidationError: not exactly one of user and team;
        :raises NotFound: no such record (or one ``by`` may not see), user or team;
        :raises PermissionDenied: ``by`` may read the record but not edit it.
        """
        if (with_user is None) == (with_team is None):
            raise ValidationError([("with", "name one user or one team")])
        from .store import Team

        catalog = self.ws.catalog(conn)
        ent = catalog.entity(entity)
        row = self.ws.records._load(conn, ent, record_id)
        self.check_row(conn, by, grant_for(by, ent, catalog), "update", ent, row)
        if with_user is not None:
            user_id = self.ws.accounts.user_id(conn, with_user)
            return share_table.c.user_id == user_id, user_id
        if conn.scalar(sa.select(Team.name).where(Team.name == with_team)) is None:
            raise NotFound(f"no team {with_team!r}")
        return share_table.c.team == with_team, None


def role_errors(name: str, document: Mapping[str, Any], entities: Mapping[str, Entity]
                ) -> Iterator[tuple[str, str]]:
    """A role's grants that name an entity or a field that is not published with it,
    keyed by JSON Pointer into the set of definitions."""
    for entity, entry in document.get("permissions", {}).items():
        at = f"/role/{name}/permissions/{entity}"
        if entity == "*":
            continue
        if entity not in entities:
            yield at, f"no entity named {entity!r}"
            continue
        for field_name in entry.get("fields", {}):
            if field_name not in entities[entity].fields:
                yield f"{at}/fields/{field_name}", f"{entity} has no field {field_name!r}"


def _with(user: User) -> sa.ColumnElement[bool]:
    """Shares made with the user or one of their teams."""
    mine = share_table.c.user_id == user.id
    return sa.or_(mine, share_table.c.team.in_(user.teams)) if user.teams else mine
