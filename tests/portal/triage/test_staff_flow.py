"""An officer logs in with passphrase and TOTP, reads a tip routed to their desk, answers it; the tipster
reads the answer. Officers of other desks and administrators without a grant see nothing."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
from starlette.testclient import TestClient

from portal.accounts import login as login_module
from portal.web import Services
from tests.portal.submission.browser import ANSWERS, form_token, send_tip


def account(
    demo_accounts: dict[str, Any], *, desk: str | None = None, role: str | None = None
) -> dict[str, Any]:
    for candidate in demo_accounts["accounts"]:
        if (desk is None or desk in candidate["desks"]) and (role is None or candidate["role"] == role):
            return candidate  # type: ignore[no-any-return]
    raise LookupError((desk, role))


def staff_login(client: TestClient, who: dict[str, Any], *, code: str | None = None) -> Any:
    page = client.get("/staff/login")
    return client.post(
        "/staff/login",
        data={
            "username": who["username"],
            "passphrase": who["password"],
            # tests/portal/conftest.py puts a StaffClock in place of the login module's time.
            "code": code or login_module.time.next_code(who["totp_secret"]),
            "csrf": form_token(page.text, "/staff/login"),
        },
    )


def tip_desks(services: Services, case_number: str) -> list[str]:
    from sqlmodel import select

    from portal.db import session_scope
    from portal.network.models import Desk
    from portal.submission.models import Tip, TipRecipient

    with session_scope(services.engine) as db:
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
        return [d.code for d in db.exec(select(Desk).join(TipRecipient).where(TipRecipient.tip_id == tip.id))]


def test_officer_reads_and_answers_a_tip(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    code, case_number = send_tip(
        client, "sv", {**ANSWERS, "category": "other"}, [("foto.bin", b"C" * 70_000)]
    )
    desk = tip_desks(services, case_number)[0]
    officer = account(demo_accounts, desk=desk)
    inbox = staff_login(client, officer)
    assert inbox.status_code == 200
    assert case_number in inbox.text
    link = re.search(r'href="(/staff/tips/[0-9a-f]{32})"', inbox.text)
    assert link
    tip = client.get(link.group(1))
    assert ANSWERS["what"] in tip.text
    download = re.search(r'href="(/staff/tips/[0-9a-f]{32}/files/[0-9a-f]{32})"', tip.text)
    assert download
    file_response = client.get(download.group(1))
    assert file_response.content == b"C" * 70_000
    assert file_response.headers["content-disposition"].startswith("attachment;")
    answered = client.post(
        f"{link.group(1)}/reply",
        data={"text": "Tack! Vilken tid på kvällen?", "csrf": form_token(tip.text, f"{link.group(1)}/reply")},
    )
    assert "Tack! Vilken tid på kvällen?" in answered.text

    # The tipster logs in with the reply code and reads the answer.
    client.cookies.clear()
    login = client.get("/sv/followup")
    mailbox = client.post(
        "/sv/followup", data={"reply_code": code, "csrf": form_token(login.text, "/sv/followup")}
    )
    assert "Tack! Vilken tid på kvällen?" in mailbox.text


def test_other_desks_and_administrators_see_nothing(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    _code, case_number = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [])
    desks = tip_desks(services, case_number)
    outsider = next(a for a in demo_accounts["accounts"] if a["desks"] and not set(a["desks"]) & set(desks))
    administrator = account(demo_accounts, role="administrator")
    insider = account(demo_accounts, desk=desks[0])
    staff_login(client, insider)
    tip_url = re.search(r'href="(/staff/tips/[0-9a-f]{32})"', client.get("/staff/").text)
    assert tip_url
    for who in (outsider, administrator):
        client.cookies.clear()
        inbox = staff_login(client, who)
        assert case_number not in inbox.text
        response = client.get(tip_url.group(1))
        assert response.status_code == 404
        assert ANSWERS["what"] not in response.text


def test_a_totp_code_cannot_be_replayed(client: TestClient, demo_accounts: dict[str, Any]) -> None:
    officer = account(demo_accounts, role="officer")
    code = pyotp.TOTP(officer["totp_secret"]).at(login_module.time.time())
    assert staff_login(client, officer, code=code).url.path == "/staff/"
    client.cookies.clear()
    again = staff_login(client, officer, code=code)
    assert again.status_code == 400
    assert "/staff/login" in again.text


def test_logout_ends_the_session_for_a_copied_cookie(
    client: TestClient, demo_accounts: dict[str, Any]
) -> None:
    officer = account(demo_accounts, role="officer")
    inbox = staff_login(client, officer)
    stolen = dict(client.cookies)
    client.post("/staff/logout", data={"csrf": form_token(inbox.text, "/staff/logout")})
    client.cookies.clear()
    for name, value in stolen.items():
        client.cookies.set(name, value)
    assert client.get("/staff/", follow_redirects=False).status_code == 303


def test_canned_reply_in_the_tipsters_language_and_labels(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    from portal import i18n
    from portal.demo import CANNED_REPLIES

    _code, case_number = send_tip(client, "pl", {**ANSWERS, "category": "other"}, [])
    staff_login(client, account(demo_accounts, desk=tip_desks(services, case_number)[0]))
    tip_url = re.search(r'href="(/staff/tips/[0-9a-f]{32})"', client.get("/staff/").text)
    assert tip_url
    page = client.get(tip_url.group(1))
    canned_id = re.search(r'<option value="(\d+)">Ask for details</option>', page.text)
    assert canned_id
    with_draft = client.get(f"{tip_url.group(1)}?canned={canned_id.group(1)}")
    polish = i18n.load_translations(i18n.BY_CODE["pl"]).gettext(CANNED_REPLIES[1][2])
    assert polish in with_draft.text
    token = form_token(with_draft.text, f"{tip_url.group(1)}/labels")
    client.post(f"{tip_url.group(1)}/labels", content=f"csrf={token}&label=urgent&label=repeat&label=bogus",
                headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    labelled = client.get(tip_url.group(1)).text
    assert 'value="urgent" checked' in labelled and 'value="repeat" checked' in labelled
    assert "bogus" not in labelled


def test_passphrase_guessing_is_throttled_per_account(
    client: TestClient, demo_accounts: dict[str, Any]
) -> None:
    from portal.triage.views import LOGIN_PER_ACCOUNT_PER_MINUTE

    officer = account(demo_accounts, role="officer")
    for _ in range(LOGIN_PER_ACCOUNT_PER_MINUTE):
        assert staff_login(client, {**officer, "password": "wrong guess of a passphrase"}).status_code == 400
    # The budget is spent: even the right passphrase and code wait for the next minute.
    throttled = staff_login(client, officer)
    assert throttled.status_code == 429
    # Another account is not locked out by guesses against this one.
    other = next(a for a in demo_accounts["accounts"] if a["username"] != officer["username"])
    assert staff_login(client, other).url.path == "/staff/"


def test_unknown_users_cost_the_same_argon2_work(
    client: TestClient, demo_accounts: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import crypto
    from portal.accounts import login

    calls: list[str] = []
    real_unwrap = crypto.unwrap_secret

    def counting_unwrap(blob: bytes, passphrase: str) -> bytes:
        calls.append("unwrap")
        return real_unwrap(blob, passphrase)

    monkeypatch.setattr(login.crypto, "unwrap_secret", counting_unwrap)
    staff_login(
        client,
        {"username": "nobody-here", "password": "whatever it is", "totp_secret": pyotp.random_base32()},
    )
    staff_login(client, {**account(demo_accounts, role="officer"), "password": "a wrong passphrase!"})
    assert calls == ["unwrap", "unwrap"]


def test_a_failed_login_never_logs_what_was_typed(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    from sqlmodel import select

    from portal.audit.models import AuditEntry
    from portal.db import session_scope

    # Someone types their passphrase into the username field.
    staff_login(
        client, {"username": "my secret passphrase 42", "password": "x", "totp_secret": pyotp.random_base32()}
    )
    with session_scope(services.engine) as db:
        failures = db.exec(select(AuditEntry).where(AuditEntry.action == "staff.login-failed")).all()
    assert failures and all("my secret passphrase 42" not in str(entry.detail) for entry in failures)
    assert failures[-1].detail == {"account": None}
