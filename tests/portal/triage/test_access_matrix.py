"""Who gets what on every back-office tip route: role x desk membership (member, other desk, none) and the
logged-out visitor, including direct references to another desk's tips and files (issue 4).

Reach is by key: holding a grant for one of the tip's desks opens it, for officers, desk leads and
administrators alike; analysts never read tips; nobody else learns whether a tip exists (404).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from crypto import Argon2Params
from portal.accounts.models import DeskMembership
from portal.accounts.services import create_account
from portal.db import session_scope
from portal.keyring.models import DeskKeyGrant
from portal.keyring.services import grant_to_staff, open_grant
from portal.network.models import Desk, Organisation
from portal.submission.models import StoredFile, Tip
from portal.web import Services
from tests.portal.submission.browser import ANSWERS, form_token, send_tip
from tests.portal.triage.test_staff_flow import staff_login, tip_desks

ROLES = ("officer", "desk-lead", "administrator", "analyst")
MEMBERSHIPS = ("member", "other-desk", "none")
PASSPHRASE = "a long test passphrase for the matrix"


def make_account(
    services: Services, demo: dict[str, Any], *, role: str, desk_code: str | None, params: Argon2Params
) -> dict[str, Any]:
    """An enrolled account of `role`, holding the key of `desk_code` (granted from the recovery key)."""
    username = f"matrix-{role}-{desk_code or 'none'}"
    with session_scope(services.engine) as db:
        account, _identity, totp = create_account(
            db,
            username=username,
            role=role,
            passphrase=PASSPHRASE,
            signing_key=services.settings.signing_key,
            keywrap_params=params,
        )
        if desk_code is not None:
            desk = db.exec(select(Desk).where(Desk.code == desk_code)).one()
            organisation = db.get(Organisation, desk.organisation_id)
            assert organisation is not None and account.id is not None and account.public_key is not None
            recovery_text = next(
                o["recovery_identity"] for o in demo["organisations"] if o["code"] == organisation.code
            )
            recovery_grant = db.exec(
                select(DeskKeyGrant).where(
                    DeskKeyGrant.desk_id == desk.id, DeskKeyGrant.recovery_organisation_id.is_not(None)
                )  # type: ignore[union-attr]
            ).one()
            import crypto

            desk_identity = open_grant(recovery_grant, desk, crypto.X25519Identity.parse(recovery_text))
            db.add(DeskMembership(desk_id=desk.id, staff_id=account.id))
            grant_to_staff(
                db,
                desk=desk,
                identity=desk_identity,
                staff_id=account.id,
                staff_public_key=account.public_key,
            )
    return {"username": username, "password": PASSPHRASE, "totp_secret": totp}


@pytest.fixture
def scene(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], fast_argon2: Argon2Params
) -> dict[str, Any]:
    _code, case_number = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [("fil.bin", b"F" * 1000)])
    desks = tip_desks(services, case_number)
    with session_scope(services.engine) as db:
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
        stored = db.exec(select(StoredFile).where(StoredFile.tip_id == tip.id)).one()
        other_desk = db.exec(select(Desk).where(Desk.code.not_in(desks))).first()  # type: ignore[attr-defined]
        assert other_desk is not None
    accounts = {
        (role, membership): make_account(
            services,
            demo_accounts,
            role=role,
            params=fast_argon2,
            desk_code={"member": desks[0], "other-desk": other_desk.code, "none": None}[membership],
        )
        for role in ROLES
        for membership in MEMBERSHIPS
    }
    return {"tip": tip.id, "file": stored.id, "accounts": accounts}


def tip_actions(tip: str, file: str) -> dict[str, Callable[[TestClient, str], Any]]:
    """Every tip route, each as a request that succeeds for someone allowed (given the tip page's HTML)."""

    def post(action: str, data: dict[str, str]) -> Callable[[TestClient, str], Any]:
        def send(client: TestClient, page: str) -> Any:
            token = form_token(page, f"/staff/tips/{tip}/{action}") if f'/{action}"' in page else "none"
            return client.post(
                f"/staff/tips/{tip}/{action}", data={**data, "csrf": token}, follow_redirects=False
            )

        return send

    return {
        "view": lambda client, _page: client.get(f"/staff/tips/{tip}", follow_redirects=False),
        "file": lambda client, _page: client.get(f"/staff/tips/{tip}/files/{file}", follow_redirects=False),
        "reply": post("reply", {"text": "svar"}),
        "note": post("note", {"text": "anteckning"}),
        "status": post("status", {"status": "in-progress"}),
        "assign": post("assign", {"assignee": ""}),
        "labels": post("labels", {"label": "urgent"}),
        "handover": post("handover", {"desk": "1", "basis": "consent"}),
        "export": post("export", {"format": "print"}),
        "hold": post("hold", {"action": "set", "reference": "AM-123456-26"}),
    }


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("membership", MEMBERSHIPS)
def test_tip_routes(client: TestClient, scene: dict[str, Any], role: str, membership: str) -> None:
    staff_login(client, scene["accounts"][(role, membership)])
    allowed = membership == "member" and role != "analyst"
    page = client.get(f"/staff/tips/{scene['tip']}").text
    inbox = client.get("/staff/").text
    assert (scene["tip"] in inbox) is allowed
    for name, action in tip_actions(scene["tip"], scene["file"]).items():
        response = action(client, page)
        if allowed:
            assert response.status_code in (200, 303), (name, response.status_code)
        else:
            assert response.status_code == 404, (name, response.status_code)
            assert ANSWERS["what"] not in response.text


def test_logged_out_visitors_are_sent_to_log_in(client: TestClient, scene: dict[str, Any]) -> None:
    client.cookies.clear()
    for name, action in tip_actions(scene["tip"], scene["file"]).items():
        response = action(client, "")
        assert response.status_code == 303 and response.headers["location"] == "/staff/login", name
    for path in ("/staff/", "/staff/intake"):
        assert client.get(path, follow_redirects=False).headers["location"] == "/staff/login"


def test_every_post_needs_its_form_token(client: TestClient, scene: dict[str, Any]) -> None:
    staff_login(client, scene["accounts"][("officer", "member")])
    page = client.get(f"/staff/tips/{scene['tip']}").text
    for name, action in tip_actions(scene["tip"], scene["file"]).items():
        if name in ("view", "file"):
            continue
        forged = action(client, page.replace('name="csrf" value="', 'name="csrf" value="x'))
        assert forged.status_code == 400, name
    assert client.post("/staff/intake", data={**ANSWERS, "csrf": "forged"}).status_code == 200  # form again
    assert 'id="reply-code"' not in client.post("/staff/intake", data={**ANSWERS, "csrf": "forged"}).text


def test_a_tip_id_or_file_id_of_another_tip_opens_nothing(client: TestClient, scene: dict[str, Any]) -> None:
    staff_login(client, scene["accounts"][("officer", "member")])
    assert client.get(f"/staff/tips/{'0' * 32}").status_code == 404
    assert client.get(f"/staff/tips/{scene['tip']}/files/{'0' * 32}").status_code == 404
    assert client.get(f"/staff/tips/{scene['tip']}/files/../../etc").status_code == 404
    assert re.fullmatch(r"[0-9a-f]{32}", scene["tip"])


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'><a href="javascript:alert(2)">'


def test_markup_in_every_field_is_inert_on_every_staff_page(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    answers = {k: HOSTILE for k in ("what", "when", "where", "who", "contact")}
    _code, case_number = send_tip(
        client, "sv", {**ANSWERS, **answers, "category": "other"}, [(f"{HOSTILE}.txt", b"body")]
    )
    officer = next(a for a in demo_accounts["accounts"] if tip_desks(services, case_number)[0] in a["desks"])
    staff_login(client, officer)
    inbox = client.get("/staff/").text
    tip_url = re.search(r'href="(/staff/tips/[0-9a-f]{32})"', inbox)
    assert tip_url
    page = client.get(tip_url.group(1)).text
    client.post(
        f"{tip_url.group(1)}/reply",
        data={"text": HOSTILE, "csrf": form_token(page, f"{tip_url.group(1)}/reply")},
    )
    client.post(
        f"{tip_url.group(1)}/note",
        data={"text": HOSTILE, "csrf": form_token(page, f"{tip_url.group(1)}/note")},
    )
    page = client.get(tip_url.group(1)).text
    printed = client.post(
        f"{tip_url.group(1)}/export",
        data={"format": "print", "csrf": form_token(page, f"{tip_url.group(1)}/export")},
    ).text
    for html in (inbox, page, printed):
        assert "<script>alert" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
        assert 'href="javascript:' not in html
    assert page.count("&lt;script&gt;alert(") >= 7  # five answers, the reply and the note, all shown escaped
