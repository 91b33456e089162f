"""Retention rules per desk and outcome, and legal holds on tips.

A desk's default for closed tips is `Desk.retention_days` (edited with the desk's other settings); these
rows only hold what differs per outcome. Each tip carries its computed deletion date in clear
(`Tip.delete_after`), so the purge and the inbox read it without evaluating rules.
"""

from __future__ import annotations

import datetime

from sqlmodel import Field, SQLModel

from portal.db import utcnow


class RetentionRule(SQLModel, table=True):
    """Tips of `desk_id` closed with `outcome` are kept `days` days after closing (instead of the default)."""

    desk_id: int = Field(foreign_key="desk.id", primary_key=True, ondelete="CASCADE")
    outcome: str = Field(primary_key=True, max_length=64)
    days: int


class LegalHold(SQLModel, table=True):
    """The tip must not be deleted: a court, a prosecutor or an inquiry needs it kept.

    `reference` is a citation or a case reference (e.g. "AM-123456-26", "RB 27 kap."), never tip content: it
    is shown to every desk of the tip and written to the audit log.
    """

    tip_id: str = Field(foreign_key="tip.id", primary_key=True, max_length=32, ondelete="CASCADE")
    reference: str = Field(max_length=200)
    set_by: int = Field(foreign_key="staffaccount.id")
    set_at: datetime.datetime = Field(default_factory=utcnow)
