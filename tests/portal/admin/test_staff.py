"""Staff accounts, through the admin pages: invite, disable and enable, reset TOTP, roles, desk memberships.

What a person notices is tested: an invitation link shown once; a disabled officer's open browser sent to
the login page and their login refused; a new role taking effect on the next request; a new member waiting
for a grant rather than reading a desk's tips, because an administrator cannot give a desk key.
"""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

from crypto import Argon2Params
from portal.accounts.models import DeskMembership, StaffAccount, StaffInvite
from portal.admin import people
from portal.admin.web import NOTICES
from portal.audit.models import AuditEntry
from portal.db import utcnow
from portal.keyring.models import DeskKeyGrant
from portal.network.models import Desk
from portal.sessions import SessionRow
from portal.settings import Settings
from portal.triage.web import SESSION_KIND
from portal.web import Services
from tests.portal.admin.pages import log_in_as, mint_token, post_form, said, second_browser, visible_text
from tests.portal.submission.browser import ANSWERS, app_client, send_tip
from tests.portal.triage.test_staff_flow import account, staff_login

OFFICER = "anna.officer.sodertalje"


def _account(services: Services, username: str) -> StaffAccount:
    with Session(services.engine) as db:
        return db.exec(select(StaffAccount).where(StaffAccount.username == username)).one()


def _sessions_of(services: Services, staff_id: int) -> int:
    with Session(services.engine) as db:
        return len(db.exec(select(SessionRow).where(SessionRow.subject == str(staff_id))).all())


def _act(
    client: TestClient, staff_id: int, action: str, fields: dict[str, str] | None = None
) -> httpx.Response:
    page = f"/staff/admin/staff/{staff_id}"
    return post_form(client, page, f"{page}/{action}", fields or {})


def _enrol_link(response: httpx.Response) -> str:
    link = re.search(r'id="enrol-link"[^>]*>([^<]+)<', response.text)
    assert link, response.text
    return html.unescape(link.group(1)).strip()


def test_the_staff_session_kind_is_the_one_logins_use() -> None:
    assert people.STAFF_SESSION_KIND == SESSION_KIND


def test_an_invitation_shows_its_link_once(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    log_in_as(client, demo_accounts, "administrator")
    with Session(services.engine) as db:
        desk = db.exec(select(Desk).where(Desk.code == "ivo-tillsyn")).one()
    invited = post_form(
        client,
        "/staff/admin/staff",
        "/staff/admin/staff",
        {
            "username": "Nora.Officer.IVO",
            "role": "officer",
            "organisation": str(desk.organisation_id),
            "desks": str(desk.id),
        },
    )
    assert invited.status_code == 200
    link = _enrol_link(invited)
    token = re.fullmatch(r"http://testserver/staff/enrol/([A-Za-z0-9_-]+)", link)
    assert token, link
    nora = _account(services, "nora.officer.ivo")  # usernames are stored in lower case
    assert (nora.role, nora.organisation_id, nora.public_key) == ("officer", desk.organisation_id, None)
    with Session(services.engine) as db:
        assert db.get(DeskMembership, (desk.id, nora.id)) is not None
        assert db.exec(select(DeskKeyGrant).where(DeskKeyGrant.staff_id == nora.id)).first() is None
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "admin.staff.invited")).one()
        assert entry.detail["staff_id"] == nora.id and "nora" not in str(entry.detail)
    listing = client.get("/staff/admin/staff")
    assert token.group(1) not in listing.text
    row = re.search(r"nora\.officer\.ivo.*?</tr>", listing.text, re.S)
    assert row
    assert said(people.STATE_LABELS["invited"]) in html.unescape(row.group(0))
    assert said("waiting for a grant") in html.unescape(row.group(0))
    # The link opens the enrolment page of the other half of the back office.
    assert client.get(link.removeprefix("http://testserver")).status_code == 200

    taken = post_form(
        client,
        "/staff/admin/staff",
        "/staff/admin/staff",
        {"username": "nora.officer.ivo", "role": "officer"},
    )
    assert taken.status_code == 400 and said(people.ERROR_USERNAME_TAKEN) in visible_text(taken)
    no_role = post_form(
        client, "/staff/admin/staff", "/staff/admin/staff", {"username": "olle", "role": "king"}
    )
    assert no_role.status_code == 400 and 'value="olle"' in no_role.text
    assert _account_count(services, "olle") == 0


