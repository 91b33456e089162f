"""Reaching what is not yours by naming it (issue 6, item 4): another desk's tip exported to your own key,
a file of one tip fetched under another tip's address, another tipster's hand-over request answered, and
a session cookie copied before logout replayed against every kind of action.

Already covered, not repeated: role x desk for every tip route (tests/portal/triage/test_access_matrix.py),
canned replies and desk keys of another desk (test_canned_replies.py, keyring/test_desk_page.py), a copied
staff cookie opening the inbox after logout (test_staff_flow.py), a copied mailbox cookie opening the
mailbox after logout (submission/test_followup.py).
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import select
from starlette.testclient import TestClient

import crypto
from portal.audit.models import AuditEntry
from portal.db import session_scope
from portal.submission.models import HandOver, Message
from portal.web import Services
from tests.attacks.test_csrf_everywhere import snapshot
from tests.portal.accounts.people import PAX_DESK
from tests.portal.admin.pages import mint_token
from tests.portal.submission.browser import ANSWERS, form_token, log_in, send_tip
from tests.portal.triage.test_staff_flow import account, staff_login, tip_desks


def browser(client: TestClient) -> TestClient:
    return TestClient(client.app, base_url="http://testserver")


def tip_path(staff: TestClient, case_number: str) -> str:
    """The address of the tip with this case number, from the inbox (which links tips by id)."""
    for match in re.finditer(r'href="(/staff/tips/[0-9a-f]{32})"', staff.get("/staff/").text):
        if case_number in staff.get(match.group(1)).text:
            return match.group(1)
    raise AssertionError(f"{case_number} is not in this inbox")


def audit_count(services: Services) -> int:
    with session_scope(services.engine) as db:
        return len(db.exec(select(AuditEntry)).all())


def test_another_desks_tip_cannot_be_exported_to_ones_own_key(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    _code, case_number = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [("f.bin", b"F" * 100)])
    owner = browser(client)
    staff_login(owner, account(demo_accounts, desk=PAX_DESK, role="officer"))
    path = tip_path(owner, case_number)
    other_desk = next(a for a in demo_accounts["accounts"] if a["desks"] and PAX_DESK not in a["desks"])
    thief = browser(client)
    thief_inbox = staff_login(thief, other_desk)
    assert case_number not in thief_inbox.text
    key = crypto.X25519Identity.generate()
    before, audited = snapshot(services.engine), audit_count(services)
    for fields in ({"format": "age", "recipient": str(key.recipient)}, {"format": "print"}):
        # A perfect token for the thief's own browser: only reach decides.
        stolen = thief.post(f"{path}/export", data={**fields, "csrf": mint_token(thief, services, "export")})
        assert stolen.status_code == 404, fields
        assert b"age-encryption.org" not in stolen.content and ANSWERS["what"] not in stolen.text
    assert snapshot(services.engine) == before and audit_count(services) == audited


def test_a_file_is_reached_only_under_its_own_tip(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    """An officer who may read two tips still cannot fetch one tip's file under the other's address: the
    file's envelope is bound to its tip (DESIGN 3), and the route checks the pair."""
    _c1, first = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [("a.bin", b"A" * 100)])
    _c2, second = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [("b.bin", b"B" * 100)])
    officer = browser(client)
    staff_login(officer, account(demo_accounts, desk=PAX_DESK, role="officer"))
    first_path, second_path = tip_path(officer, first), tip_path(officer, second)
    second_file = re.search(rf'href="{second_path}/files/([0-9a-f]{{32}})"', officer.get(second_path).text)
    assert second_file
    assert officer.get(f"{second_path}/files/{second_file.group(1)}").content == b"B" * 100
    crossed = officer.get(f"{first_path}/files/{second_file.group(1)}")
    assert crossed.status_code == 404 and b"B" * 100 not in crossed.content


