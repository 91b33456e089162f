"""Hand-over both ways: on the tipster's consent (the tipster key adds the desk) and on a legal basis (the
desk key adds it). Afterwards the new desk decrypts everything and the tipster still reads every reply."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from portal.db import session_scope
from portal.network.models import Desk
from portal.submission.models import HandOver, StoredFile, Tip
from portal.web import Services
from tests.portal.submission.browser import ANSWERS, form_token, send_tip
from tests.portal.triage.test_staff_flow import account, staff_login, tip_desks


def desk_with_officer(demo_accounts: dict[str, Any], exclude: list[str]) -> tuple[str, dict[str, Any]]:
    for candidate in demo_accounts["accounts"]:
        for desk in candidate["desks"]:
            if desk not in exclude:
                return desk, candidate
    raise LookupError("no other desk with an officer")


def open_mailbox(client: TestClient, code: str) -> str:
    client.cookies.clear()
    login = client.get("/sv/followup")
    return client.post(
        "/sv/followup", data={"reply_code": code, "csrf": form_token(login.text, "/sv/followup")}
    ).text


@pytest.mark.parametrize("basis", ["consent", "legal-basis"])
def test_hand_over(client: TestClient, services: Services, demo_accounts: dict[str, Any], basis: str) -> None:
    code, case_number = send_tip(
        client, "sv", {**ANSWERS, "category": "other"}, [("bild.bin", b"D" * 90_000)]
    )
    original_desks = tip_desks(services, case_number)
    officer = account(demo_accounts, desk=original_desks[0])
    target_code, target_officer = desk_with_officer(demo_accounts, original_desks)
    with session_scope(services.engine) as db:
        target = db.exec(select(Desk).where(Desk.code == target_code)).one()
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
        chunks_before = [
            (f.id, f.chunk_count) for f in db.exec(select(StoredFile).where(StoredFile.tip_id == tip.id))
        ]

    # Before: the other desk's officer cannot open the tip.
    client.cookies.clear()
    staff_login(client, target_officer)
    assert client.get(f"/staff/tips/{tip.id}").status_code == 404

    client.cookies.clear()
    staff_login(client, officer)
    page = client.get(f"/staff/tips/{tip.id}")
    form = {
        "desk": str(target.id),
        "basis": basis,
        "csrf": form_token(page.text, f"/staff/tips/{tip.id}/handover"),
    }
    if basis == "legal-basis":
        refused = client.post(f"/staff/tips/{tip.id}/handover", data={**form, "legal_basis": "  "})
        assert refused.status_code == 400
        form["legal_basis"] = "OSL 10 kap. 2 §"
    client.post(f"/staff/tips/{tip.id}/handover", data=form)
    replied = client.get(f"/staff/tips/{tip.id}")
    client.post(
        f"/staff/tips/{tip.id}/reply",
        data={
            "text": "Vi har en fråga till.",
            "csrf": form_token(replied.text, f"/staff/tips/{tip.id}/reply"),
        },
    )

    if basis == "consent":
        # Not shared until the tipster agrees: the other desk still sees nothing.
        client.cookies.clear()
        staff_login(client, target_officer)
        assert client.get(f"/staff/tips/{tip.id}").status_code == 404
        mailbox = open_mailbox(client, code)
        assert target.name in mailbox
        request_id = re.search(r'name="request" value="(\d+)"', mailbox)
        assert request_id
        client.post(
            "/sv/mailbox/consent",
            data={
                "request": request_id.group(1),
                "decision": "approve",
                "csrf": form_token(mailbox, "/sv/mailbox/consent"),
            },
        )

    with session_scope(services.engine) as db:
        handover = db.exec(select(HandOver).where(HandOver.tip_id == tip.id)).one()
        assert handover.status == "done"
        # Only headers were rewritten: every file keeps its chunks.
        after = [
            (f.id, f.chunk_count) for f in db.exec(select(StoredFile).where(StoredFile.tip_id == tip.id))
        ]
        assert after == chunks_before

    client.cookies.clear()
    staff_login(client, target_officer)
    opened = client.get(f"/staff/tips/{tip.id}")
    assert opened.status_code == 200
    assert ANSWERS["what"] in opened.text and "Vi har en fråga till." in opened.text
    file_link = re.search(r'href="(/staff/tips/[0-9a-f]{32}/files/[0-9a-f]{32})"', opened.text)
    assert file_link and client.get(file_link.group(1)).content == b"D" * 90_000
    client.post(
        f"/staff/tips/{tip.id}/reply",
        data={
            "text": "Svar från nya desken.",
            "csrf": form_token(opened.text, f"/staff/tips/{tip.id}/reply"),
        },
    )
    mailbox = open_mailbox(client, code)
    assert "Vi har en fråga till." in mailbox and "Svar från nya desken." in mailbox


def test_a_declined_request_shares_nothing(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    code, case_number = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [])
    original_desks = tip_desks(services, case_number)
    target_code, target_officer = desk_with_officer(demo_accounts, original_desks)
    with session_scope(services.engine) as db:
        target = db.exec(select(Desk).where(Desk.code == target_code)).one()
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
    staff_login(client, account(demo_accounts, desk=original_desks[0]))
    page = client.get(f"/staff/tips/{tip.id}")
    client.post(
        f"/staff/tips/{tip.id}/handover",
        data={
            "desk": str(target.id),
            "basis": "consent",
            "csrf": form_token(page.text, f"/staff/tips/{tip.id}/handover"),
        },
    )
    mailbox = open_mailbox(client, code)
    request_id = re.search(r'name="request" value="(\d+)"', mailbox)
    assert request_id
    client.post(
        "/sv/mailbox/consent",
        data={
            "request": request_id.group(1),
            "decision": "decline",
            "csrf": form_token(mailbox, "/sv/mailbox/consent"),
        },
    )
    client.cookies.clear()
    staff_login(client, target_officer)
    assert client.get(f"/staff/tips/{tip.id}").status_code == 404
