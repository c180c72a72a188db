"""Notes users write on a record: the timeline of the record's screen shows them.

Whoever may read a record may note on it and read its notes; a note is not part of the
record (it does not change its version, nor fire its rules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .accounts import User
from .errors import ValidationError
from .fieldtypes import text_problem
from .store import Note, OutboxMessage, utcnow

if TYPE_CHECKING:
    from .workspace import Workspace

MAX_LENGTH = 20_000


class NoteService:
    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def add(self, entity: str, record_id: str, body: str, *, user: User | None = None
            ) -> dict[str, Any]:
        """:raises ValidationError: an empty or over-long note;
        :raises NotFound: no such record, or one ``user`` may not read."""
        text = body.strip() if isinstance(body, str) else ""
        problem = text_problem(text) or ("must not be empty" if not text else None) or (
            f"must be at most {MAX_LENGTH} characters" if len(text) > MAX_LENGTH else None)
        if problem:
            raise ValidationError([("body", problem)])
        with self.ws.transaction() as conn:
            self.ws.records.get(entity, record_id, user=user)
            note_id = conn.execute(sa.insert(Note).values(
                entity=entity, record_id=record_id, body=text,
                author_id=user.id if user else None, created_at=utcnow())
                .returning(Note.id)).scalar_one()
        return {"id": note_id, "body": text, "author_id": user.id if user else None}

    def for_record(self, entity: str, record_id: str, *, user: User | None = None
                   ) -> list[dict[str, Any]]:
        """The record's notes, newest first. :raises NotFound: as :meth:`add`."""
        with self.ws.reading() as conn:
            self.ws.records.get(entity, record_id, user=user)
            rows = conn.execute(sa.select(Note).where(Note.entity == entity,
                                                      Note.record_id == record_id)
                                .order_by(Note.id.desc())).mappings().all()
        return [{"id": r["id"], "body": r["body"], "author_id": r["author_id"],
                 "at": r["created_at"].isoformat() + "Z"} for r in rows]

    def emails_for_record(self, entity: str, record_id: str, *, user: User | None = None
                          ) -> list[dict[str, Any]]:
        """The emails rules sent (or kept in the outbox) about a record, newest first, for
        its timeline. :raises NotFound: as :meth:`add`."""
        with self.ws.reading() as conn:
            self.ws.records.get(entity, record_id, user=user)
            rows = conn.execute(sa.select(OutboxMessage).where(
                OutboxMessage.entity == entity, OutboxMessage.record_id == record_id)
                .order_by(OutboxMessage.id.desc())).mappings().all()
        return [{"id": r["id"], "to": list(r["to"] or []), "subject": r["subject"],
                 "body": r["body"], "status": r["status"],
                 "at": r["created_at"].isoformat() + "Z"} for r in rows]
