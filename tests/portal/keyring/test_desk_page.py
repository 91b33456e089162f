"""A desk member holding the key grants it to a new member and removes members (issue 4, part 2).

Only a member holding the desk key can do either: other desks, administrators and analysts without the key,
and members still waiting for it, get the staff app's 404; a logged-out visitor the login page. Every POST
needs its form token, and a refused POST changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from portal import csrf
from portal.audit.models import AuditEntry
from portal.db import session_scope
from portal.web import Services
from tests.portal.accounts.people import PAX_DESK, desk_id, enrolled_person, invite
from tests.portal.keyring.keys import desk_public_key, grants_of, is_member, staff_id, tip_of
from tests.portal.submission.browser import ANSWERS, form_token, send_tip
from tests.portal.triage.test_staff_flow import staff_login, tip_desks

OTHER_TIP = {**ANSWERS, "category": "other"}  # routed to the joint desk (PAX_DESK) alone


def by_name(demo_accounts: dict[str, Any], username: str) -> dict[str, Any]:
    return next(a for a in demo_accounts["accounts"] if a["username"] == username)


def karin(demo_accounts: dict[str, Any]) -> dict[str, Any]:
    return by_name(demo_accounts, "karin.lead.pax-ragnhild")


def sara(demo_accounts: dict[str, Any]) -> dict[str, Any]:
    return by_name(demo_accounts, "sara.officer.pax-ragnhild")


def audit_actions(services: Services) -> list[str]:
    with session_scope(services.engine) as db:
        return [e.action for e in db.exec(select(AuditEntry))]


def section(page: str, heading_id: str) -> str:
    """The part of the desk page under the heading `heading_id` (up to the next heading)."""
    match = re.search(rf'<h2 id="{heading_id}">.*?(?=<h2|</main>)', page, re.S)
    assert match, heading_id
    return match.group(0)


def test_a_member_grants_the_key_and_the_new_member_reads_the_tips(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    _code, case_number = send_tip(client, "sv", OTHER_TIP, [])
    assert tip_desks(services, case_number) == [PAX_DESK]
    pax = desk_id(services, PAX_DESK)
    tip_url = f"/staff/tips/{tip_of(services, case_number).id}"
    nora = enrolled_person(client, services, "nora.officer")

    client.cookies.clear()
    inbox = staff_login(client, nora)
    assert case_number not in inbox.text
    assert client.get(tip_url).status_code == 404
    assert client.get(f"/staff/desks/{pax}").status_code == 404  # waiting: no key, so no desk page either

    client.cookies.clear()
    staff_login(client, karin(demo_accounts))
    page = client.get(f"/staff/desks/{pax}")
    assert page.status_code == 200
    assert "nora.officer" in section(page.text, "waiting-heading")
    assert "sara.officer.pax-ragnhild" in section(page.text, "holders-heading")
    granted = client.post(
        f"/staff/desks/{pax}/grant",
        data={
            "csrf": form_token(page.text, f"/staff/desks/{pax}/grant"),
            "staff_id": staff_id(services, "nora.officer"),
        },
    )
    assert granted.status_code == 200 and granted.url.query == b"done=granted"
    assert "nora.officer" in section(granted.text, "holders-heading")
    assert "nora.officer" not in section(granted.text, "waiting-heading")
    assert len(grants_of(services, pax, "nora.officer")) == 1
    assert "desk.granted" in audit_actions(services)

    # Granting again (a double click) adds nothing.
    again = client.post(
        f"/staff/desks/{pax}/grant",
        data={
            "csrf": form_token(page.text, f"/staff/desks/{pax}/grant"),
            "staff_id": staff_id(services, "nora.officer"),
        },
    )
    assert again.url.query == b"done=already-granted"
    assert len(grants_of(services, pax, "nora.officer")) == 1

    client.cookies.clear()
    inbox = staff_login(client, nora)
    assert case_number in inbox.text
    tip = client.get(tip_url)
    assert tip.status_code == 200 and ANSWERS["what"] in tip.text
    assert client.get(f"/staff/desks/{pax}").status_code == 200


def test_a_person_who_has_not_enrolled_is_waiting_and_cannot_be_granted(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    pax = desk_id(services, PAX_DESK)
    invite(services, "olof.officer")
    staff_login(client, karin(demo_accounts))
    page = client.get(f"/staff/desks/{pax}")
    waiting = section(page.text, "waiting-heading")
    assert "olof.officer" in waiting and "/grant" not in waiting
    refused = client.post(
        f"/staff/desks/{pax}/grant",
        data={"csrf": form_token(page.text, f"/staff/desks/{pax}/remove"),
              "staff_id": staff_id(services, "olof.officer")},
    )  # fmt: skip
    assert refused.status_code == 400  # a remove token is not a grant token
    token = services.csrf.issue(client.cookies[csrf.COOKIE_NAME], purpose="staff-desk-grant")
    refused = client.post(
        f"/staff/desks/{pax}/grant", data={"csrf": token, "staff_id": staff_id(services, "olof.officer")}
    )
    assert refused.status_code == 400
    assert grants_of(services, pax, "olof.officer") == []


@pytest.mark.parametrize(
    "who",
    ["erik.officer.polisen-sodertalje", "ingrid.administrator", "per.analyst", "logged-out"],
)
def test_only_a_key_holder_of_the_desk_sees_it_or_grants(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], who: str
) -> None:
    pax = desk_id(services, PAX_DESK)
    enrolled_person(client, services, "nora.officer")
    client.cookies.clear()
    if who != "logged-out":
        staff_login(client, by_name(demo_accounts, who))
    client.get("/staff/login")  # a CSRF cookie, so the tokens below are valid ones for this browser
    grant_token = services.csrf.issue(client.cookies[csrf.COOKIE_NAME], purpose="staff-desk-grant")
    remove_token = services.csrf.issue(client.cookies[csrf.COOKIE_NAME], purpose="staff-desk-remove")
    sara_id = staff_id(services, "sara.officer.pax-ragnhild")
    responses = [
        client.get(f"/staff/desks/{pax}", follow_redirects=False),
        client.post(
            f"/staff/desks/{pax}/grant",
            data={"csrf": grant_token, "staff_id": staff_id(services, "nora.officer")},
            follow_redirects=False,
        ),
        client.post(
            f"/staff/desks/{pax}/remove",
            data={"csrf": remove_token, "staff_id": sara_id, "rotate": "yes"},
            follow_redirects=False,
        ),
    ]
    for response in responses:
        if who == "logged-out":
            assert response.status_code == 303 and response.headers["location"] == "/staff/login"
        else:
            assert response.status_code == 404
            assert "nora.officer" not in response.text
    assert grants_of(services, pax, "nora.officer") == []
    assert is_member(services, pax, "sara.officer.pax-ragnhild")
    assert len(grants_of(services, pax, "sara.officer.pax-ragnhild")) == 1
    assert client.get("/staff/desks/999999", follow_redirects=False).status_code == (
        303 if who == "logged-out" else 404
    )


def test_removing_a_member_deletes_their_grant_and_their_reach(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    _code, case_number = send_tip(client, "sv", OTHER_TIP, [])
    pax = desk_id(services, PAX_DESK)
    tip_url = f"/staff/tips/{tip_of(services, case_number).id}"
    staff_login(client, sara(demo_accounts))
    assert client.get(tip_url).status_code == 200
    public_key = desk_public_key(services, pax)

    client.cookies.clear()
    staff_login(client, karin(demo_accounts))
    page = client.get(f"/staff/desks/{pax}")
    removed = client.post(
        f"/staff/desks/{pax}/remove",
        data={"csrf": form_token(page.text, f"/staff/desks/{pax}/remove"),
              "staff_id": staff_id(services, "sara.officer.pax-ragnhild")},
    )  # fmt: skip
    assert removed.status_code == 200 and removed.url.query == b"done=removed"
    for heading in ("waiting-heading", "holders-heading"):
        assert "sara.officer.pax-ragnhild" not in section(removed.text, heading)
    assert not is_member(services, pax, "sara.officer.pax-ragnhild")
    assert grants_of(services, pax, "sara.officer.pax-ragnhild") == []
    assert desk_public_key(services, pax) == public_key  # not rotated: the box was not ticked
    assert "desk.member-removed" in audit_actions(services)

    client.cookies.clear()
    inbox = staff_login(client, sara(demo_accounts))
    assert case_number not in inbox.text
    assert client.get(tip_url).status_code == 404
    assert client.get(f"/staff/desks/{pax}").status_code == 404


def test_a_member_cannot_remove_themselves(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    pax = desk_id(services, PAX_DESK)
    staff_login(client, karin(demo_accounts))
    page = client.get(f"/staff/desks/{pax}")
    refused = client.post(
        f"/staff/desks/{pax}/remove",
        data={"csrf": form_token(page.text, f"/staff/desks/{pax}/remove"),
              "staff_id": staff_id(services, "karin.lead.pax-ragnhild"), "rotate": "yes"},
    )  # fmt: skip
    assert refused.status_code == 400
    assert is_member(services, pax, "karin.lead.pax-ragnhild")
    assert len(grants_of(services, pax, "karin.lead.pax-ragnhild")) == 1


@pytest.mark.parametrize("action", ["grant", "remove"])
@pytest.mark.parametrize("token", ["missing", "forged", "other-purpose"])
def test_every_post_needs_its_form_token(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], action: str, token: str
) -> None:
    pax = desk_id(services, PAX_DESK)
    enrolled_person(client, services, "nora.officer")
    client.cookies.clear()
    staff_login(client, karin(demo_accounts))
    page = client.get(f"/staff/desks/{pax}")
    other = "remove" if action == "grant" else "grant"
    data = {
        "staff_id": str(
            staff_id(services, "nora.officer" if action == "grant" else "sara.officer.pax-ragnhild")
        ),
        "rotate": "yes",
    }
    if token == "forged":
        data["csrf"] = form_token(page.text, f"/staff/desks/{pax}/{action}")[:-2] + "AA"
    elif token == "other-purpose":
        data["csrf"] = form_token(page.text, f"/staff/desks/{pax}/{other}")
    before = (
        desk_public_key(services, pax),
        grants_of(services, pax, "nora.officer"),
        grants_of(services, pax, "sara.officer.pax-ragnhild"),
        is_member(services, pax, "sara.officer.pax-ragnhild"),
        audit_actions(services),
    )
    refused = client.post(f"/staff/desks/{pax}/{action}", data=data)
    assert refused.status_code == 400
    after = (
        desk_public_key(services, pax),
        grants_of(services, pax, "nora.officer"),
        grants_of(services, pax, "sara.officer.pax-ragnhild"),
        is_member(services, pax, "sara.officer.pax-ragnhild"),
        audit_actions(services),
    )
    assert after == before
