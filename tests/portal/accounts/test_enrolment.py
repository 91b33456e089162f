"""An invited person opens their one-time link, sets a passphrase and an authenticator, and logs in (issue 4).

A link works once, for 72 hours; anything the person gets wrong is said in their language, tied to the
field, and leaves nothing written; the code that proved the authenticator cannot be used to log in.
"""

from __future__ import annotations

import datetime
import html
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select
from starlette.testclient import TestClient

import crypto
from portal.accounts import enrolment, passphrases
from portal.accounts import login as login_module
from portal.accounts.models import DeskMembership, StaffAccount, StaffInvite
from portal.accounts.services import open_totp_secret
from portal.audit.models import AuditEntry
from portal.db import session_scope, utcnow
from portal.web import Services
from tests.portal.accounts.people import (
    PASSPHRASE,
    PAX_DESK,
    current_code,
    desk_id,
    invite,
    post_enrolment,
    shown_secret,
    signed_field,
)
from tests.portal.submission.browser import form_token
from tests.portal.triage.test_staff_flow import staff_login

INVALID_PAGE = "This link does not work"


def staff_text(services: Services, lang: str, msgid: str, **variables: object) -> str:
    """What a staff page in `lang` must say for `msgid`: the staff catalog's translation, filled in."""
    text = services.extras["staff_renderer"].translations[lang].gettext(msgid)
    return text % variables if variables else text


def snapshot(services: Services, username: str) -> dict[str, Any]:
    """Everything enrolment may change: the account's keys and factor, its invites, the audit entries."""
    with session_scope(services.engine) as db:
        account = db.exec(select(StaffAccount).where(StaffAccount.username == username)).one()
        return {
            "public_key": account.public_key,
            "wrapped": account.wrapped_private_key,
            "totp": account.totp_secret_sealed,
            "last_step": account.totp_last_step,
            "enrolled_at": account.enrolled_at,
            "used": [
                i.used_at for i in db.exec(select(StaffInvite).where(StaffInvite.staff_id == account.id))
            ],
            "audit": db.exec(select(func.count()).select_from(AuditEntry)).one(),
        }


def test_invite_enrol_and_log_in(client: TestClient, services: Services) -> None:
    token = invite(services, "nora.officer")
    client.cookies.set("lykta_staff_lang", "en")
    page = client.get(f"/staff/enrol/{token}")
    assert page.status_code == 200
    assert "<svg" in page.text and 'class="segno"' in page.text  # the QR code is inline: no image request
    assert "nora.officer" in page.text
    secret = shown_secret(page.text)
    done = post_enrolment(client, token, page.text)
    assert done.status_code == 200
    assert 'action="/staff/login"' in done.text

    pax = desk_id(services, PAX_DESK)
    with session_scope(services.engine) as db:
        account = db.exec(select(StaffAccount).where(StaffAccount.username == "nora.officer")).one()
        assert account.public_key is not None and account.public_key.startswith("age1")
        assert account.wrapped_private_key is not None and account.enrolled_at is not None
        assert account.totp_secret_sealed is not None
        assert (
            open_totp_secret(account.totp_secret_sealed, signing_key=services.settings.signing_key) == secret
        )
        assert account.language == "en"  # the language the person enrolled in
        identity = crypto.X25519Identity(crypto.unwrap_secret(account.wrapped_private_key, PASSPHRASE))
        assert str(identity.recipient) == account.public_key
        invite_row = db.exec(select(StaffInvite).where(StaffInvite.staff_id == account.id)).one()
        assert invite_row.used_at is not None
        assert db.exec(select(AuditEntry).where(AuditEntry.action == "staff.enrolled")).one().actor == (
            f"staff:{account.id}"
        )
        assert db.get(DeskMembership, (pax, account.id)) is not None

    client.cookies.clear()
    person = {"username": "nora.officer", "password": PASSPHRASE, "totp_secret": secret}
    inbox = staff_login(client, person)  # the StaffClock moves on 30 s: a fresh code
    assert inbox.url.path == "/staff/"
    assert inbox.status_code == 200


def test_the_enrolment_code_cannot_log_in(client: TestClient, services: Services) -> None:
    token = invite(services, "nora.officer")
    page = client.get(f"/staff/enrol/{token}")
    code = current_code(shown_secret(page.text))
    assert post_enrolment(client, token, page.text, code=code).status_code == 200
    client.cookies.clear()
    person = {"username": "nora.officer", "password": PASSPHRASE, "totp_secret": shown_secret(page.text)}
    replayed = staff_login(client, person, code=code)
    assert replayed.status_code == 400
    assert replayed.url.path == "/staff/login"


