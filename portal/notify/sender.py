"""The sender: claims due notifications from the outbox, sends them, and records what happened.

Each round (`send_due`) runs in three short transactions, so no lock is held while talking to the mail
server (on SQLite, a held write lock would stop tips from being stored):

1. claim: due `pending` rows (and `sending` rows whose sender died: `claimed_until` passed) become
   `sending` with one more attempt. On PostgreSQL the rows are picked `FOR UPDATE SKIP LOCKED`, so two
   senders claim different rows; on SQLite the transaction's write lock (BEGIN IMMEDIATE) does the same.
2. send, outside any transaction: one e-mail per row for people who want each event, one digest per
   person and day for the others.
3. record: `sent`, or back to `pending` after a growing pause, or `failed` after the last attempt.

Delivery is at least once: a sender that dies between handing a mail to the server and recording it sends
it again after the claim expires. Logs hold counts and error class names, never an address or a case.
"""

from __future__ import annotations

import dataclasses
import datetime
import gettext
import logging
import threading
import zoneinfo
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine, exists
from sqlmodel import Session, col, or_, select

from portal import i18n
from portal.accounts.models import DeskMembership, StaffAccount
from portal.db import make_nullpool_engine, session_scope, utcnow
from portal.network.models import Desk
from portal.notify import letters
from portal.notify.models import (
    DIGEST,
    DROPPED,
    EACH,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    Notification,
    NotificationSetting,
)
from portal.notify.outbox import scan_deadlines
from portal.notify.transport import Mailer
from portal.settings import Settings
from portal.submission.models import Tip

log = logging.getLogger("lykta.notify")

MAX_ATTEMPTS = 8  # over about 2 days with the pauses below, then `failed` and shown to administrators
FIRST_PAUSE = datetime.timedelta(minutes=1)
LONGEST_PAUSE = datetime.timedelta(hours=12)
CLAIM_FOR = datetime.timedelta(minutes=10)  # longer than any SMTP conversation can take (30 s timeouts)
BATCH = 100
DIGEST_HOUR = 7  # the daily digest goes out after 07:00 ...
DIGEST_ZONE = zoneinfo.ZoneInfo("Europe/Stockholm")  # ... local time where the network is


def pause_after(attempts: int) -> datetime.timedelta:
    """1, 2, 4, 8 ... minutes after the first, second, third ... failed attempt, at most 12 hours."""
    doublings = min(max(attempts - 1, 0), 20)  # 2**20 minutes is far past the longest pause anyway
    return min(FIRST_PAUSE * (1 << doublings), LONGEST_PAUSE)


def last_digest_time(now: datetime.datetime) -> datetime.datetime:
    """The latest moment at or before `now` when digests were due (07:00 local time, today or yesterday)."""
    local = now.astimezone(DIGEST_ZONE)
    today = local.replace(hour=DIGEST_HOUR, minute=0, second=0, microsecond=0)
    due = today if local >= today else today - datetime.timedelta(days=1)
    return due.astimezone(datetime.UTC)


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """One e-mail to send: to whom, built from which rows."""

    staff_id: int
    email: str = dataclasses.field(repr=False)
    language: str
    events: tuple[letters.Event, ...]
    row_ids: tuple[int, ...]
    digest: bool


@dataclasses.dataclass
class Report:
    sent: int = 0  # e-mails
    retrying: int = 0  # notifications back in the queue
    failed: int = 0  # notifications given up on
    dropped: int = 0  # notifications for people who no longer want e-mail

    def __str__(self) -> str:
        return f"sent {self.sent}, retrying {self.retrying}, failed {self.failed}, dropped {self.dropped}"


def _claimable(now: datetime.datetime) -> object:
    return or_(
        (col(Notification.status) == PENDING) & (col(Notification.next_attempt_at) <= now),
        (col(Notification.status) == SENDING) & (col(Notification.claimed_until) < now),
    )


