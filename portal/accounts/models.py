"""Staff accounts. The personal private key is stored wrapped under the passphrase (crypto keywrap)."""

from __future__ import annotations

import datetime

from sqlmodel import Field, SQLModel

from portal.db import utcnow

ROLES = ("officer", "desk-lead", "administrator", "analyst")


class StaffAccount(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=100, unique=True, index=True)
    role: str = Field(max_length=32)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    public_key: str | None = Field(default=None, max_length=100)
    wrapped_private_key: bytes | None = None
    # The TOTP secret, sealed under a key derived from the instance signing key, so that the database
    # alone does not hold a working second factor.
    totp_secret_sealed: bytes | None = None
    disabled: bool = False
    created_at: datetime.datetime = Field(default_factory=utcnow)


class DeskMembership(SQLModel, table=True):
    desk_id: int = Field(foreign_key="desk.id", primary_key=True)
    staff_id: int = Field(foreign_key="staffaccount.id", primary_key=True)
