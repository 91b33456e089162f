"""Audit entries and the chain head.

Each entry's hash covers its fields and the previous entry's hash, so editing, deleting or reordering an
entry breaks the chain at that point. The head row holds the last sequence number and hash: appending locks
it, so two processes appending at once queue instead of forking the chain, and deleting the newest entries
shows as a head that no entry matches.
"""

from __future__ import annotations

import datetime

from sqlalchemy import JSON, LargeBinary
from sqlmodel import Column, Field, SQLModel

from portal.db import utcnow


class AuditEntry(SQLModel, table=True):
    seq: int = Field(primary_key=True)
    created_at: datetime.datetime = Field(default_factory=utcnow)
    actor: str = Field(max_length=100)  # "staff:<id>", "tipster", "system", "cli"
    action: str = Field(max_length=64, index=True)
    tip_id: str | None = Field(default=None, max_length=32, index=True)
    desk_id: int | None = None
    # Non-content facts only: a new status, a count, a desk code. Never text a person wrote.
    detail: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))


class AuditHead(SQLModel, table=True):
    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
