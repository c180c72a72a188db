"""Accounts: users, their roles and teams, password logins, API tokens.

A :class:`User` is what every permission check and every ``user.…`` in a rule reads; the
:class:`AccountService` (``ws.accounts``) keeps users in the workspace's database, so any
number of web processes share them. Passwords are hashed with argon2id (``argon2-cffi``,
the algorithm OWASP recommends first); API tokens are random and kept only as their
SHA-256, so a leaked database holds no usable token.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import AuthenticationFailed, Conflict, NotFound, TooManyAttempts, ValidationError
from .fieldtypes import text_problem
from .store import (
    ApiToken,
    LoginThrottle,
    Notification,
    Team,
    TeamMember,
    UserRole,
    UserRow,
    utcnow,
)

if TYPE_CHECKING:
    from .workspace import Workspace

ADMIN = "admin"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,63}$")
TEAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
#: Failed logins in a row before the next try must wait; each further failure doubles
#: the wait, up to the cap.
FREE_FAILURES = 5
LOCK_CAP = dt.timedelta(minutes=15)
_HASHER = PasswordHasher()
#: Verified against when the username is unknown, so that answer takes as long.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(8))


@dataclass(frozen=True)
class User:
    """Someone acting on the workspace: who, in which roles and teams."""

    id: str
    username: str
    roles: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    email: str | None = None
    display_name: str | None = None
    language: str = "en"
    time_zone: str = "UTC"
    manager_id: str | None = None
    active: bool = True

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    def rule_values(self) -> dict[str, Any]:
        """What ``user.…`` means in a rule."""
        return {"id": self.id, "username": self.username, "roles": sorted(self.roles),
                "teams": sorted(self.teams), "manager": self.manager_id}


class AccountService:
    """Users, teams and tokens of one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    # --- users ----------------------------------------------------------------------------

    def create_user(self, username: str, *, password: str | None = None,
                    email: str | None = None, display_name: str | None = None,
                    language: str = "en", time_zone: str = "UTC",
                    manager: str | None = None, roles: Iterable[str] = (),
                    teams: Iterable[str] = ()) -> User:
        """:raises ValidationError: a bad username, password or role;
        :raises Conflict: the username is taken."""
        errors = []
        if not isinstance(username, str) or not USERNAME.match(username):
            errors.append(("username", "must be 1 to 64 lowercase letters, digits or . _ @ -, "
                                       "starting with a letter or digit"))
        if password is not None and len(password) < 8:
            errors.append(("password", "must be at least 8 characters long"))
        roles = sorted(set(roles))
        with self.ws.transaction() as conn:
            errors += self._role_errors(conn, roles)
            if errors:
                raise ValidationError(errors)
            if conn.scalar(sa.select(UserRow.id).where(UserRow.username == username)):
                raise Conflict(f"a user named {username!r} exists")
            manager_id = self.user_id(conn, manager) if manager else None
            from .records import new_id

            user_id = new_id()
            conn.execute(sa.insert(UserRow).values(
                id=user_id, username=username, email=email, display_name=display_name,
                language=language, time_zone=time_zone, manager_id=manager_id, active=True,
                password_hash=_HASHER.hash(password) if password is not None else None,
                created_at=utcnow()))
            if roles:
                conn.execute(sa.insert(UserRole), [{"user_id": user_id, "role": r}
                                                   for r in roles])
            for team in teams:
                self._join(conn, team, user_id)
            return self._load(conn, user_id)

    def user(self, username_or_id: str) -> User:
        """:raises NotFound: no such user."""
        with self.ws.reading() as conn:
            return self._load(conn, self.user_id(conn, username_or_id))

    def users(self) -> list[User]:
        with self.ws.reading() as conn:
            ids = conn.scalars(sa.select(UserRow.id).order_by(UserRow.username)).all()
            return [self._load(conn, i) for i in ids]

    def set_password(self, username: str, password: str) -> None:
        if len(password) < 8:
            raise ValidationError([("password", "must be at least 8 characters long")])
        with self.ws.transaction() as conn:
            user_id = self.user_id(conn, username)
            conn.execute(sa.update(UserRow).where(UserRow.id == user_id)
                         .values(password_hash=_HASHER.hash(password)))

    def set_active(self, username: str, active: bool) -> None:
        """Deactivate (or reactivate) a user: an inactive user cannot log in, and their
        tokens stop working."""
        with self.ws.transaction() as conn:
            user_id = self.user_id(conn, username)
            conn.execute(sa.update(UserRow).where(UserRow.id == user_id).values(active=active))

    def set_preferences(self, username: str, *, language: str | None = None,
                        time_zone: str | None = None) -> User:
        """Change the language and time zone the screens use for a user.

        :raises ValidationError: a language tag or IANA time zone that is not one."""
        errors = []
        if language is not None and not LANGUAGE.match(language):
            errors.append(("language", "must be a language tag such as en or zh"))
        if time_zone is not None and not _is_time_zone(time_zone):
            errors.append(("time_zone", "must be an IANA time zone such as Asia/Shanghai"))
        if errors:
            raise ValidationError(errors)
        changes = {k: v for k, v in (("language", language), ("time_zone", time_zone))
                   if v is not None}
        with self.ws.transaction() as conn:
            user_id = self.user_id(conn, username)
            if changes:
                conn.execute(sa.update(UserRow).where(UserRow.id == user_id).values(**changes))
            return self._load(conn, user_id)

    def grant(self, username: str, *roles: str) -> User:
        with self.ws.transaction() as conn:
            user_id = self.user_id(conn, username)
            errors = self._role_errors(conn, roles)
            if errors:
                raise ValidationError(errors)
            held = set(conn.scalars(sa.select(UserRole.role).where(UserRole.user_id == user_id)))
            new = sorted(set(roles) - held)
            if new:
                conn.execute(sa.insert(UserRole), [{"user_id": user_id, "role": r} for r in new])
            return self._load(conn, user_id)

    def revoke(self, username: str, *roles: str) -> User:
        with self.ws.transaction() as conn:
            user_id = self.user_id(conn, username)
            conn.execute(sa.delete(UserRole).where(UserRole.user_id == user_id,
                                                   UserRole.role.in_(roles)))
            return self._load(conn, user_id)

    # --- teams ----------------------------------------------------------------------------

    def names(self, ids: Iterable[str]) -> dict[str, str]:
        """The name to show for each of these user ids (display name, else username);
        an id that is no user's (an automation's) is left out."""
        ids = list(ids)
        with self.ws.reading() as conn:
            return {i: display or username for i, username, display in conn.execute(
                sa.select(UserRow.id, UserRow.username, UserRow.display_name)
                .where(UserRow.id.in_(ids)))} if ids else {}

    def teams(self) -> list[str]:
        """Every team's name."""
        with self.ws.reading() as conn:
            return list(conn.scalars(sa.select(Team.name).order_by(Team.name)))

    def create_team(self, name: str, *, label: dict[str, str] | None = None,
                    members: Iterable[str] = ()) -> None:
        if not isinstance(name, str) or not TEAM_NAME.match(name):
            raise ValidationError([("name", "must be a slug: a lowercase letter, then "
                                            "letters, digits or _")])
        with self.ws.transaction() as conn:
            if conn.scalar(sa.select(Team.name).where(Team.name == name)):
                raise Conflict(f"a team named {name!r} exists")
            conn.execute(sa.insert(Team).values(name=name, label=label or {"en": name}))
            for member in members:
                self._join(conn, name, self.user_id(conn, member))

    def add_to_team(self, team: str, username: str) -> None:
        with self.ws.transaction() as conn:
            self._join(conn, team, self.user_id(conn, username))

    def remove_from_team(self, team: str, username: str) -> None:
        with self.ws.transaction() as conn:
            user_id = self.user_id(conn, username)
            conn.execute(sa.delete(TeamMember).where(TeamMember.team == team,
                                                     TeamMember.user_id == user_id))

    # --- logging in -----------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> User:
        """The user whose password this is.

        :raises AuthenticationFailed: unknown user, wrong password or inactive user (one
            message for all three);
        :raises TooManyAttempts: after :data:`FREE_FAILURES` failures in a row, each
            further try waits twice as long as the last (1 s, 2 s, 4 s … 15 min).
        """
        if not isinstance(username, str) or not USERNAME.match(username) \
                or not isinstance(password, str) or text_problem(password):
            # No user has such a name (nor such a password): nothing to look up or count.
            raise AuthenticationFailed("wrong username or password")
        now = utcnow()
        with self.ws.reading() as conn:
            throttle = conn.execute(sa.select(LoginThrottle).where(
                LoginThrottle.username == username)).mappings().first()
            row = conn.execute(sa.select(UserRow).where(UserRow.username == username)
                               ).mappings().first()
        if throttle and throttle["locked_until"] and throttle["locked_until"] > now:
            wait = (throttle["locked_until"] - now).total_seconds()
            raise TooManyAttempts(max(1, int(wait + 0.999)))
        stored = row["password_hash"] if row else None
        try:
            _HASHER.verify(stored or _DUMMY_HASH, password if isinstance(password, str) else "")
            good = stored is not None and bool(row and row["active"])
        except (VerificationError, InvalidHashError):
            good = False
        if not good or row is None or stored is None:
            self._failed(username, now)
            raise AuthenticationFailed("wrong username or password")
        with self.ws.transaction() as conn:
            if throttle:
                conn.execute(sa.delete(LoginThrottle).where(LoginThrottle.username == username))
            if _HASHER.check_needs_rehash(stored):
                conn.execute(sa.update(UserRow).where(UserRow.id == row["id"])
                             .values(password_hash=_HASHER.hash(password)))
            return self._load(conn, row["id"])

    def _failed(self, username: str, now: dt.datetime) -> None:
        """Count one more failure, atomically: parallel failures each count (the UPDATE
        takes the row's lock; a first failure inserts, and a race to insert retries)."""
        with self.ws.transaction() as conn:
            failures = conn.scalar(sa.update(LoginThrottle)
                                   .where(LoginThrottle.username == username)
                                   .values(failures=LoginThrottle.failures + 1)
                                   .returning(LoginThrottle.failures))
            if failures is None:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(LoginThrottle).values(username=username,
                                                                     failures=1))
                    failures = 1
                except sa.exc.IntegrityError:  # another process inserted it meanwhile
                    failures = conn.scalar(sa.update(LoginThrottle)
                                           .where(LoginThrottle.username == username)
                                           .values(failures=LoginThrottle.failures + 1)
                                           .returning(LoginThrottle.failures))
            over = failures - FREE_FAILURES
            if over >= 0:
                conn.execute(sa.update(LoginThrottle).where(
                    LoginThrottle.username == username).values(
                    locked_until=now + min(dt.timedelta(seconds=2 ** over), LOCK_CAP)))

    # --- API tokens -----------------------------------------------------------------------

    def issue_token(self, user: User, name: str | None = None) -> str:
        """A new API token for ``user``; its text is answered once and kept only hashed."""
        token = "blk_" + secrets.token_urlsafe(32)
        with self.ws.transaction() as conn:
            conn.execute(sa.insert(ApiToken).values(digest=_digest(token), user_id=user.id,
                                                    name=name, created_at=utcnow()))
        return token

    def user_for_token(self, token: str) -> User | None:
        """The active user a live token belongs to, else None."""
        if not isinstance(token, str) or not token.startswith("blk_") or len(token) > 100:
            return None
        with self.ws.reading() as conn:
            row = conn.execute(_BY_TOKEN, {"digest": _digest(token)}).mappings().first()
            return None if row is None else _user(row)

    def active_user(self, user_id: str) -> User | None:
        """The active user with this id, else None: one query, for a login session that
        names its user on every request."""
        if not isinstance(user_id, str) or len(user_id) > 32:
            return None
        with self.ws.reading() as conn:
            row = conn.execute(_BY_ID, {"user_id": user_id}).mappings().first()
            return None if row is None else _user(row)

    def revoke_token(self, token: str) -> None:
        """Stop a token working, from the next request on, in every process."""
        with self.ws.transaction() as conn:
            conn.execute(sa.update(ApiToken).where(ApiToken.digest == _digest(token),
                                                   ApiToken.revoked_at.is_(None))
                         .values(revoked_at=utcnow()))

    # --- notifications ---------------------------------------------------------------------

    def notifications(self, user: User, *, unread: bool = False, limit: int = 50
                      ) -> dict[str, Any]:
        """The user's newest notifications, and how many are unread."""
        mine = Notification.user_id == user.id
        query = sa.select(Notification).where(mine)
        if unread:
            query = query.where(Notification.read.is_(False))
        with self.ws.reading() as conn:
            rows = conn.execute(query.order_by(Notification.id.desc()).limit(limit)).mappings()
            items = [{"id": r["id"], "title": r["title"], "body": r["body"],
                      "entity": r["entity"], "record_id": r["record_id"], "read": r["read"],
                      "created_at": r["created_at"].isoformat() + "Z"} for r in rows]
            count = conn.scalar(sa.select(sa.func.count()).select_from(Notification)
                                .where(mine, Notification.read.is_(False)))
        return {"items": items, "unread": int(count or 0)}

    def mark_read(self, user: User, ids: Iterable[int] | None = None) -> int:
        """Mark the user's notifications read (these ``ids``, else all); how many changed."""
        where = [Notification.user_id == user.id, Notification.read.is_(False)]
        if ids is not None:
            # An id no 64-bit column holds names no notification (and no driver binds it).
            where.append(Notification.id.in_([i for i in ids if 0 < i < 2**63]))
        with self.ws.transaction() as conn:
            return int(conn.execute(sa.update(Notification).where(*where)
                                    .values(read=True)).rowcount)

    # --- internals ------------------------------------------------------------------------

    def user_id(self, conn: sa.Connection, username_or_id: str) -> str:
        """The id of a user named by username or id, in ``conn``'s transaction.

        :raises NotFound: no such user."""
        found = conn.scalar(sa.select(UserRow.id).where(sa.or_(
            UserRow.username == username_or_id, UserRow.id == username_or_id)))
        if found is None:
            raise NotFound(f"no user {username_or_id!r}")
        return str(found)

    def _load(self, conn: sa.Connection, user_id: str) -> User:
        return _user(conn.execute(sa.select(UserRow, *_memberships())
                                  .where(UserRow.id == user_id)).mappings().one())

    def _role_errors(self, conn: sa.Connection, roles: Iterable[str]) -> list[tuple[str, str]]:
        known = {name for kind, name in self.ws.catalog(conn).documents if kind == "role"}
        return [("roles", f"no role {r!r}: use admin or a published role definition")
                for r in roles if r != ADMIN and r not in known]

    def _join(self, conn: sa.Connection, team: str, user_id: str) -> None:
        if conn.scalar(sa.select(Team.name).where(Team.name == team)) is None:
            raise NotFound(f"no team {team!r}")
        if conn.scalar(sa.select(TeamMember.team).where(TeamMember.team == team,
                                                        TeamMember.user_id == user_id)) is None:
            conn.execute(sa.insert(TeamMember).values(team=team, user_id=user_id))


