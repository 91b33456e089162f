"""What an invited person and their browser do, for tests: be invited, open the link, enrol.

Shared by the enrolment, keyring and CLI tests. TOTP codes are taken at the StaffClock's time
(tests/portal/conftest.py), the clock the login and enrolment checks read.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import httpx
import pyotp
from sqlmodel import select
from starlette.testclient import TestClient

from portal.accounts import enrolment
from portal.accounts import login as login_module
from portal.db import session_scope
from portal.network.models import Desk
from portal.web import Services
from tests.portal.submission.browser import form_token

PASSPHRASE = "amber otter sings quietly at dawn"
PAX_DESK = "pax-ragnhild-bedomning"  # where "other" tips go (portal.network.catalogue); Sara and Karin


def desk_id(services: Services, code: str) -> int:
    with session_scope(services.engine) as db:
        found = db.exec(select(Desk.id).where(Desk.code == code)).one()
        assert found is not None
        return found


def invite(
    services: Services, username: str, *, role: str = "officer", desks: Sequence[str] = (PAX_DESK,)
) -> str:
    """Invite `username` to `desks` as the administration does; the raw token."""
    ids = [desk_id(services, code) for code in desks]
    with session_scope(services.engine) as db:
        return enrolment.invite(
            db, username=username, role=role, organisation_id=None, desk_ids=ids, created_by=None
        )


def shown_secret(page: str) -> str:
    match = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page)
    assert match, "no TOTP secret shown"
    return match.group(1).replace(" ", "")


def signed_field(page: str) -> str:
    match = re.search(r'name="totp" value="([^"]+)"', page)
    assert match
    return html.unescape(match.group(1))


def current_code(secret: str) -> str:
    return str(pyotp.TOTP(secret).at(login_module.time.time()))


def post_enrolment(
    client: TestClient,
    token: str,
    page: str,
    *,
    passphrase: str = PASSPHRASE,
    repeat: str | None = None,
    code: str | None = None,
    **extra: str,
) -> httpx.Response:
    """Fill in the enrolment form of `page` (as shown) and send it."""
    fields = {
        "csrf": form_token(page, f"/staff/enrol/{token}"),
        "totp": signed_field(page),
        "passphrase": passphrase,
        "repeat": passphrase if repeat is None else repeat,
        "code": current_code(shown_secret(page)) if code is None else code,
        **extra,
    }
    return client.post(f"/staff/enrol/{token}", data=fields)


def enrolled_person(
    client: TestClient,
    services: Services,
    username: str,
    *,
    role: str = "officer",
    desks: Sequence[str] = (PAX_DESK,),
) -> dict[str, Any]:
    """Invite and enrol `username`; the same shape as a demo account (for staff_login)."""
    token = invite(services, username, role=role, desks=desks)
    page = client.get(f"/staff/enrol/{token}")
    assert page.status_code == 200, page.text
    done = post_enrolment(client, token, page.text)
    assert done.status_code == 200, done.text
    return {
        "username": username,
        "password": PASSPHRASE,
        "totp_secret": shown_secret(page.text),
        "role": role,
        "desks": list(desks),
    }
