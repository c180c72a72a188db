"""The engine's own tables: drafts, published versions, publishes, audit trail, archive.

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


audit_table: sa.Table = AuditEntry.__table__  # type: ignore[assignment]
archive_table: sa.Table = ArchivedValue.__table__  # type: ignore[assignment]
