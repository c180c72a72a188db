"""The engine's own tables: drafts, published versions, publishes, audit trail, archive,
the accounts (users, roles, teams, API tokens, login throttling, record shares), and
the automations' runs, timers, notifications and outbox, and what the screens keep
(saved views, notes).

Entity tables are generated (see :mod:`blockscrm.engine.entities`); these are fixed, so
they are plain declarative classes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Documents are stored as PostgreSQL ``json`` (the text as given), not ``jsonb``, which
#: would reorder a definition's properties and so its fields.
JSONType = sa.JSON()
#: Audit changes are only read back whole: ``jsonb`` is smaller.
AuditJSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    """Now, as the naive UTC datetime every timestamp column stores."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    })


class Draft(Base):
    """A definition being edited; ``document`` is None for a definition marked for deletion."""

    __tablename__ = "blocks_drafts"

    kind: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(63), primary_key=True)
    document: Mapped[Any] = mapped_column(JSONType, nullable=True)
    saved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    saved_by: Mapped[str | None] = mapped_column(sa.String(64))


class Publish(Base):
    """One publish; its id is the workspace's metadata version."""

    __tablename__ = "blocks_publishes"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    published_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_by: Mapped[str | None] = mapped_column(sa.String(64))
    plan: Mapped[Any] = mapped_column(JSONType)


class DefinitionVersion(Base):
    """Every published version of every definition; ``document`` None records a deletion."""

    __tablename__ = "blocks_definition_versions"

    kind: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(63), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    publish_id: Mapped[int] = mapped_column(sa.ForeignKey("blocks_publishes.id"))
    document: Mapped[Any] = mapped_column(JSONType, nullable=True)


