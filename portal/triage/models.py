"""What the back office adds to a tip: who read it, internal notes, labels, canned replies."""

from __future__ import annotations

import datetime

from sqlalchemy import LargeBinary, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from portal.db import utcnow


class TipRead(SQLModel, table=True):
    """Officer `staff_id` has opened the tip since its last change (unread is per officer)."""

    tip_id: str = Field(foreign_key="tip.id", primary_key=True, ondelete="CASCADE")
    staff_id: int = Field(foreign_key="staffaccount.id", primary_key=True)
    read_at: datetime.datetime = Field(default_factory=utcnow)


class TipNote(SQLModel, table=True):
    """An internal note, sealed to the tip's desks only: the tipster key cannot open it."""

    id: str = Field(primary_key=True, max_length=32)
    tip_id: str = Field(foreign_key="tip.id", index=True, ondelete="CASCADE")
    staff_id: int = Field(foreign_key="staffaccount.id")
    created_at: datetime.datetime = Field(default_factory=utcnow)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TipLabel(SQLModel, table=True):
    tip_id: str = Field(foreign_key="tip.id", primary_key=True, ondelete="CASCADE")
    label: str = Field(primary_key=True, max_length=64)


class CannedReply(SQLModel, table=True):
    """A desk's prepared answer in one language, so an officer can answer in the tipster's language."""

    __table_args__ = (UniqueConstraint("desk_id", "key", "language"),)

    id: int | None = Field(default=None, primary_key=True)
    desk_id: int = Field(foreign_key="desk.id", index=True)
    key: str = Field(max_length=64)
    language: str = Field(max_length=16)
    title: str = Field(max_length=200)
    body: str = Field(max_length=5000)
