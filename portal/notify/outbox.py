"""Putting notifications in the outbox, in the transaction of the event they announce.

`submission.services` calls `tip_arrived` and `tipster_answered` while it stores the tip or the message,
so a notification exists if and only if its event does (a rolled-back tip leaves no mail behind, and a
crash after the commit loses none). `scan_deadlines` runs in the sender, periodically: it enqueues the
"due tomorrow" reminders, once per tip and deadline however often and from however many processes it runs.

This module imports only models, so the resident side can call it without reaching the back office.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from portal.accounts.models import DeskMembership, StaffAccount
from portal.db import utcnow
from portal.notify.models import (
    ACKNOWLEDGE_TOMORROW,
    DIGEST,
    EACH,
    FEEDBACK_TOMORROW,
    NEW_TIP,
    TIPSTER_ANSWERED,
    DeadlineReminder,
    Notification,
    NotificationSetting,
)
from portal.submission.models import Tip, TipRecipient

REMIND_BEFORE = datetime.timedelta(days=1)


def wanting_members(db: Session, desk_id: int) -> list[int]:
    """The staff ids of the desk's members who want e-mail and can act on it (enabled, not analysts)."""
    rows = db.exec(
        select(DeskMembership.staff_id)
        .join(StaffAccount, col(StaffAccount.id) == col(DeskMembership.staff_id))
        .join(NotificationSetting, col(NotificationSetting.staff_id) == col(DeskMembership.staff_id))
        .where(
            DeskMembership.desk_id == desk_id,
            col(StaffAccount.disabled).is_(False),
            StaffAccount.role != "analyst",  # analysts never read tips (docs/decisions.md)
            col(NotificationSetting.mode).in_((EACH, DIGEST)),
            NotificationSetting.email != "",
        )
        .order_by(col(DeskMembership.staff_id))
    )
    return list(rows)


def _enqueue(db: Session, *, kind: str, tip_id: str, desk_ids: Iterable[int]) -> int:
    count = 0
    for desk_id in desk_ids:
        for staff_id in wanting_members(db, desk_id):
            db.add(Notification(kind=kind, staff_id=staff_id, desk_id=desk_id, tip_id=tip_id))
            count += 1
    return count


def tip_arrived(db: Session, *, tip_id: str, desk_ids: Iterable[int]) -> int:
    """A tip reached these desks (routed on arrival, or handed over): tell their members."""
    return _enqueue(db, kind=NEW_TIP, tip_id=tip_id, desk_ids=desk_ids)


def _desks_of(db: Session, tip_id: str) -> list[int]:
    return list(
        db.exec(
            select(TipRecipient.desk_id)
            .where(TipRecipient.tip_id == tip_id)
            .order_by(col(TipRecipient.desk_id))
        )
    )


def tipster_answered(db: Session, *, tip_id: str) -> int:
    """The tipster wrote in the mailbox: tell the members of every desk the tip has reached."""
    return _enqueue(db, kind=TIPSTER_ANSWERED, tip_id=tip_id, desk_ids=_desks_of(db, tip_id))


def _insert_once(db: Session, tip_id: str, deadline: str) -> bool:
    """Record the reminder of (tip, deadline); False if another scan recorded it first."""
    values = {"tip_id": tip_id, "deadline": deadline, "created_at": utcnow()}
    dialect = db.get_bind().dialect.name
    statement: Insert
    if dialect == "postgresql":
        statement = postgresql.insert(DeadlineReminder).values(values).on_conflict_do_nothing()
    else:
        statement = sqlite.insert(DeadlineReminder).values(values).on_conflict_do_nothing()
    # RETURNING says whether ON CONFLICT let the row through (rowcount is -1 on some drivers).
    return db.execute(statement.returning(col(DeadlineReminder.tip_id))).first() is not None


def scan_deadlines(db: Session, *, now: datetime.datetime | None = None) -> int:
    """Enqueue "due tomorrow" for every open deadline that falls within the next day; returns how many.

    Acknowledgement is due 7 days after arrival unless the tip has left "new"; feedback is due after 3
    months unless it is closed. A deadline already past when the scan first sees it gets no reminder: it is
    not "tomorrow", and the inbox shows it as overdue.
    """
    now = now or utcnow()
    horizon = now + REMIND_BEFORE
    due = [
        (
            ACKNOWLEDGE_TOMORROW,
            "acknowledge",
            select(Tip.id).where(
                Tip.status == "new",
                col(Tip.acknowledged_at).is_(None),
                col(Tip.acknowledge_by) > now,
                col(Tip.acknowledge_by) <= horizon,
            ),
        ),
        (
            FEEDBACK_TOMORROW,
            "feedback",
            select(Tip.id).where(
                Tip.status != "closed", col(Tip.feedback_by) > now, col(Tip.feedback_by) <= horizon
            ),
        ),
    ]
    count = 0
    for kind, deadline, query in due:
        reminded = select(DeadlineReminder.tip_id).where(DeadlineReminder.deadline == deadline)
        for tip_id in db.exec(query.where(col(Tip.id).not_in(reminded)).order_by(col(Tip.id))):
            if _insert_once(db, tip_id, deadline):
                count += _enqueue(db, kind=kind, tip_id=tip_id, desk_ids=_desks_of(db, tip_id))
    return count
