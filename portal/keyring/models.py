"""A grant is the desk's private key, sealed (age) to one holder's public key."""

from __future__ import annotations

import datetime

from sqlmodel import Field, SQLModel

from portal.db import utcnow


class DeskKeyGrant(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    desk_id: int = Field(foreign_key="desk.id", index=True)
    # Exactly one of the two holders: a staff member's personal key, or the organisation's recovery key.
    staff_id: int | None = Field(default=None, foreign_key="staffaccount.id", index=True)
    recovery_organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    envelope: bytes
    created_at: datetime.datetime = Field(default_factory=utcnow)
