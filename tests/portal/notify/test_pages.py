"""The settings page each staff member has, and what administrators see: addresses, and failures without
content. Every change is a POST with a form token; a bad form changes nothing."""

from __future__ import annotations

import html
from typing import Any

from sqlmodel import col, select
from starlette.testclient import TestClient

from portal import i18n
from portal.db import session_scope
from portal.notify.models import DIGEST, EACH, FAILED, OFF, PENDING, Notification, NotificationSetting
from portal.web import Services
from tests.portal.notify.conftest import choose
from tests.portal.notify.test_sender import SARA, send_canary_tip
from tests.portal.submission.browser import form_token
from tests.portal.triage.test_staff_flow import staff_login

ADMIN = "ingrid.administrator"


def setting(services: Services, staff_id: int) -> NotificationSetting | None:
    with session_scope(services.engine) as db:
        return db.get(NotificationSetting, staff_id)


def statuses(services: Services) -> list[tuple[str, int]]:
    with session_scope(services.engine) as db:
        rows = db.exec(select(Notification).order_by(col(Notification.id)))
        return [(row.status, row.attempts) for row in rows]


def save(client: TestClient, **fields: str) -> Any:
    page = client.get("/staff/notifications")
    assert page.status_code == 200
    return client.post(
        "/staff/notifications",
        data={"csrf": form_token(page.text, "/staff/notifications"), **fields},
        follow_redirects=False,
    )


def test_a_staff_member_chooses_their_own_address_and_mode(
    client: TestClient, services: Services, demo_by_name: dict[str, Any]
) -> None:
    assert client.get("/staff/notifications", follow_redirects=False).status_code == 303  # logged out
    staff_login(client, demo_by_name[SARA])
    page = client.get("/staff/")
    assert 'href="/staff/notifications"' in page.text

    saved = save(client, email="  sara@pax.example ", mode=DIGEST)
    assert saved.status_code == 303
    shown = client.get(saved.headers["location"])
    assert 'value="sara@pax.example"' in shown.text and 'value="digest" checked' in shown.text
    sara_id = choose_id(services, SARA)
    row = setting(services, sara_id)
    assert row is not None and (row.email, row.mode) == ("sara@pax.example", DIGEST)
    assert row.digest_sent_at is not None  # the first digest waits for the next morning

    assert save(client, email="", mode=OFF).status_code == 303
    row = setting(services, sara_id)
    assert row is not None and (row.email, row.mode) == ("", OFF)


def choose_id(services: Services, username: str) -> int:
    from portal.accounts.models import StaffAccount

    with session_scope(services.engine) as db:
        account = db.exec(select(StaffAccount).where(StaffAccount.username == username)).one()
        assert account.id is not None
        return account.id


def test_bad_forms_change_nothing(
    client: TestClient, services: Services, demo_by_name: dict[str, Any]
) -> None:
    staff_login(client, demo_by_name[SARA])
    assert save(client, email="sara@pax.example", mode=EACH).status_code == 303
    sara_id = choose_id(services, SARA)
    for fields in [
        {"email": "not an address", "mode": EACH},
        {"email": "a@b.se, boss@evil.example", "mode": EACH},  # a second recipient
        {"email": "a@b.se\r\nBcc: boss@evil.example", "mode": EACH},  # a header of its own
        {"email": "", "mode": EACH},  # e-mail wanted, but to where?
        {"email": "x@y.example", "mode": "hourly"},
        {"email": "x" * 250 + "@y.example", "mode": EACH},
    ]:
        refused = save(client, **fields)
        assert refused.status_code == 400, fields
        assert 'class="field-error"' in refused.text
        row = setting(services, sara_id)
        assert row is not None and (row.email, row.mode) == ("sara@pax.example", EACH)
    # Without the form's token: refused, and nothing changes either.
    refused = client.post("/staff/notifications", data={"email": "x@y.example", "mode": OFF})
    assert refused.status_code == 400
    row = setting(services, sara_id)
    assert row is not None and row.mode == EACH