def test_a_tipster_cannot_answer_another_tips_handover_request(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    _victim_code, victim_case = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [])
    attacker_code, _attacker_case = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [])
    officer = browser(client)
    staff_login(officer, account(demo_accounts, desk=PAX_DESK, role="officer"))
    path = tip_path(officer, victim_case)
    page = officer.get(path).text
    target = re.search(r'<select id="handover-desk" name="desk"><option value="(\d+)"', page)
    assert target
    asked = officer.post(
        f"{path}/handover",
        data={"desk": target.group(1), "basis": "consent", "csrf": form_token(page, f"{path}/handover")},
    )
    assert asked.status_code == 200
    with session_scope(services.engine) as db:
        request = db.exec(select(HandOver).where(HandOver.status == "requested")).one()
        request_id = request.id
    attacker = browser(client)
    mailbox = log_in(attacker, "sv", attacker_code)
    assert f'value="{request_id}"' not in mailbox.text  # not offered to them ...
    before = snapshot(services.engine)
    answered = attacker.post(
        "/sv/mailbox/consent",
        data={"request": str(request_id), "decision": "approve", "csrf": mint_resident(attacker, services)},
    )
    assert answered.status_code == 400  # ... and refused when named
    assert snapshot(services.engine) == before
    with session_scope(services.engine) as db:
        assert db.get(HandOver, request_id).status == "requested"  # type: ignore[union-attr]
    assert tip_desks(services, victim_case) == [PAX_DESK]


def mint_resident(client: TestClient, services: Services) -> str:
    cookie = client.cookies.get("lykta_csrf")
    assert cookie
    return services.csrf.issue(cookie, purpose="mailbox-consent")


def test_a_staff_cookie_copied_before_logout_does_nothing_after_it(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    _code, case_number = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [("f.bin", b"F" * 100)])
    officer = browser(client)
    inbox = staff_login(officer, account(demo_accounts, desk=PAX_DESK, role="officer"))
    path = tip_path(officer, case_number)
    file_link = re.search(rf'href="({path}/files/[0-9a-f]{{32}})"', officer.get(path).text)
    assert file_link
    stolen = dict(officer.cookies)  # every cookie, the CSRF cookie too: tokens minted for it are valid
    officer.post("/staff/logout", data={"csrf": form_token(inbox.text, "/staff/logout")})
    thief = browser(client)
    for name, value in stolen.items():
        thief.cookies.set(name, value)
    before = snapshot(services.engine)
    assert thief.get(path, follow_redirects=False).headers.get("location") == "/staff/login"
    assert thief.get(file_link.group(1), follow_redirects=False).headers.get("location") == "/staff/login"
    for action, fields in (
        ("reply", {"text": "from the thief"}),
        ("note", {"text": "from the thief"}),
        ("status", {"status": "closed", "outcome": "no-action"}),
        ("export", {"format": "print"}),
    ):
        response = thief.post(
            f"{path}/{action}",
            data={**fields, "csrf": mint_token(thief, services, action)},
            follow_redirects=False,
        )
        assert response.headers.get("location") == "/staff/login", action
    assert snapshot(services.engine) == before


def test_a_mailbox_cookie_copied_before_logout_sends_nothing_after_it(
    client: TestClient, services: Services
) -> None:
    code, _case = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [])
    tipster = browser(client)
    mailbox = log_in(tipster, "sv", code)
    stolen = dict(tipster.cookies)
    tipster.post("/sv/logout", data={"csrf": form_token(mailbox.text, "/sv/logout")})
    thief = browser(client)
    for name, value in stolen.items():
        thief.cookies.set(name, value)
    with session_scope(services.engine) as db:
        messages = len(db.exec(select(Message)).all())
    token = services.csrf.issue(stolen["lykta_csrf"], purpose="mailbox-reply")
    sent = thief.post(
        "/sv/mailbox/reply",
        data={"message": "from the thief", "csrf": token},
        files={"files": ("", b"", "application/octet-stream")},
        follow_redirects=False,
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/sv/followup"
    with session_scope(services.engine) as db:
        assert len(db.exec(select(Message)).all()) == messages
