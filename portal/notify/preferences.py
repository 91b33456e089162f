"""A staff member's own e-mail address and notification choice, and what administrators see of it.

Only the person sets their address (an administrator sees it, to help when mail does not arrive). The
address is checked for shape only: Lykta never sends to it before the person chooses to get e-mail, and
then only to say that something happened.
"""

from __future__ import annotations

import dataclasses
import datetime
import re

from sqlalchemy import func
from sqlmodel import Session, col, select

from portal.accounts.models import StaffAccount
from portal.audit import log as audit
from portal.db import utcnow
from portal.i18n import N_
from portal.notify.models import (
    DIGEST,
    FAILED,
    MODES,
    OFF,
    PENDING,
    SENDING,
    Notification,
    NotificationSetting,
)

MAX_EMAIL = 254  # RFC 5321's limit on a path
# One @, a local part and a dotted domain, and nothing that could break a header or name a second address.
EMAIL_PATTERN = re.compile(r"[^\s@<>,;:\"()\[\]\\]{1,64}@[^\s@<>,;:\"()\[\]\\]+\.[^\s@<>,;:\"()\[\]\\.]+")

ERROR_EMAIL = N_("Write one e-mail address, like name@example.se.")
ERROR_EMAIL_NEEDED = N_("Write the address to send the e-mails to.")
ERROR_MODE = N_("Choose one of the options.")


class PreferenceError(ValueError):
    """The form was not right: `problems` maps a field to a msgid."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(", ".join(sorted(problems)))
        self.problems = problems


def setting_of(db: Session, staff_id: int) -> NotificationSetting:
    """The person's setting, or an unsaved default (no address, no e-mail)."""
    return db.get(NotificationSetting, staff_id) or NotificationSetting(staff_id=staff_id)


def clean_email(value: str) -> str:
    """The address, trimmed; raises PreferenceError if it is not one plain address."""
    value = value.strip()
    if value and (len(value) > MAX_EMAIL or not EMAIL_PATTERN.fullmatch(value) or not value.isprintable()):
        raise PreferenceError({"email": ERROR_EMAIL})
    return value


def save(db: Session, *, staff_id: int, email: str, mode: str, now: datetime.datetime | None = None) -> None:
    """Check and store the choice, all or nothing; audited without the address."""
    problems: dict[str, str] = {}
    try:
        email = clean_email(email)
    except PreferenceError as error:
        problems.update(error.problems)
    if mode not in MODES:
        problems["mode"] = ERROR_MODE
    elif mode != OFF and not email and "email" not in problems:
        problems["email"] = ERROR_EMAIL_NEEDED
    if problems:
        raise PreferenceError(problems)
    now = now or utcnow()
    setting = setting_of(db, staff_id)
    if mode == DIGEST and setting.mode != DIGEST:
        # The first digest comes on the next digest morning, not at once with the first event.
        setting.digest_sent_at = now
    setting.email, setting.mode, setting.updated_at = email, mode, now
    db.add(setting)
    audit.record(db, "notify.preference", actor=f"staff:{staff_id}", detail={"mode": mode})


@dataclasses.dataclass(frozen=True)
class Recipient:
    account: StaffAccount
    email: str
    mode: str


def recipients(db: Session) -> list[Recipient]:
    """Every staff member who gave an address, for the administrators' page."""
    rows = db.exec(
        select(StaffAccount, NotificationSetting)
        .join(NotificationSetting, col(NotificationSetting.staff_id) == col(StaffAccount.id))
        .where(NotificationSetting.email != "")
        .order_by(col(StaffAccount.username))
    )
    return [Recipient(account=account, email=setting.email, mode=setting.mode) for account, setting in rows]


@dataclasses.dataclass(frozen=True)
class Trouble:
    """A notification that failed, or is waiting to be tried again: no content, no address."""

    notification: Notification
    username: str


def troubles(db: Session, *, limit: int = 200) -> list[Trouble]:
    """Failed notifications and those being retried, newest first."""
    rows = db.exec(
        select(Notification, StaffAccount.username)
        .join(StaffAccount, col(StaffAccount.id) == col(Notification.staff_id))
        .where(
            (col(Notification.status) == FAILED)
            | (col(Notification.status).in_((PENDING, SENDING)) & (col(Notification.attempts) > 0))
        )
        .order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
        .limit(limit)
    )
    return [Trouble(notification=row, username=username) for row, username in rows]


def counts(db: Session) -> dict[str, int]:
    """How many notifications are waiting, being retried, and failed (the overview and metrics)."""
    rows = db.exec(
        select(Notification.status, func.count())
        .where(col(Notification.status).in_((PENDING, SENDING, FAILED)))
        .group_by(col(Notification.status))
    ).all()
    by_status = dict(rows)
    retrying = db.exec(
        select(func.count())
        .select_from(Notification)
        .where(col(Notification.status).in_((PENDING, SENDING)), col(Notification.attempts) > 0)
    ).one()
    return {
        "pending": by_status.get(PENDING, 0) + by_status.get(SENDING, 0),
        "retrying": retrying,
        "failed": by_status.get(FAILED, 0),
    }


def retry_failed(db: Session, *, actor: str, now: datetime.datetime | None = None) -> int:
    """Put every failed notification back in the queue, with a fresh count of attempts (after a fix)."""
    rows = db.exec(select(Notification).where(Notification.status == FAILED)).all()
    for row in rows:
        row.status, row.attempts, row.next_attempt_at = PENDING, 0, now or utcnow()
        db.add(row)
    if rows:
        audit.record(db, "notify.retry-failed", actor=actor, detail={"count": len(rows)})
    return len(rows)
