"""What staff see and do: the deletion date on the tip page, the legal hold form, and the retention
rules per outcome in the desk settings (with the bad input an administrator can type)."""

from __future__ import annotations

import datetime
from typing import Any

from sqlmodel import Session, select
from starlette.testclient import TestClient

from portal.admin.forms import ERROR_NUMBER_RANGE
from portal.admin.web import NOTICES
from portal.audit.models import AuditEntry
from portal.db import utcnow
from portal.network.models import Desk
from portal.retention.models import LegalHold, RetentionRule
from portal.retention.views import ERROR_REFERENCE
from portal.submission.models import Tip
from portal.web import Services
from tests.portal.admin.pages import log_in_as, mint_token, post_form, said, snapshot, visible_text
from tests.portal.retention.tips import age, make_tip, shown_deletion, staff_post, tipster_reply
from tests.portal.submission.browser import form_token
from tests.portal.triage.test_staff_flow import account, staff_login, tip_desks


def day(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def stored_date(services: Services, tip_id: str) -> datetime.datetime | None:
    with Session(services.engine) as db:
        tip = db.get(Tip, tip_id)
        assert tip is not None
        return tip.delete_after.replace(tzinfo=datetime.UTC) if tip.delete_after else None


def test_the_tip_page_shows_the_deletion_date(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    made = make_tip(client, services, demo_accounts, outcome="action-taken", full=False)
    staff_login(client, made.officer)
    due = age(services.engine, made.tip_id, days=10)  # closed, and last heard of, 10 days ago
    assert due is not None
    page = client.get(f"/staff/tips/{made.tip_id}").text
    # Closed as "action taken": 730 days after closing (the desk's default), stored as shown.
    expected = utcnow() - datetime.timedelta(days=10) + datetime.timedelta(days=730)
    assert day(expected) in shown_deletion(page)
    assert stored_date(services, made.tip_id) == due

    reopened = staff_post(client, made.tip_id, "status", {"status": "in-progress"})
    assert said("Not while the tip is open") in shown_deletion(reopened.text)
    assert stored_date(services, made.tip_id) is None

    closed = staff_post(client, made.tip_id, "status", {"status": "closed", "outcome": "unfounded"})
    # Unfounded: 60 days after closing (today), but never earlier than 90 days after the tipster last
    # wrote (10 days ago): 80 days from now.
    shown = shown_deletion(closed.text)
    assert day(utcnow() + datetime.timedelta(days=80)) in shown
    assert said("pushed back by the tipster's latest activity") in shown


def test_tipster_activity_moves_the_date_shown(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    made = make_tip(client, services, demo_accounts, full=False)
    due = age(services.engine, made.tip_id, days=100)
    assert due is not None and due < utcnow()  # due for deletion already
    assert tipster_reply(client, made.reply_code, "En sak till.").status_code == 303
    later = stored_date(services, made.tip_id)
    assert later is not None and later > utcnow() + datetime.timedelta(days=89)
    client.cookies.clear()
    staff_login(client, made.officer)
    assert day(later) in shown_deletion(client.get(f"/staff/tips/{made.tip_id}").text)


def test_the_legal_hold_form(client: TestClient, services: Services, demo_accounts: dict[str, Any]) -> None:
    made = make_tip(client, services, demo_accounts, full=False)
    staff_login(client, made.officer)
    path = f"/staff/tips/{made.tip_id}/hold"
    for bad in ("", "   ", "x" * 201, "rad ett\x00"):
        refused = staff_post(client, made.tip_id, "hold", {"action": "set", "reference": bad})
        assert refused.status_code == 400 and said(ERROR_REFERENCE) in visible_text(refused)
    assert staff_post(client, made.tip_id, "hold", {"action": "other"}).status_code == 400
    page = client.get(f"/staff/tips/{made.tip_id}").text
    expired = client.post(path, data={"action": "set", "reference": "B 1234-26", "csrf": "forged"})
    assert expired.status_code == 400
    with Session(services.engine) as db:
        assert db.get(LegalHold, made.tip_id) is None

    held = client.post(
        path,
        data={
            "action": "set",
            "reference": "  B 1234-26  Södertörns tingsrätt ",
            "csrf": form_token(page, path),
        },
    )
    assert held.status_code == 200
    assert said("Never while on legal hold") in shown_deletion(held.text)
    with Session(services.engine) as db:
        hold = db.get(LegalHold, made.tip_id)
        assert hold is not None and hold.reference == "B 1234-26 Södertörns tingsrätt"
    # Another desk's officer and the analyst reach neither the tip nor its hold.
    for outsider in (
        account(demo_accounts, desk="skatteverket-folkbokforing"),
        account(demo_accounts, role="analyst"),
    ):
        other = TestClient(client.app, base_url="http://testserver")
        staff_login(other, outsider)
        other.get("/staff/")
        # A perfect token for the form does not help: the desk's key decides.
        token = mint_token(other, services, "hold")
        assert other.post(path, data={"action": "clear", "csrf": token}).status_code == 404
    with Session(services.engine) as db:
        assert db.get(LegalHold, made.tip_id) is not None
        assert db.exec(select(AuditEntry).where(AuditEntry.action == "tip.hold-cleared")).first() is None

    # A reference is shown as text: markup in it stays inert on the tip page.
    cleared = staff_post(client, made.tip_id, "hold", {"action": "clear"})
    assert cleared.status_code == 200 and 'id="hold-reference"' in cleared.text
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    shown = staff_post(client, made.tip_id, "hold", {"action": "set", "reference": hostile})
    assert shown.status_code == 200
    assert "<script>alert" not in shown.text and "&lt;script&gt;alert" in shown.text


def test_retention_rules_per_outcome_in_the_desk_settings(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    made = make_tip(client, services, demo_accounts, outcome="action-taken", full=False)
    age(services.engine, made.tip_id, days=10)
    before = stored_date(services, made.tip_id)
    desk_code = tip_desks(services, made.case_number)[0]
    with Session(services.engine) as db:
        desk = db.exec(select(Desk).where(Desk.code == desk_code)).one()
    client.cookies.clear()
    log_in_as(client, demo_accounts, "administrator")
    page = f"/staff/admin/desks/{desk.id}"
    settings = {
        "name": desk.name,
        "retention_days": str(desk.retention_days),
        "auto_acknowledge": "yes" if desk.auto_acknowledge else "",
    }
    assert 'name="retention_unfounded"' in client.get(page).text

    unchanged = snapshot(services.engine)
    for bad in ("29", "3651", "abc", "-40", "٣٠٠", "1e3", "100000000000"):
        refused = post_form(client, page, page, {**settings, "retention_action-taken": bad})
        assert refused.status_code == 400, bad
        assert said(ERROR_NUMBER_RANGE, min=30, max=3650) in visible_text(refused)
        assert f'value="{bad}"' in refused.text  # the form keeps what was typed
    assert snapshot(services.engine) == unchanged

    saved = post_form(
        client, page, page, {**settings, "retention_action-taken": "30", "retention_unfounded": " 45 "}
    )
    assert saved.status_code == 200 and said(NOTICES["desk-saved"]) in visible_text(saved)
    assert 'value="45"' in saved.text and 'value="30"' in saved.text
    with Session(services.engine) as db:
        rules = {
            r.outcome: r.days for r in db.exec(select(RetentionRule).where(RetentionRule.desk_id == desk.id))
        }
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "admin.desk.updated")).one()
    assert rules == {"action-taken": 30, "unfounded": 45}
    assert entry.detail["outcome_days"] == {"action-taken": 30, "unfounded": 45}
    assert sorted(entry.detail["changed"]) == ["retention_action-taken", "retention_unfounded"]
    # The tips the desk closed already follow the new rule: closed 10 days ago, kept 30 days, but never
    # earlier than 90 days after the tipster's last activity (also 10 days ago).
    after = stored_date(services, made.tip_id)
    assert before is not None and after is not None
    assert abs(after - (utcnow() + datetime.timedelta(days=80))) < datetime.timedelta(minutes=5)

    cleared = post_form(
        client, page, page, {**settings, "retention_action-taken": "", "retention_unfounded": ""}
    )
    assert cleared.status_code == 200
    with Session(services.engine) as db:
        assert db.exec(select(RetentionRule).where(RetentionRule.desk_id == desk.id)).all() == []
    assert stored_date(services, made.tip_id) == before


def test_a_new_desk_gets_its_rules_or_nothing(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    log_in_as(client, demo_accounts, "administrator")
    with Session(services.engine) as db:
        organisation_id = db.exec(select(Desk.organisation_id).where(Desk.code == "ivo-tillsyn")).one()
    fields = {
        "organisation": str(organisation_id),
        "code": "ivo-retention",
        "name": "IVO gallring",
        "retention_days": "365",
        "retention_duplicate": "31",
    }
    refused = post_form(
        client, "/staff/admin/desks", "/staff/admin/desks", {**fields, "retention_unfounded": "7"}
    )
    assert refused.status_code == 400
    with Session(services.engine) as db:
        assert db.exec(select(Desk).where(Desk.code == "ivo-retention")).first() is None
    created = post_form(client, "/staff/admin/desks", "/staff/admin/desks", fields)
    assert created.status_code == 200
    with Session(services.engine) as db:
        desk = db.exec(select(Desk).where(Desk.code == "ivo-retention")).one()
        rules = db.exec(select(RetentionRule).where(RetentionRule.desk_id == desk.id)).all()
    assert desk.retention_days == 365 and [(r.outcome, r.days) for r in rules] == [("duplicate", 31)]
