"""The outbox: who is told of which event, written in the event's own transaction; deadline reminders once.

Recipients are the members of the tip's desks who chose e-mail; disabled accounts and analysts never.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select
from starlette.testclient import TestClient

from portal.accounts.models import DeskMembership, StaffAccount
from portal.db import id_of, session_scope, utcnow
from portal.network.models import Desk
from portal.notify import outbox
from portal.notify.models import (
    ACKNOWLEDGE_TOMORROW,
    DIGEST,
    EACH,
    FEEDBACK_TOMORROW,
    NEW_TIP,
    TIPSTER_ANSWERED,
    DeadlineReminder,
    Notification,
)
from portal.submission.models import Tip
from portal.web import Services
from tests.portal.notify.conftest import choose
from tests.portal.notify.test_sender import ERIK, KARIN, SARA, send_canary_tip, tipster_writes
from tests.portal.submission.browser import form_token
from tests.portal.triage.test_staff_flow import staff_login


def events(engine: Engine) -> list[tuple[str, int, int]]:
    """(kind, staff id, desk id) of every notification, in order."""
    with session_scope(engine) as db:
        rows = db.exec(select(Notification).order_by(col(Notification.id)))
        return [(row.kind, row.staff_id, row.desk_id) for row in rows]


def desk_id(engine: Engine, code: str) -> int:
    with session_scope(engine) as db:
        return id_of(db.exec(select(Desk).where(Desk.code == code)).one())


def test_members_who_want_mail_are_told_of_new_tips_and_answers(
    client: TestClient, services: Services
) -> None:
    sara = choose(services, SARA, mode=EACH)
    karin = choose(services, KARIN, mode=DIGEST)
    choose(services, ERIK, mode=EACH)  # another desk
    pax = desk_id(services.engine, "pax-ragnhild-bedomning")
    code, _ = send_canary_tip(client)
    assert events(services.engine) == [(NEW_TIP, sara, pax), (NEW_TIP, karin, pax)]
    tipster_writes(client, code, "Ett tillägg")
    assert events(services.engine)[2:] == [(TIPSTER_ANSWERED, sara, pax), (TIPSTER_ANSWERED, karin, pax)]


def test_disabled_accounts_and_analysts_are_never_told(client: TestClient, services: Services) -> None:
    sara = choose(services, SARA, mode=EACH)
    karin = choose(services, KARIN, mode=EACH)
    analyst = choose(services, "per.analyst", mode=EACH)
    pax = desk_id(services.engine, "pax-ragnhild-bedomning")
    with session_scope(services.engine) as db:
        db.add(DeskMembership(desk_id=pax, staff_id=analyst))  # by mistake: analysts read no tips
        account = db.get(StaffAccount, karin)
        assert account is not None
        account.disabled = True
        db.add(account)
    send_canary_tip(client)
    assert events(services.engine) == [(NEW_TIP, sara, pax)]


def test_a_hand_over_tells_the_new_desk(
    client: TestClient, services: Services, demo_by_name: dict[str, Any]
) -> None:
    erik = choose(services, ERIK, mode=EACH)
    sara = choose(services, SARA, mode=EACH)
    police = desk_id(services.engine, "polisen-sodertalje-tips")
    _, case_number = send_canary_tip(client)
    with session_scope(services.engine) as db:
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
    staff_login(client, demo_by_name[SARA])
    page = client.get(f"/staff/tips/{tip.id}")
    path = f"/staff/tips/{tip.id}/handover"
    handed = client.post(
        path,
        data={
            "desk": str(police),
            "basis": "legal-basis",
            "legal_basis": "OSL 10 kap. 2 §",
            "csrf": form_token(page.text, path),
        },
    )
    assert handed.status_code in (200, 303), handed.text
    assert events(services.engine)[-1] == (NEW_TIP, erik, police)
    assert [e for e in events(services.engine) if e[1] == sara] == [
        (NEW_TIP, sara, desk_id(services.engine, "pax-ragnhild-bedomning"))
    ]


def test_deadline_reminders_come_once_per_tip_and_deadline(client: TestClient, services: Services) -> None:
    sara = choose(services, SARA, mode=EACH)
    _, case_number = send_canary_tip(client)
    now = utcnow()
    with session_scope(services.engine) as db:
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
        # The joint desk acknowledges automatically; make this one wait, with both deadlines close.
        tip.status, tip.acknowledged_at = "new", None
        tip.acknowledge_by = now + datetime.timedelta(hours=20)
        tip.feedback_by = now + datetime.timedelta(hours=30)  # not tomorrow yet
        db.add(tip)
    before = len(events(services.engine))
    with session_scope(services.engine) as db:
        assert outbox.scan_deadlines(db, now=now) == 1
    with session_scope(services.engine) as db:
        assert outbox.scan_deadlines(db, now=now + datetime.timedelta(hours=1)) == 0
    later = now + datetime.timedelta(hours=8)  # feedback due within a day now
    with session_scope(services.engine) as db:
        assert outbox.scan_deadlines(db, now=later) == 1
    with session_scope(services.engine) as db:
        assert outbox.scan_deadlines(db, now=later) == 0
        assert {r.deadline for r in db.exec(select(DeadlineReminder))} == {"acknowledge", "feedback"}
    assert [e[:2] for e in events(services.engine)[before:]] == [
        (ACKNOWLEDGE_TOMORROW, sara),
        (FEEDBACK_TOMORROW, sara),
    ]


def test_met_or_past_deadlines_get_no_reminder(client: TestClient, services: Services) -> None:
    choose(services, SARA, mode=EACH)
    _, case_number = send_canary_tip(client)
    now = utcnow()
    with session_scope(services.engine) as db:
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
        tip.status = "closed"  # acknowledged (automatically) and closed: nothing is due
        tip.acknowledge_by = now + datetime.timedelta(hours=2)
        tip.feedback_by = now + datetime.timedelta(hours=2)
        db.add(tip)
    with session_scope(services.engine) as db:
        assert outbox.scan_deadlines(db, now=now) == 0
        # A deadline already past is overdue in the inbox, not "tomorrow".
        assert outbox.scan_deadlines(db, now=now + datetime.timedelta(hours=3)) == 0


def test_concurrent_scans_remind_once(client: TestClient, services: Services) -> None:
    choose(services, SARA, mode=EACH)
    choose(services, KARIN, mode=EACH)
    now = utcnow()
    for _ in range(3):
        send_canary_tip(client)
    with session_scope(services.engine) as db:
        for tip in db.exec(select(Tip)):
            tip.status, tip.acknowledged_at = "new", None
            tip.acknowledge_by = now + datetime.timedelta(hours=5)
            db.add(tip)
    counts: list[int] = []
    start = threading.Barrier(3)

    def scan() -> None:
        start.wait()
        with session_scope(services.engine) as db:
            counts.append(outbox.scan_deadlines(db, now=now))

    threads = [threading.Thread(target=scan) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 3 * 2  # three tips, two members each, once
    reminders = [e for e in events(services.engine) if e[0] == ACKNOWLEDGE_TOMORROW]
    assert len(reminders) == 6 and len(set(reminders)) == 2  # (kind, staff, desk) repeats per tip only