class AuditEntry(Base):
    """One write to one record: who, when, and what changed: ``{field: [before, after]}``
    for an update, the record's values for a create, its last values for a delete."""

    __tablename__ = "blocks_audit"
    __table_args__ = (sa.Index("ix_blocks_audit_record", "entity", "record_id", "id"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(sa.String(63))
    record_id: Mapped[str] = mapped_column(sa.String(32))
    action: Mapped[str] = mapped_column(sa.String(20))
    #: ``{field: [before, after]}``
    changes: Mapped[Any] = mapped_column(AuditJSON)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(sa.String(64))
    version: Mapped[int | None] = mapped_column()
    #: What the entry adds to its action: a transition's name.
    detail: Mapped[str | None] = mapped_column(sa.String(63))


class ArchivedValue(Base):
    """A value (or a whole record, ``field`` None) a publish removed, kept so nothing is lost."""

    __tablename__ = "blocks_archive"
    __table_args__ = (sa.Index("ix_blocks_archive_entity", "entity", "field"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    publish_id: Mapped[int] = mapped_column()
    entity: Mapped[str] = mapped_column(sa.String(63))
    field: Mapped[str | None] = mapped_column(sa.String(63))
    record_id: Mapped[str] = mapped_column(sa.String(32))
    value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    archived_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Setting(Base):
    """A workspace-wide setting shared by every process on the database (the cursor key)."""

    __tablename__ = "blocks_settings"

    key: Mapped[str] = mapped_column(sa.String(63), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)


class PluginRow(Base):
    """A plugin as one workspace has it: enabled or not, and its settings (checked against
    the plugin's settings schema when saved)."""

    __tablename__ = "blocks_plugins"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    settings: Mapped[Any] = mapped_column(JSONType)
    changed_at: Mapped[dt.datetime] = mapped_column(sa.DateTime)
    changed_by: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)


class UserRow(Base):
    """A person who signs in. ``password_hash`` is argon2id; None means no password login."""

    __tablename__ = "blocks_users"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(254))
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    language: Mapped[str] = mapped_column(sa.String(16), default="en")
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    manager_id: Mapped[str | None] = mapped_column(sa.ForeignKey("blocks_users.id"))
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class UserRole(Base):
    """A role a user holds: ``admin`` or the name of a role definition."""

    __tablename__ = "blocks_user_roles"

    user_id: Mapped[str] = mapped_column(sa.ForeignKey("blocks_users.id", ondelete="CASCADE"),
                                         primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(63), primary_key=True)


class Team(Base):
    __tablename__ = "blocks_teams"

    name: Mapped[str] = mapped_column(sa.String(63), primary_key=True)
    label: Mapped[Any] = mapped_column(JSONType, nullable=True)


class TeamMember(Base):
    __tablename__ = "blocks_team_members"
    __table_args__ = (sa.Index("ix_blocks_team_members_user", "user_id"),)

    team: Mapped[str] = mapped_column(sa.ForeignKey("blocks_teams.name", ondelete="CASCADE"),
                                      primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("blocks_users.id", ondelete="CASCADE"),
                                         primary_key=True)


class ApiToken(Base):
    """An API token, kept as the SHA-256 of its text (the text is shown once)."""

    __tablename__ = "blocks_tokens"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("blocks_users.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class LoginThrottle(Base):
    """Failed logins in a row for one username, and until when the next try is refused:
    in the database, so every web process sees the same count."""

    __tablename__ = "blocks_login_throttle"

    username: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column()


class Share(Base):
    """One record shared with one user or one team, to read or to edit."""

    __tablename__ = "blocks_shares"
    __table_args__ = (sa.Index("ix_blocks_shares_record", "entity", "record_id"),
                      sa.Index("ix_blocks_shares_user", "entity", "user_id"),
                      sa.Index("ix_blocks_shares_team", "entity", "team"))

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(sa.String(63))
    record_id: Mapped[str] = mapped_column(sa.String(32))
    user_id: Mapped[str | None] = mapped_column(sa.String(32))
    team: Mapped[str | None] = mapped_column(sa.String(63))
    access: Mapped[str] = mapped_column(sa.String(10))  # "read" or "edit"


class Run(Base):
    """One firing of an automation on one record: why it fired, what it did, how it ended.

    ``status``: queued, running, done, failed, skipped (its condition no longer held
    when a timer fired) or cut (a cycle or the depth limit stopped it). ``chain`` holds
    the ``[automation, record]`` pairs that led here, so a job knows its lineage.
    """

    __tablename__ = "blocks_runs"
    __table_args__ = (sa.Index("ix_blocks_runs_record", "entity", "record_id", "id"),
                      sa.Index("ix_blocks_runs_status", "status", "id"))

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    automation: Mapped[str] = mapped_column(sa.String(63))
    entity: Mapped[str] = mapped_column(sa.String(63))
    record_id: Mapped[str | None] = mapped_column(sa.String(32))
    trigger: Mapped[str] = mapped_column(sa.String(20))
    mode: Mapped[str] = mapped_column(sa.String(10))
    status: Mapped[str] = mapped_column(sa.String(10))
    why: Mapped[str | None] = mapped_column(sa.Text)
    event: Mapped[Any] = mapped_column(AuditJSON, nullable=True)
    chain: Mapped[Any] = mapped_column(AuditJSON, nullable=True)
    actor: Mapped[str | None] = mapped_column(sa.String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    steps: Mapped[Any] = mapped_column(AuditJSON, nullable=True)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    duration_ms: Mapped[float | None] = mapped_column()


class Timer(Base):
    """A time-based trigger waiting in the database, so no restart loses it: a relative
    trigger per record (``record_id``), or a schedule's next firing (no record)."""

    __tablename__ = "blocks_timers"
    __table_args__ = (sa.Index("ix_blocks_timers_due", "fired", "due_at"),
                      sa.UniqueConstraint("automation", "record_id",
                                          name="uq_blocks_timers_automation_record"))

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    automation: Mapped[str] = mapped_column(sa.String(63))
    record_id: Mapped[str] = mapped_column(sa.String(32), default="")
    due_at: Mapped[dt.datetime] = mapped_column()
    fired: Mapped[bool] = mapped_column(default=False)


class SavedView(Base):
    """A list a user saved (its columns, filter and sort), for themselves or for all."""

    __tablename__ = "blocks_saved_views"
    __table_args__ = (sa.Index("ix_blocks_saved_views_entity", "entity", "owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(sa.String(63))
    name: Mapped[str] = mapped_column(sa.String(200))
    owner_id: Mapped[str] = mapped_column(sa.String(32))
    shared: Mapped[bool] = mapped_column(default=False)
    definition: Mapped[Any] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Note(Base):
    """A note a user wrote on a record; the record's timeline shows it."""

    __tablename__ = "blocks_notes"
    __table_args__ = (sa.Index("ix_blocks_notes_record", "entity", "record_id", "id"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(sa.String(63))
    record_id: Mapped[str] = mapped_column(sa.String(32))
    body: Mapped[str] = mapped_column(sa.Text)
    author_id: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """An in-app message for one user, with a read flag."""

    __tablename__ = "blocks_notifications"
    __table_args__ = (sa.Index("ix_blocks_notifications_user", "user_id", "read", "id"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(sa.String(32))
    title: Mapped[str] = mapped_column(sa.String(500))
    body: Mapped[str | None] = mapped_column(sa.Text)
    entity: Mapped[str | None] = mapped_column(sa.String(63))
    record_id: Mapped[str | None] = mapped_column(sa.String(32))
    read: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """An email: sent through the workspace's SMTP settings, or kept here when it has
    none (the demo), for the screens to show."""

    __tablename__ = "blocks_outbox"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    to: Mapped[Any] = mapped_column(JSONType)
    subject: Mapped[str] = mapped_column(sa.String(998))
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(10))  # kept or sent
    entity: Mapped[str | None] = mapped_column(sa.String(63))
    record_id: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApprovalRequest(Base):
    """One submission of one record to an approval process, and where it stands."""

    __tablename__ = "blocks_approvals"
    __table_args__ = (sa.Index("ix_blocks_approvals_record", "entity", "record_id", "status"),
                      sa.Index("ix_blocks_approvals_status", "status", "step_due_at"),
                      # One pending request per record, even for concurrent submits.
                      sa.Index("uq_blocks_approvals_pending", "entity", "record_id",
                               unique=True, sqlite_where=sa.text("status = 'pending'"),
                               postgresql_where=sa.text("status = 'pending'")))

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    approval: Mapped[str] = mapped_column(sa.String(63))
    entity: Mapped[str] = mapped_column(sa.String(63))
    record_id: Mapped[str] = mapped_column(sa.String(32))
    #: pending, approved, rejected or recalled
    status: Mapped[str] = mapped_column(sa.String(10))
    step: Mapped[int] = mapped_column(default=0)
    #: Approvals the current step needs, fixed when it starts (an escalation adds
    #: approvers, not approvals to gather).
    needed: Mapped[int] = mapped_column(default=1)
    step_started_at: Mapped[dt.datetime | None] = mapped_column()
    step_due_at: Mapped[dt.datetime | None] = mapped_column()
    submitted_by: Mapped[str | None] = mapped_column(sa.String(32))
    submitted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column()


class ApprovalAssignee(Base):
    """Who may decide a step, fixed when the step starts (an escalation adds some)."""

    __tablename__ = "blocks_approval_assignees"
    __table_args__ = (sa.Index("ix_blocks_approval_assignees_user", "user_id"),)

    request_id: Mapped[int] = mapped_column(
        sa.ForeignKey("blocks_approvals.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)


class ApprovalVote(Base):
    """One approver's decision on one step; the key lets each count once, however many
    times (or however concurrently) they click."""

    __tablename__ = "blocks_approval_votes"

    request_id: Mapped[int] = mapped_column(
        sa.ForeignKey("blocks_approvals.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    decision: Mapped[str] = mapped_column(sa.String(10))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    on_behalf_of: Mapped[str | None] = mapped_column(sa.String(32))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Delegation(Base):
    """A user's approvals also go to another user, for a period."""

    __tablename__ = "blocks_delegations"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(sa.String(32))
    delegate_id: Mapped[str] = mapped_column(sa.String(32))
    starts_at: Mapped[dt.datetime] = mapped_column()
    ends_at: Mapped[dt.datetime] = mapped_column()


audit_table: sa.Table = AuditEntry.__table__  # type: ignore[assignment]
run_table: sa.Table = Run.__table__  # type: ignore[assignment]
timer_table: sa.Table = Timer.__table__  # type: ignore[assignment]
share_table: sa.Table = Share.__table__  # type: ignore[assignment]
member_table: sa.Table = TeamMember.__table__  # type: ignore[assignment]
archive_table: sa.Table = ArchivedValue.__table__  # type: ignore[assignment]


class InstalledBlueprint(Base):
    """A blueprint applied to this workspace: its version and the definitions it installed
    (the base layer, which an upgrade merges against)."""

    __tablename__ = "blocks_blueprints"

    name: Mapped[str] = mapped_column(sa.String(63), primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(40))
    manifest: Mapped[Any] = mapped_column(JSONType)
    #: ``{"kind/name": document}`` as the blueprint gave them.
    base: Mapped[Any] = mapped_column(JSONType)
    installed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    installed_by: Mapped[str | None] = mapped_column(sa.String(64))


class BlueprintRecord(Base):
    """A sample record a blueprint loaded, by its key: loading again skips it, and later
    records' references name it by key."""

    __tablename__ = "blocks_blueprint_records"

    blueprint: Mapped[str] = mapped_column(sa.String(63), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    entity: Mapped[str] = mapped_column(sa.String(63))
    record_id: Mapped[str] = mapped_column(sa.String(32))