def _memberships() -> tuple[sa.ScalarSelect[Any], sa.ScalarSelect[Any]]:
    """A user's roles and teams as two comma-joined columns (names are slugs), so a user
    loads in one query: every API request pays for it."""
    roles = sa.select(sa.func.aggregate_strings(UserRole.role, ",")) \
        .where(UserRole.user_id == UserRow.id).scalar_subquery().label("role_names")
    teams = sa.select(sa.func.aggregate_strings(TeamMember.team, ",")) \
        .where(TeamMember.user_id == UserRow.id).scalar_subquery().label("team_names")
    return roles, teams


#: Built once: every API request runs it, and building a SELECT costs more than running
#: this one on SQLite.
_BY_TOKEN = (sa.select(UserRow, *_memberships())
             .join(ApiToken, UserRow.id == ApiToken.user_id)
             .where(ApiToken.digest == sa.bindparam("digest"), ApiToken.revoked_at.is_(None),
                    UserRow.active.is_(True)))


_BY_ID = (sa.select(UserRow, *_memberships())
          .where(UserRow.id == sa.bindparam("user_id"), UserRow.active.is_(True)))


def _is_time_zone(name: str) -> bool:
    return isinstance(name, str) and len(name) <= 64 and name in _time_zones()


@functools.cache
def _time_zones() -> frozenset[str]:
    """The IANA zone names this machine knows (a name is never opened as a file path)."""
    return frozenset(zoneinfo.available_timezones())


def _user(row: Any) -> User:
    return User(id=row["id"], username=row["username"],
                roles=frozenset(filter(None, (row["role_names"] or "").split(","))),
                teams=frozenset(filter(None, (row["team_names"] or "").split(","))),
                email=row["email"], display_name=row["display_name"],
                language=row["language"], time_zone=row["time_zone"],
                manager_id=row["manager_id"], active=row["active"])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
