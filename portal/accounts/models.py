"""Staff accounts. The personal private key is stored wrapped under the passphrase (crypto keywrap)."""

from __future__ import annotations

import datetime

from sqlalchemy import LargeBinary
from sqlmodel import Column, Field, SQLModel

from portal.db import utcnow
from portal.i18n import N_

ROLE_LABELS = {
    "officer": N_("officer"),
    "desk-lead": N_("desk lead"),
    "administrator": N_("administrator"),
    "analyst": N_("analyst"),
}
ROLES = tuple(ROLE_LABELS)


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
    # The last TOTP time step accepted: a code is good once (no replay within its 30-second window).
    totp_last_step: int = 0
    language: str = Field(default="sv", max_length=8)  # the back office speaks sv, en, fi
    disabled: bool = False
    created_at: datetime.datetime = Field(default_factory=utcnow)
    enrolled_at: datetime.datetime | None = None


class StaffInvite(SQLModel, table=True):
    """A one-time enrolment link. Only a hash of its token is kept, so the table cannot be used to enrol."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: bytes = Field(sa_column=Column(LargeBinary(32), unique=True, nullable=False))
    staff_id: int = Field(foreign_key="staffaccount.id", index=True)
    created_by: int | None = Field(default=None, foreign_key="staffaccount.id")
    created_at: datetime.datetime = Field(default_factory=utcnow)
    expires_at: datetime.datetime
    used_at: datetime.datetime | None = None


class DeskMembership(SQLModel, table=True):
    desk_id: int = Field(foreign_key="desk.id", primary_key=True)
    staff_id: int = Field(foreign_key="staffaccount.id", primary_key=True)
