"""Tips, their recipients, messages and files. Everything a resident wrote is an age envelope here.

In clear: ids, the public case number, times, municipality, category, language, status, routing and the
tipster's public key (so that desks can answer). Encrypted: the answers, the contact details, every
message, every file and its name and type (DESIGN 5).
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from portal.db import utcnow

STATUSES = ("new", "acknowledged", "in-progress", "closed")


class Tip(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)
    case_number: str = Field(max_length=16, unique=True, index=True)
    created_at: datetime.datetime = Field(default_factory=utcnow, index=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    category: str = Field(max_length=64, index=True)
    language: str = Field(max_length=16)
    status: str = Field(default="new", max_length=32, index=True)
    outcome: str | None = Field(default=None, max_length=64)
    # The reply code is never stored: only the mailbox id derived from it with the pepper (FORMAT 4).
    mailbox_id: bytes = Field(sa_column=Column(LargeBinary(32), unique=True, nullable=False))
    reply_code_kdf: str = Field(max_length=32)
    tipster_public_key: str = Field(max_length=100)
    answers: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    contact: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    taken_by_phone: bool = False
    assignee_id: int | None = Field(default=None, foreign_key="staffaccount.id", index=True)
    acknowledged_at: datetime.datetime | None = None
    closed_at: datetime.datetime | None = None
    last_tipster_activity_at: datetime.datetime = Field(default_factory=utcnow)
    # When `lykta purge` deletes the tip for good; None while it is open or held (portal.retention).
    delete_after: datetime.datetime | None = Field(default=None, index=True)
    acknowledge_by: datetime.datetime
    feedback_by: datetime.datetime


class TipRecipient(SQLModel, table=True):
    """A desk the tip was sent or handed over to; its key can open every envelope of the tip.

    The `tip_*`-style columns below are copies of the tip's own values (`INBOX_COPIES`), so that the inbox
    filters, sorts, pages and counts on this table and its per-desk indexes alone, and joins `tip` only for
    the one page it shows (issue 4: 100 000 tips). `portal.submission.services.copy_inbox_keys` writes them
    wherever a tip's value changes; a new row takes them from `inbox_copies(tip)`. They carry no foreign
    keys: the tip's own columns hold the constraints.
    """

    __table_args__ = (
        # Newest/oldest first and pages. It carries status and deadlines, so that a deadline filter or sort
        # read in this order needs no table row.
        Index(
            "ix_tiprecipient_inbox_created",
            "desk_id",
            "tip_created_at",
            "tip_id",
            "tip_status",
            "acknowledge_by",
            "feedback_by",
        ),
        # Status filters, the open-tip counts per desk, and the deadline filters, which always name a status.
        # No index starts with a deadline: nearly every tip of a desk is past its deadlines (most are closed),
        # and SQLite, which has no statistics here, would choose such an index over the few open tips.
        Index(
            "ix_tiprecipient_inbox_status",
            "desk_id",
            "tip_status",
            "tip_created_at",
            "tip_id",
            "acknowledge_by",
            "feedback_by",
        ),
        Index("ix_tiprecipient_inbox_category", "desk_id", "category", "tip_created_at", "tip_id"),
        Index("ix_tiprecipient_inbox_municipality", "desk_id", "municipality_id", "tip_created_at", "tip_id"),
        Index("ix_tiprecipient_inbox_assignee", "desk_id", "assignee_id", "tip_created_at", "tip_id"),
    )

    tip_id: str = Field(foreign_key="tip.id", primary_key=True, ondelete="CASCADE")
    desk_id: int = Field(foreign_key="desk.id", primary_key=True)
    reason: str = Field(default="routing", max_length=32)  # routing, consent, legal-basis
    added_at: datetime.datetime = Field(default_factory=utcnow)
    # Copies of the tip's values (INBOX_COPIES).
    tip_created_at: datetime.datetime
    tip_status: str = Field(max_length=32)
    category: str = Field(max_length=64)
    municipality_id: int
    assignee_id: int | None = None
    acknowledge_by: datetime.datetime
    feedback_by: datetime.datetime


# TipRecipient column -> the Tip attribute it copies.
INBOX_COPIES = {
    "tip_created_at": "created_at",
    "tip_status": "status",
    "category": "category",
    "municipality_id": "municipality_id",
    "assignee_id": "assignee_id",
    "acknowledge_by": "acknowledge_by",
    "feedback_by": "feedback_by",
}


def inbox_copies(tip: Tip) -> dict[str, Any]:
    """The values a TipRecipient row of `tip` must hold in its copied columns."""
    return {column: getattr(tip, attribute) for column, attribute in INBOX_COPIES.items()}


class Message(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)
    tip_id: str = Field(foreign_key="tip.id", index=True, ondelete="CASCADE")
    author: str = Field(max_length=16)  # tipster or desk
    desk_id: int | None = Field(default=None, foreign_key="desk.id")
    created_at: datetime.datetime = Field(default_factory=utcnow)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class StoredFile(SQLModel, table=True):
    """One uploaded file: its age header here, its nonce and STREAM chunks in FileChunk rows.

    Keeping the header apart means adding a recipient rewrites this one row, never the chunks.
    """

    id: str = Field(primary_key=True, max_length=32)
    tip_id: str = Field(foreign_key="tip.id", index=True, ondelete="CASCADE")
    message_id: str | None = Field(default=None, foreign_key="message.id", ondelete="CASCADE")
    created_at: datetime.datetime = Field(default_factory=utcnow)
    header: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    meta: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # name, type and size, sealed
    chunk_count: int


class FileChunk(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("file_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    file_id: str = Field(foreign_key="storedfile.id", index=True, ondelete="CASCADE")
    seq: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class HandOver(SQLModel, table=True):
    """A request to let another desk read a tip: on the tipster's consent, or on a recorded legal basis."""

    id: int | None = Field(default=None, primary_key=True)
    tip_id: str = Field(foreign_key="tip.id", index=True, ondelete="CASCADE")
    from_desk_id: int = Field(foreign_key="desk.id")
    to_desk_id: int = Field(foreign_key="desk.id")
    basis: str = Field(max_length=16)  # consent or legal-basis
    # The legal provision the officer relies on (e.g. "OSL 10 kap. 2 §"): a citation, not tip content.
    legal_basis: str | None = Field(default=None, max_length=300)
    status: str = Field(default="requested", max_length=16)  # requested, approved, declined, done
    requested_by: int = Field(foreign_key="staffaccount.id")
    created_at: datetime.datetime = Field(default_factory=utcnow)
    decided_at: datetime.datetime | None = None
