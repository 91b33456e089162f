"""Assisted intake: an officer files a tip taken by phone; the caller follows it up with the code read out."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from tests.portal.submission.browser import ANSWERS, form_token
from tests.portal.triage.test_staff_flow import account, staff_login


def test_officer_files_a_tip_for_a_caller(client: TestClient, demo_accounts: dict[str, Any]) -> None:
    officer = account(demo_accounts, role="officer")
    staff_login(client, officer)
    form = client.get("/staff/intake")
    assert form.status_code == 200
    done = client.post(
        "/staff/intake",
        data={
            **ANSWERS,
            "category": "other",
            "language": "ar",
            "csrf": form_token(form.text, "/staff/intake"),
        },
    )
    assert done.status_code == 200
    code = re.search(r'id="reply-code"[^>]*>([^<]+)<', done.text)
    case = re.search(r'id="case-number"[^>]*>([^<]+)<', done.text)
    assert code and case
    client.cookies.clear()
    login = client.get("/ar/followup")
    mailbox = client.post(
        "/ar/followup", data={"reply_code": code.group(1), "csrf": form_token(login.text, "/ar/followup")}
    )
    assert case.group(1) in mailbox.text and ANSWERS["what"] in mailbox.text


def test_intake_errors_keep_what_was_typed(client: TestClient, demo_accounts: dict[str, Any]) -> None:
    staff_login(client, account(demo_accounts, role="officer"))
    form = client.get("/staff/intake")
    response = client.post(
        "/staff/intake",
        data={
            "what": "Halvskriven anteckning",
            "municipality": "atlantis",
            "csrf": form_token(form.text, "/staff/intake"),
        },
    )
    assert "Halvskriven anteckning" in response.text and 'id="reply-code"' not in response.text


def test_only_officers_and_desk_leads_take_tips(client: TestClient, demo_accounts: dict[str, Any]) -> None:
    for role in ("administrator", "analyst"):
        client.cookies.clear()
        staff_login(client, account(demo_accounts, role=role))
        assert client.get("/staff/intake").status_code == 404