def test_administrators_see_addresses_and_failures_without_content(
    client: TestClient, services: Services, demo_by_name: dict[str, Any]
) -> None:
    sara_id = choose(services, SARA, mode=EACH, email="sara@pax.example")
    _, case_number = send_canary_tip(client)
    with session_scope(services.engine) as db:
        [row] = db.exec(select(Notification)).all()
        row.status, row.attempts, row.last_error = FAILED, 8, "SMTPDataError"
        db.add(row)
        retrying = Notification(
            kind="tipster-answered", staff_id=sara_id, desk_id=row.desk_id, tip_id=row.tip_id,
            attempts=2, last_error="ConnectionRefusedError",
        )  # fmt: skip
        db.add(retrying)

    # An officer gets the staff app's 404 for the administrators' page, as for any address under /admin/.
    staff_login(client, demo_by_name[SARA])
    assert client.get("/staff/admin/notifications").status_code == 404
    client.cookies.clear()

    staff_login(client, demo_by_name[ADMIN])
    overview = client.get("/staff/admin/")
    assert 'id="notification-problems"' in overview.text
    assert 'href="/staff/admin/notifications"' in overview.text
    page = client.get("/staff/admin/notifications")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert SARA in text and "sara@pax.example" in text
    assert "SMTPDataError" in text and "ConnectionRefusedError" in text
    assert case_number not in text  # no case, no desk, no content: only who, what kind, how often, why

    path = "/staff/admin/notifications/retry"
    assert client.post(path, data={}).status_code == 400  # no token: nothing retried
    assert statuses(services) == [(FAILED, 8), (PENDING, 2)]
    retried = client.post(path, data={"csrf": form_token(page.text, path)}, follow_redirects=False)
    assert retried.status_code == 303
    assert statuses(services) == [(PENDING, 0), (PENDING, 2)]
    assert 'id="notification-problems"' in client.get("/staff/admin/").text  # one is still being retried


def test_no_problem_no_banner(client: TestClient, services: Services, demo_by_name: dict[str, Any]) -> None:
    staff_login(client, demo_by_name[ADMIN])
    assert 'id="notification-problems"' not in client.get("/staff/admin/").text
    page = client.get("/staff/admin/notifications").text
    # The administrator reads the back office in their own language (sv in the demo network).
    language = page.split('<html lang="', 1)[1].split('"', 1)[0]
    staff = i18n.load_translations(i18n.BY_CODE[language], domain=i18n.STAFF_DOMAIN)
    assert staff.gettext("Nobody has given an e-mail address yet.") in page


def test_only_administrators_reach_the_admin_routes(
    client: TestClient, services: Services, demo_by_name: dict[str, Any]
) -> None:
    choose(services, SARA, mode=EACH)
    send_canary_tip(client)
    with session_scope(services.engine) as db:
        [row] = db.exec(select(Notification)).all()
        row.status, row.attempts = FAILED, 8
        db.add(row)
    client.cookies.clear()
    client.get("/staff/login")
    for method, path in [("GET", "/staff/admin/notifications"), ("POST", "/staff/admin/notifications/retry")]:
        answer = client.request(method, path, follow_redirects=False)
        assert (answer.status_code, answer.headers.get("location")) == (303, "/staff/login")
    for name in (SARA, "karin.lead.pax-ragnhild", "per.analyst"):
        client.cookies.clear()
        staff_login(client, demo_by_name[name])
        page = client.get("/staff/notifications")
        token = form_token(page.text, "/staff/notifications")  # a good token, for the wrong purpose
        unknown = client.get("/staff/admin/no-such-page")
        assert client.get("/staff/admin/notifications").text == unknown.text
        refused = client.post("/staff/admin/notifications/retry", data={"csrf": token})
        assert refused.status_code == 404 and refused.text == unknown.text
    assert statuses(services) == [(FAILED, 8)]
