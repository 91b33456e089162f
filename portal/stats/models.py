"""The fact table behind the statistics: coarse, without content, and independent of the tip's lifetime."""

from __future__ import annotations

import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

import portal.db  # noqa: F401 (the naming convention is in place before this table exists)


class TipFact(SQLModel, table=True):
    """One tip as received by one desk: days, codes and ids only, never anything the tipster wrote.

    `tip_id` points back at the tip while it exists and turns NULL when retention deletes the tip
    (ON DELETE SET NULL), so the counts stay. Times are kept as UTC days, not instants: enough for weeks and
    quarters, too coarse to line a fact up with a log line or a visit. A tip routed to two desks has two
    rows; `counts_tip` is true on exactly one of them, so that tips are counted once without keeping a
    per-tip key once the tip is gone.
    """

    __table_args__ = (UniqueConstraint("tip_id", "desk_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tip_id: str | None = Field(default=None, foreign_key="tip.id", ondelete="SET NULL", max_length=32)
    desk_id: int = Field(foreign_key="desk.id")
    # How the desk got the tip: routing, or a hand-over (consent, legal-basis), as on TipRecipient.
    reason: str = Field(default="routing", max_length=32)
    counts_tip: bool = False
    received_on: datetime.date = Field(index=True)
    category: str = Field(max_length=64)
    municipality_id: int = Field(foreign_key="municipality.id")
    taken_by_phone: bool = False
    acknowledged_on: datetime.date | None = None
    closed_on: datetime.date | None = Field(default=None, index=True)
    outcome: str | None = Field(default=None, max_length=64)
