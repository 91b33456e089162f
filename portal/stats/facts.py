"""Keeping the fact table in step with the tips, in the caller's transaction.

`record_tip` is called wherever a tip gains a desk or changes its dates or outcome: when it is stored
(portal.submission.services.store_tip, also for tips taken by phone), when it is handed over
(share_with_desk) and when its status changes (portal.triage.services.set_status). It reads the tip as it
stands and writes what the facts must say, so calling it twice changes nothing.
"""

from __future__ import annotations

import datetime

from sqlmodel import Session, col, select

from portal.stats.models import TipFact
from portal.submission.models import Tip, TipRecipient


def day(value: datetime.datetime | None) -> datetime.date | None:
    """The UTC day of a time: facts keep days, never instants."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC)
    return value.date()


def record_tip(db: Session, tip: Tip) -> None:
    """Write the facts of `tip`: a row per receiving desk, with the tip's current days and outcome."""
    db.flush()
    desks = db.exec(
        select(TipRecipient.desk_id, TipRecipient.reason)
        .where(TipRecipient.tip_id == tip.id)
        .order_by(col(TipRecipient.desk_id))
    ).all()
    facts = {fact.desk_id: fact for fact in db.exec(select(TipFact).where(TipFact.tip_id == tip.id))}
    counted = any(fact.counts_tip for fact in facts.values())
    received_on = day(tip.created_at)
    assert received_on is not None  # created_at is NOT NULL
    for desk_id, reason in desks:
        fact = facts.get(desk_id)
        if fact is None:
            # The first desk a tip reaches counts it; a desk it is handed over to later does not.
            fact = TipFact(
                tip_id=tip.id,
                desk_id=desk_id,
                reason=reason,
                counts_tip=not counted,
                received_on=received_on,
                category=tip.category,
                municipality_id=tip.municipality_id,
            )
            counted = True
        fact.category = tip.category
        fact.municipality_id = tip.municipality_id
        fact.taken_by_phone = tip.taken_by_phone
        fact.acknowledged_on = day(tip.acknowledged_at)
        fact.closed_on = day(tip.closed_at)
        fact.outcome = tip.outcome if tip.closed_at is not None else None
        db.add(fact)
    db.flush()