def _drop_unwanted(db: Session, now: datetime.datetime) -> int:
    """Rows for people who switched e-mail off, removed their address, were disabled or left the desk since
    the event: someone no longer on a desk does not learn its new case numbers."""
    wanted = (
        select(NotificationSetting.staff_id)
        .join(StaffAccount, col(StaffAccount.id) == col(NotificationSetting.staff_id))
        .where(
            col(NotificationSetting.mode).in_((EACH, DIGEST)),
            NotificationSetting.email != "",
            col(StaffAccount.disabled).is_(False),
        )
    )
    member = exists().where(
        col(DeskMembership.desk_id) == col(Notification.desk_id),
        col(DeskMembership.staff_id) == col(Notification.staff_id),
    )
    rows = db.exec(
        select(Notification)
        .where(_claimable(now), or_(col(Notification.staff_id).not_in(wanted), ~member))  # type: ignore[arg-type]
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.status, row.claimed_until = DROPPED, None
        db.add(row)
    return len(rows)


def _take(db: Session, rows: Sequence[Notification], now: datetime.datetime) -> None:
    for row in rows:
        row.status, row.attempts, row.claimed_until = SENDING, row.attempts + 1, now + CLAIM_FOR
        db.add(row)


def _claim_each(db: Session, now: datetime.datetime, limit: int) -> list[tuple[Notification, str]]:
    rows = db.exec(
        select(Notification, NotificationSetting.email)
        .join(NotificationSetting, col(NotificationSetting.staff_id) == col(Notification.staff_id))
        .where(_claimable(now), NotificationSetting.mode == EACH)  # type: ignore[arg-type]
        .order_by(col(Notification.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=Notification)
    ).all()
    _take(db, [row for row, _ in rows], now)
    return [(row, email) for row, email in rows]


def _claim_digests(
    db: Session, now: datetime.datetime
) -> list[tuple[NotificationSetting, list[Notification]]]:
    """Per person in digest mode: all their due rows, if today's digest is due or a failed one is retried.

    The person's setting row is locked while their rows are claimed, and `digest_sent_at` moves to now at
    once, so two senders never make two digests of one day.
    """
    since = last_digest_time(now)
    people = db.exec(
        select(NotificationSetting)
        .where(NotificationSetting.mode == DIGEST)
        .order_by(col(NotificationSetting.staff_id))
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for setting in people:
        rows = list(
            db.exec(
                select(Notification)
                .where(Notification.staff_id == setting.staff_id, _claimable(now))  # type: ignore[arg-type]
                .order_by(col(Notification.id))
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            continue
        digest_due = setting.digest_sent_at is None or setting.digest_sent_at < since
        retrying = any(row.last_error is not None for row in rows)
        if not (digest_due or retrying):
            continue
        setting.digest_sent_at = now
        db.add(setting)
        _take(db, rows, now)
        claimed.append((setting, rows))
    return claimed


def _events(db: Session, rows: Sequence[Notification]) -> tuple[letters.Event, ...]:
    events = []
    for row in rows:
        tip = db.get(Tip, row.tip_id)
        desk = db.get(Desk, row.desk_id)
        events.append(
            letters.Event(
                kind=row.kind,
                case_number=tip.case_number if tip else "",
                desk_name=" ".join((desk.name if desk else "").split()),  # no line breaks into a header
            )
        )
    return tuple(events)


def _language(db: Session, staff_id: int) -> str:
    account = db.get(StaffAccount, staff_id)
    return letters.language_of(account.language if account else "")


def claim(engine: Engine, *, now: datetime.datetime, limit: int = BATCH) -> tuple[list[Outgoing], int]:
    """Claim what is due now; the e-mails to send, and how many rows were dropped as no longer wanted."""
    outgoing: list[Outgoing] = []
    with session_scope(engine) as db:
        dropped = _drop_unwanted(db, now)
        for row, email in _claim_each(db, now, limit):
            outgoing.append(
                Outgoing(
                    staff_id=row.staff_id,
                    email=email,
                    language=_language(db, row.staff_id),
                    events=_events(db, [row]),
                    row_ids=(row.id or 0,),
                    digest=False,
                )
            )
        for setting, rows in _claim_digests(db, now):
            outgoing.append(
                Outgoing(
                    staff_id=setting.staff_id,
                    email=setting.email,
                    language=_language(db, setting.staff_id),
                    events=_events(db, rows),
                    row_ids=tuple(row.id or 0 for row in rows),
                    digest=True,
                )
            )
    return outgoing, dropped


def compose(
    item: Outgoing, *, translations: dict[str, gettext.NullTranslations], staff_url: str
) -> letters.Letter:
    catalog = translations[item.language]
    if item.digest:
        return letters.digest(item.events, translations=catalog, language=item.language, staff_url=staff_url)
    return letters.single(item.events[0], translations=catalog, language=item.language, staff_url=staff_url)


def record(
    engine: Engine,
    item: Outgoing,
    *,
    error: BaseException | None,
    now: datetime.datetime,
    max_attempts: int,
    report: Report,
) -> None:
    """Write the outcome of one e-mail to its rows (only rows still claimed: a reclaimed row is left be)."""
    with session_scope(engine) as db:
        rows = db.exec(
            select(Notification).where(col(Notification.id).in_(item.row_ids), Notification.status == SENDING)
        ).all()
        for row in rows:
            row.claimed_until = None
            if error is None:
                row.status, row.sent_at, row.last_error = SENT, now, None
            else:
                row.last_error = type(error).__name__[:100]
                if row.attempts >= max_attempts:
                    row.status = FAILED
                    report.failed += 1
                else:
                    row.status, row.next_attempt_at = PENDING, now + pause_after(row.attempts)
                    report.retrying += 1
            db.add(row)
        if error is None:
            report.sent += 1


def send_due(
    engine: Engine,
    mailer: Mailer,
    *,
    sender: str,
    staff_url: str = "",
    translations: dict[str, gettext.NullTranslations] | None = None,
    now: datetime.datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    batch: int = BATCH,
) -> Report:
    """One round: enqueue deadline reminders, claim what is due, send it over one SMTP session."""
    now = now or utcnow()
    translations = translations or i18n.load_all(domain=i18n.STAFF_DOMAIN)
    with session_scope(engine) as db:
        scan_deadlines(db, now=now)
    outgoing, dropped = claim(engine, now=now, limit=batch)
    report = Report(dropped=dropped)
    if not outgoing:
        return report
    results: list[tuple[Outgoing, BaseException | None]] = []
    try:
        with mailer.session() as session:
            for item in outgoing:
                try:
                    letter = compose(item, translations=translations, staff_url=staff_url)
                    session.send(letters.as_email(letter, sender=sender, to=item.email))
                except Exception as refused:  # one refused message must not hold back the others
                    results.append((item, refused))
                else:
                    results.append((item, None))
    except Exception as unreachable:  # no session at all: every e-mail not yet sent failed with it
        done = {id(item) for item, _ in results}
        results += [(item, unreachable) for item in outgoing if id(item) not in done]
    for item, error in results:
        record(engine, item, error=error, now=now, max_attempts=max_attempts, report=report)
    log.info("notifications: %s", report)
    return report


class NotConfiguredError(Exception):
    """The settings lack what sending needs; the message names the variable."""


def check_settings(settings: Settings) -> None:
    if not settings.smtp_host:
        raise NotConfiguredError("LYKTA_SMTP_HOST is not set: there is no mail server to send through")
    if not settings.smtp_from:
        raise NotConfiguredError("LYKTA_SMTP_FROM is not set: e-mails need a sender address")
    if settings.smtp_ca_file and not Path(settings.smtp_ca_file).is_file():
        raise NotConfiguredError("LYKTA_SMTP_CA_FILE does not name a readable file")


def run(
    settings: Settings,
    *,
    once: bool = False,
    interval: float = 60.0,
    stop: threading.Event | None = None,
) -> Report:
    """Send rounds every `interval` seconds until `stop` is set (or once); the last round's report."""
    check_settings(settings)
    stop = stop or threading.Event()
    engine = make_nullpool_engine(settings.database_url)
    mailer = Mailer.from_settings(settings)
    translations = i18n.load_all(domain=i18n.STAFF_DOMAIN)
    try:
        while True:
            report = send_due(
                engine,
                mailer,
                sender=settings.smtp_from,
                staff_url=settings.public_staff_url,
                translations=translations,
            )
            if once or stop.wait(interval):
                return report
    finally:
        engine.dispose()