def _account_count(services: Services, username: str) -> int:
    with Session(services.engine) as db:
        return len(db.exec(select(StaffAccount).where(StaffAccount.username == username)).all())


def test_disabling_ends_the_sessions_and_blocks_login(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    officer = account(demo_accounts, role="officer")
    officer_browser = second_browser(client)
    assert staff_login(officer_browser, officer).status_code == 200
    anna = _account(services, officer["username"])
    assert anna.id is not None and _sessions_of(services, anna.id) == 1

    log_in_as(client, demo_accounts, "administrator")
    disabled = _act(client, anna.id, "disable")
    assert disabled.status_code == 200 and said(NOTICES["disabled"]) in visible_text(disabled)
    assert _sessions_of(services, anna.id) == 0
    # The officer's open browser, old cookie and all, is sent to the login page; logging in again fails.
    still_open = officer_browser.get("/staff/", follow_redirects=False)
    assert (still_open.status_code, still_open.headers["location"]) == (303, "/staff/login")
    assert staff_login(officer_browser, officer).status_code == 400

    enabled = _act(client, anna.id, "enable")
    assert said(NOTICES["enabled"]) in visible_text(enabled)
    assert staff_login(officer_browser, officer).status_code == 200


def test_an_administrator_cannot_disable_or_demote_themselves(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    log_in_as(client, demo_accounts, "administrator")
    me = _account(services, account(demo_accounts, role="administrator")["username"])
    assert me.id is not None
    page = client.get(f"/staff/admin/staff/{me.id}")
    assert f"/staff/admin/staff/{me.id}/disable" not in page.text
    assert f"/staff/admin/staff/{me.id}/role" not in page.text
    # A hand-made request (with a good token) is refused too.
    for action, fields in (("disable", {}), ("role", {"role": "officer"})):
        refused = client.post(
            f"/staff/admin/staff/{me.id}/{action}",
            data={**fields, "csrf": mint_token(client, services, f"admin-{action}")},
        )
        assert refused.status_code == 400
        assert said(people.ERROR_NOT_YOURSELF) in visible_text(refused)
    after = _account(services, me.username)
    assert (after.disabled, after.role) == (False, "administrator")


def test_resetting_totp_stops_login_until_reenrolment_and_keeps_the_keys(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    officer = account(demo_accounts, role="officer")
    officer_browser = second_browser(client)
    staff_login(officer_browser, officer)
    before = _account(services, officer["username"])
    assert before.id is not None
    log_in_as(client, demo_accounts, "administrator")
    first = _act(client, before.id, "reset-totp")
    assert first.status_code == 200
    first_link = _enrol_link(first)
    second_link = _enrol_link(_act(client, before.id, "reset-totp"))
    assert first_link != second_link

    after = _account(services, officer["username"])
    assert after.totp_secret_sealed is None
    assert (after.public_key, after.wrapped_private_key) == (before.public_key, before.wrapped_private_key)
    assert _sessions_of(services, before.id) == 0
    assert officer_browser.get("/staff/", follow_redirects=False).status_code == 303
    assert staff_login(officer_browser, officer).status_code == 400
    with Session(services.engine) as db:
        open_invites = db.exec(
            select(StaffInvite).where(
                StaffInvite.staff_id == before.id,
                col(StaffInvite.used_at).is_(None),
                col(StaffInvite.expires_at) > utcnow(),
            )
        ).all()
        assert len(open_invites) == 1  # only the newest link still works
        assert (
            len(db.exec(select(AuditEntry).where(AuditEntry.action == "admin.staff.totp-reset")).all()) == 2
        )
    # The grants sealed to the officer's key are still there for when they have re-enrolled.
    with Session(services.engine) as db:
        assert db.exec(select(DeskKeyGrant).where(DeskKeyGrant.staff_id == before.id)).first() is not None


def test_a_new_role_takes_effect_on_the_next_request(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    officer = account(demo_accounts, role="officer")
    officer_browser = second_browser(client)
    staff_login(officer_browser, officer)
    assert officer_browser.get("/staff/admin/").status_code == 404
    anna = _account(services, officer["username"])
    assert anna.id is not None
    log_in_as(client, demo_accounts, "administrator")
    promoted = _act(client, anna.id, "role", {"role": "administrator"})
    assert said(NOTICES["role-changed"]) in visible_text(promoted)
    assert officer_browser.get("/staff/admin/").status_code == 200
    _act(client, anna.id, "role", {"role": "officer"})
    assert officer_browser.get("/staff/admin/").status_code == 404
    with Session(services.engine) as db:
        changes = db.exec(select(AuditEntry).where(AuditEntry.action == "admin.staff.role-changed")).all()
    assert [(c.detail["from"], c.detail["to"]) for c in changes] == [
        ("officer", "administrator"),
        ("administrator", "officer"),
    ]


def test_a_new_member_waits_for_a_grant_and_a_removed_one_loses_the_key(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    _code, case_number = send_tip(client, "sv", {**ANSWERS, "category": "income-support"}, [])
    client.cookies.clear()
    officer = account(demo_accounts, desk="sodertalje-bistand")
    anna = _account(services, officer["username"])
    with Session(services.engine) as db:
        own = db.exec(select(Desk).where(Desk.code == "sodertalje-bistand")).one()
        new = db.exec(select(Desk).where(Desk.code == "ivo-tillsyn")).one()
    assert anna.id is not None
    log_in_as(client, demo_accounts, "administrator")

    added = _act(client, anna.id, "desks/add", {"desk": str(new.id)})
    assert said(NOTICES["member-added"]) in visible_text(added)
    item = re.search(rf"<li>{re.escape(str(html.escape(new.name)))}.*?</li>", added.text, re.S)
    assert item and said("waiting for a grant") in html.unescape(item.group(0))
    with Session(services.engine) as db:
        assert db.get(DeskMembership, (new.id, anna.id)) is not None
        assert (
            db.exec(
                select(DeskKeyGrant).where(DeskKeyGrant.desk_id == new.id, DeskKeyGrant.staff_id == anna.id)
            ).first()
            is None
        )
    again = _act(client, anna.id, "desks/add", {"desk": str(new.id)})
    assert again.status_code == 400  # the desk is no longer offered, and a hand-made request is refused

    # The officer reads her desk's tip; once removed from the desk, her copy of its key is gone.
    officer_browser = second_browser(client)
    inbox = staff_login(officer_browser, officer)
    assert case_number in inbox.text
    tip_link = re.search(r'href="(/staff/tips/[0-9a-f]{32})"', inbox.text)
    assert tip_link and officer_browser.get(tip_link.group(1)).status_code == 200
    removed = _act(client, anna.id, "desks/remove", {"desk": str(own.id)})
    assert said(NOTICES["member-removed"]) in visible_text(removed)
    with Session(services.engine) as db:
        assert db.get(DeskMembership, (own.id, anna.id)) is None
        assert (
            db.exec(
                select(DeskKeyGrant).where(DeskKeyGrant.desk_id == own.id, DeskKeyGrant.staff_id == anna.id)
            ).first()
            is None
        )
    assert officer_browser.get(tip_link.group(1)).status_code == 404


def test_behind_a_proxy_the_link_uses_the_public_staff_address(
    settings: Settings, demo_accounts: dict[str, Any], fast_argon2: Argon2Params
) -> None:
    # The app behind the reverse proxy sees plain http; the link a person receives must be the https one.
    with app_client(settings, fast_argon2, public_staff_url="https://tips.example.org/staff/") as (
        client,
        built,
    ):
        log_in_as(client, demo_accounts, "administrator")
        with Session(built.engine) as db:
            desk = db.exec(select(Desk).where(Desk.code == "ivo-tillsyn")).one()
        invited = post_form(
            client,
            "/staff/admin/staff",
            "/staff/admin/staff",
            {"username": "behind.proxy", "role": "officer", "organisation": str(desk.organisation_id)},
        )
        assert re.fullmatch(r"https://tips\.example\.org/staff/enrol/[A-Za-z0-9_-]+", _enrol_link(invited))