def test_a_used_link_does_not_work_again(client: TestClient, services: Services) -> None:
    client.cookies.set("lykta_staff_lang", "en")  # the assertions read the English wording
    token = invite(services, "nora.officer")
    page = client.get(f"/staff/enrol/{token}")
    assert post_enrolment(client, token, page.text).status_code == 200
    before = snapshot(services, "nora.officer")
    again = client.get(f"/staff/enrol/{token}")
    assert again.status_code == 404 and INVALID_PAGE in again.text
    # Posting the old page once more (another passphrase) changes nothing either.
    login_module.time.now += 30  # a fresh code: only the link is at fault
    replay = post_enrolment(client, token, page.text, passphrase="another quite long passphrase here")
    assert replay.status_code == 404 and INVALID_PAGE in replay.text
    assert snapshot(services, "nora.officer") == before


def test_an_expired_link_does_not_work(client: TestClient, services: Services) -> None:
    client.cookies.set("lykta_staff_lang", "en")  # the assertions read the English wording
    token = invite(services, "nora.officer")
    page = client.get(f"/staff/enrol/{token}")
    with session_scope(services.engine) as db:
        row = db.exec(select(StaffInvite).where(StaffInvite.token_hash == enrolment.token_hash(token))).one()
        assert row.expires_at - utcnow() > datetime.timedelta(hours=71)
        row.expires_at = utcnow() - datetime.timedelta(seconds=1)
        db.add(row)
    before = snapshot(services, "nora.officer")
    assert client.get(f"/staff/enrol/{token}").status_code == 404
    refused = post_enrolment(client, token, page.text)
    assert refused.status_code == 404 and INVALID_PAGE in refused.text
    assert snapshot(services, "nora.officer") == before
    assert before["public_key"] is None


def test_a_wrong_link_shows_the_invalid_page(client: TestClient, services: Services) -> None:
    client.cookies.set("lykta_staff_lang", "en")  # the assertions read the English wording
    token = invite(services, "nora.officer")
    before = snapshot(services, "nora.officer")
    for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), "x", "a" * 200):
        response = client.get(f"/staff/enrol/{wrong}")
        assert response.status_code == 404
        assert INVALID_PAGE in response.text
        assert "nora.officer" not in response.text
    page = client.get(f"/staff/enrol/{token}")
    forged = client.post(
        f"/staff/enrol/{token}x",
        data={"csrf": form_token(page.text, f"/staff/enrol/{token}"), "totp": signed_field(page.text),
              "passphrase": PASSPHRASE, "repeat": PASSPHRASE, "code": current_code(shown_secret(page.text))},
    )  # fmt: skip
    assert forged.status_code == 404
    assert snapshot(services, "nora.officer") == before


@pytest.mark.parametrize(
    ("passphrase", "repeat", "field", "msgid", "limit"),
    [
        ("short words", None, "passphrase", passphrases.ERROR_TOO_SHORT, passphrases.MIN_LENGTH),
        ("correct horse battery staple", None, "passphrase", passphrases.ERROR_COMMON, None),
        ("I am Nora.Officer on duty today", None, "passphrase", passphrases.ERROR_CONTAINS_USERNAME, None),
        (PASSPHRASE, PASSPHRASE + "!", "repeat", passphrases.ERROR_MISMATCH, None),
    ],
    ids=["short", "common", "username", "mismatch"],
)
@pytest.mark.parametrize("lang", ["sv", "fi"])
def test_passphrase_policy_is_explained_and_nothing_is_written(
    client: TestClient,
    services: Services,
    lang: str,
    passphrase: str,
    repeat: str | None,
    field: str,
    msgid: str,
    limit: int | None,
) -> None:
    token = invite(services, "nora.officer")
    client.cookies.set("lykta_staff_lang", lang)
    page = client.get(f"/staff/enrol/{token}")
    before = snapshot(services, "nora.officer")
    refused = post_enrolment(client, token, page.text, passphrase=passphrase, repeat=repeat)
    assert refused.status_code == 400
    shown = html.unescape(refused.text)
    message = staff_text(services, lang, msgid, **({"limit": limit} if limit else {}))
    assert f'<p class="field-error" id="{field}-error">' in refused.text
    assert message in shown
    assert (
        f'id="{field}"' in refused.text
        and f"{field}-error" in refused.text.split(f'id="{field}"', 1)[1][:400]
    )
    # The passphrases are not sent back; the authenticator set-up is kept (the app already has the key).
    assert passphrase not in shown
    assert shown_secret(refused.text) == shown_secret(page.text)
    assert snapshot(services, "nora.officer") == before
    assert before["public_key"] is None and before["used"] == [None]


