"""Tips with every kind of row a tip can have, made through the pages as residents and officers do, and
ways to move a tip's clock back so that it falls due without waiting two years."""

from __future__ import annotations

import dataclasses
import datetime
import re
from typing import Any

import httpx
from sqlalchemy import Engine, MetaData, func, text
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portal.db import session_scope, utcnow
from portal.retention import services as retention
from portal.submission.models import Tip
from portal.web import Services
from tests.portal.submission.browser import ANSWERS, form_token, log_in, send_tip
from tests.portal.triage.test_handover import desk_with_officer
from tests.portal.triage.test_staff_flow import account, staff_login, tip_desks

FILE_BODY = b"retention test file " * 4000  # 80 kB: two STREAM chunks


@dataclasses.dataclass(frozen=True)
class MadeTip:
    tip_id: str
    case_number: str
    reply_code: str
    officer: dict[str, Any]


def staff_post(client: TestClient, tip_id: str, action: str, fields: dict[str, Any]) -> httpx.Response:
    """Open the tip page and post its form for `action` (reply, note, status, labels, hold...)."""
    page = client.get(f"/staff/tips/{tip_id}")
    assert page.status_code == 200, page.text
    path = f"/staff/tips/{tip_id}/{action}"
    return client.post(path, data={**fields, "csrf": form_token(page.text, path)})


def tipster_reply(client: TestClient, reply_code: str, message: str) -> httpx.Response:
    client.cookies.clear()
    mailbox = log_in(client, "sv", reply_code)
    assert mailbox.status_code == 200, mailbox.text
    return client.post(
        "/sv/mailbox/reply",
        data={"message": message, "csrf": form_token(mailbox.text, "/sv/mailbox/reply")},
        files=[("files", ("svar.bin", FILE_BODY, "application/octet-stream"))],
        follow_redirects=False,
    )


def make_tip(
    client: TestClient,
    services: Services,
    demo_accounts: dict[str, Any],
    *,
    outcome: str = "unfounded",
    full: bool = True,
    staff: TestClient | None = None,
) -> MadeTip:
    """A tip closed with `outcome`; `full` gives it a row in every table a tip can have.

    Full: a file, a desk reply and a tipster reply with a file, a note, labels, a read mark, a hand-over
    request, and the tipster's session left open. `staff`, a browser already logged in as an officer of the
    joint desk, saves a login per tip (logins are throttled per account and minute).
    """
    client.cookies.clear()
    code, case_number = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [("bild.bin", FILE_BODY)])
    desks = tip_desks(services, case_number)
    officer = account(demo_accounts, desk=desks[0])
    with Session(services.engine) as db:
        tip_id = db.exec(select(Tip.id).where(Tip.case_number == case_number)).one()
    if staff is None:
        client.cookies.clear()
        staff_login(client, officer)
    else:
        client = staff
    if full:
        assert staff_post(client, tip_id, "reply", {"text": "Tack, en fråga till."}).status_code == 200
        assert staff_post(client, tip_id, "note", {"text": "Intern anteckning."}).status_code == 200
        assert staff_post(client, tip_id, "labels", {"label": ["urgent", "repeat"]}).status_code == 200
        target, _other = desk_with_officer(demo_accounts, desks)
        from portal.network.models import Desk

        with Session(services.engine) as db:
            target_id = db.exec(select(Desk.id).where(Desk.code == target)).one()
        staff_post(client, tip_id, "handover", {"desk": str(target_id), "basis": "consent"})
    closed = staff_post(client, tip_id, "status", {"status": "closed", "outcome": outcome})
    assert closed.status_code == 200, closed.text
    if staff is not None:
        return MadeTip(tip_id=tip_id, case_number=case_number, reply_code=code, officer=officer)
    if full:
        assert tipster_reply(client, code, "Svart Volvo.").status_code == 303
    client.cookies.clear()
    return MadeTip(tip_id=tip_id, case_number=case_number, reply_code=code, officer=officer)


def age(engine: Engine, tip_id: str, *, days: int) -> datetime.datetime | None:
    """Move the tip's closing and the tipster's last activity `days` back; its new deletion date."""
    with session_scope(engine) as db:
        tip = db.get(Tip, tip_id)
        assert tip is not None and tip.closed_at is not None
        then = utcnow() - datetime.timedelta(days=days)
        tip.closed_at = then
        tip.last_tipster_activity_at = then
        db.add(tip)
        return retention.recompute(db, tip)


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows per table, every table of the schema."""
    metadata = MetaData()
    with engine.connect() as conn:
        metadata.reflect(conn)
        return {
            name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in metadata.tables.items()
            if name != "alembic_version"
        }


def rows_referring_to(engine: Engine, tip_id: str) -> dict[str, int]:
    """Rows of every table that names `tip_id` in a column called tip_id or subject (sessions)."""
    metadata = MetaData()
    found: dict[str, int] = {}
    with engine.connect() as conn:
        metadata.reflect(conn)
        for name, table in metadata.tables.items():
            for column in ("tip_id", "subject"):
                if column in table.c:
                    count = conn.execute(
                        select(func.count()).select_from(table).where(table.c[column] == tip_id)
                    ).scalar_one()
                    if count:
                        found[f"{name}.{column}"] = int(count)
    return found


def file_ids(engine: Engine, tip_id: str) -> list[str]:
    with engine.connect() as conn:
        return [
            row[0] for row in conn.execute(text("SELECT id FROM storedfile WHERE tip_id = :t"), {"t": tip_id})
        ]


def shown_deletion(page: str) -> str:
    match = re.search(r'id="delete-after">(.*?)</dd>', page, re.S)
    assert match, "the tip page shows no deletion date"
    return match.group(1)