def test_a_wrong_totp_code_is_refused_and_nothing_is_written(client: TestClient, services: Services) -> None:
    token = invite(services, "nora.officer")
    page = client.get(f"/staff/enrol/{token}")
    before = snapshot(services, "nora.officer")
    right = current_code(shown_secret(page.text))
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    refused = post_enrolment(client, token, page.text, code=wrong)
    assert refused.status_code == 400
    assert staff_text(services, "sv", enrolment.ERROR_TOTP_CODE) in html.unescape(refused.text)
    assert 'id="code-error"' in refused.text
    assert snapshot(services, "nora.officer") == before
    # The page still works with the right code afterwards.
    assert post_enrolment(client, token, refused.text).status_code == 200


def test_a_secret_signed_for_another_link_is_refused(client: TestClient, services: Services) -> None:
    mine = invite(services, "nora.officer")
    other = invite(services, "olof.officer")
    other_page = client.get(f"/staff/enrol/{other}").text
    page = client.get(f"/staff/enrol/{mine}").text
    before = snapshot(services, "nora.officer")
    # An attacker's own secret (from another invitation) slipped into this form.
    refused = post_enrolment(
        client, mine, page, totp=signed_field(other_page), code=current_code(shown_secret(other_page))
    )
    assert refused.status_code == 400
    assert staff_text(services, "sv", enrolment.ERROR_TOTP_EXPIRED) in html.unescape(refused.text)
    assert shown_secret(refused.text) not in (shown_secret(page), shown_secret(other_page))
    assert snapshot(services, "nora.officer") == before


def test_without_a_form_token_nothing_is_written(client: TestClient, services: Services) -> None:
    token = invite(services, "nora.officer")
    page = client.get(f"/staff/enrol/{token}")
    before = snapshot(services, "nora.officer")
    refused = client.post(
        f"/staff/enrol/{token}",
        data={"totp": signed_field(page.text), "passphrase": PASSPHRASE, "repeat": PASSPHRASE,
              "code": current_code(shown_secret(page.text))},
    )  # fmt: skip
    assert refused.status_code == 400
    assert snapshot(services, "nora.officer") == before


def test_a_reset_authenticator_is_enrolled_again_with_the_same_keys(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    anna = next(a for a in demo_accounts["accounts"] if a["username"] == "anna.officer.sodertalje")
    with session_scope(services.engine) as db:
        account = db.exec(select(StaffAccount).where(StaffAccount.username == anna["username"])).one()
        assert account.id is not None
        account.totp_secret_sealed = None  # what the administration's reset does
        db.add(account)
        token = enrolment.reenrol(db, staff_id=account.id, created_by=None)
    before = snapshot(services, anna["username"])
    page = client.get(f"/staff/enrol/{token}")
    assert page.status_code == 200
    assert 'id="repeat"' not in page.text  # no new passphrase: the current one proves it is Anna
    wrong = post_enrolment(client, token, page.text, passphrase="not the passphrase of anna at all")
    assert wrong.status_code == 400
    assert staff_text(services, "sv", enrolment.ERROR_WRONG_PASSPHRASE) in html.unescape(wrong.text)
    assert snapshot(services, anna["username"]) == before
    done = post_enrolment(client, token, wrong.text, passphrase=anna["password"])
    assert done.status_code == 200
    after = snapshot(services, anna["username"])
    assert after["public_key"] == before["public_key"] and after["wrapped"] == before["wrapped"]
    client.cookies.clear()
    renewed = {**anna, "totp_secret": shown_secret(wrong.text)}
    assert staff_login(client, renewed).url.path == "/staff/"
    client.cookies.clear()
    assert staff_login(client, anna).status_code == 400  # the old authenticator no longer works


def test_invite_refuses_what_it_cannot_make(services: Services) -> None:
    invite(services, "nora.officer")
    with session_scope(services.engine) as db:
        count = db.exec(select(func.count()).select_from(StaffAccount)).one()
    for username, role, desks in [
        ("nora.officer", "officer", []),  # taken
        ("Nora Officer", "officer", []),
        ("olof.officer", "chief", []),
        ("olof.officer", "officer", [999_999]),
    ]:
        with session_scope(services.engine) as db, pytest.raises(enrolment.InviteError):
            enrolment.invite(
                db, username=username, role=role, organisation_id=None, desk_ids=desks, created_by=None
            )
    with session_scope(services.engine) as db:
        assert db.exec(select(func.count()).select_from(StaffAccount)).one() == count
