"""Desk leads keep their desk's canned replies, per launch language; nobody else can (issue 4).

Roles x membership: the lead of this desk edits; the lead of another desk, an officer of the desk, an
administrator (with or without membership) and an analyst get the staff app's 404 on every route, before
their form is read; a logged-out visitor is sent to log in. Every refusal leaves the replies and the audit
log as they were.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import col, select
from starlette.testclient import TestClient

from crypto import Argon2Params
from portal import i18n
from portal.audit.models import AuditEntry
from portal.db import session_scope
from portal.network.models import Desk
from portal.triage import canned, canned_views
from portal.triage.models import CannedReply
from portal.web import Services
from tests.portal.submission.browser import ANSWERS, form_token, send_tip
from tests.portal.triage.test_access_matrix import make_account
from tests.portal.triage.test_staff_flow import staff_login

DESK = "pax-ragnhild-bedomning"  # the joint desk takes "other" tips; its lead is a demo account
OTHER_DESK = "sodertalje-bistand"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'><a href="javascript:alert(2)">'
FORM = {"content-type": "application/x-www-form-urlencoded"}


def said(services: Services, message: str, **params: object) -> str:
    """`message` as the demo lead reads it (their account speaks Swedish), HTML-escaped as on the page."""
    translated = services.extras["staff_renderer"].translations["sv"].gettext(message)
    return html.escape(translated % params if params else translated, quote=False)


def desk_id(services: Services, code: str) -> int:
    with session_scope(services.engine) as db:
        desk = db.exec(select(Desk).where(Desk.code == code)).one()
        assert desk.id is not None
        return desk.id


def state(services: Services) -> tuple[list[tuple[int, str, str, str, str]], int]:
    """Every canned reply row, and how many canned-reply entries the audit log has."""
    with session_scope(services.engine) as db:
        rows = db.exec(select(CannedReply).order_by(col(CannedReply.id))).all()
        entries = db.exec(
            select(func.count())
            .select_from(AuditEntry)
            .where(col(AuditEntry.action).startswith("desk.canned"))
        ).one()
        return [(r.desk_id, r.key, r.language, r.title, r.body) for r in rows], entries


def lead(demo_accounts: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in demo_accounts["accounts"] if a["role"] == "desk-lead" and DESK in a["desks"])


def lead_opens_the_list(client: TestClient, demo_accounts: dict[str, Any], desk: int) -> str:
    """The desk's lead logs in and opens the desk's canned replies: the token of the form for a new one."""
    staff_login(client, lead(demo_accounts))
    path = f"/staff/desks/{desk}/canned"
    return form_token(client.get(path).text, path)


def officer_picks_canned_reply(
    client: TestClient, demo_accounts: dict[str, Any], language: str, option_text: str
) -> tuple[str, str]:
    """A resident sends the desk a tip in `language`; an officer of the desk opens it and picks the canned
    reply whose option starts with `option_text` (as it stands in the page's HTML). The tip page, and the
    page with the reply drafted."""
    send_tip(client, language, {**ANSWERS, "category": "other"}, [])
    officer = next(a for a in demo_accounts["accounts"] if a["role"] == "officer" and DESK in a["desks"])
    with TestClient(client.app, base_url="http://testserver") as officer_browser:
        inbox = staff_login(officer_browser, officer).text
        tip_url = re.search(r'href="(/staff/tips/[0-9a-f]{32})"', inbox)
        assert tip_url
        tip_page = officer_browser.get(tip_url.group(1)).text
        option = re.search(rf'<option value="(\d+)">{re.escape(option_text)}', tip_page)
        assert option, option_text
        drafted = officer_browser.get(f"{tip_url.group(1)}?canned={option.group(1)}").text
    return tip_page, drafted


def a_key(services: Services, desk: int) -> str:
    with session_scope(services.engine) as db:
        return db.exec(select(CannedReply.key).where(CannedReply.desk_id == desk)).first() or ""


def routes(desk: int, key: str) -> list[tuple[str, str]]:
    base = f"/staff/desks/{desk}/canned"
    return [
        ("GET", base),
        ("POST", base),
        ("GET", f"{base}/{key}/sv"),
        ("POST", f"{base}/{key}/sv"),
        ("POST", f"{base}/{key}/sv/delete"),
        ("POST", f"{base}/{key}/delete"),
    ]


def send(client: TestClient, method: str, path: str, data: dict[str, str] | None = None) -> Any:
    if method == "GET":
        return client.get(path, follow_redirects=False)
    return client.post(path, data=data or {}, follow_redirects=False)


WHO = {
    "lead of another desk": ("desk-lead", OTHER_DESK),
    "lead without a desk": ("desk-lead", None),
    "officer of the desk": ("officer", DESK),
    "administrator without membership": ("administrator", None),
    "administrator member of the desk": ("administrator", DESK),
    "analyst member of the desk": ("analyst", DESK),
}


@pytest.mark.parametrize("who", WHO)
def test_only_the_desks_own_lead_reaches_the_replies(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], fast_argon2: Argon2Params, who: str
) -> None:
    role, desk_code = WHO[who]
    person = make_account(services, demo_accounts, role=role, desk_code=desk_code, params=fast_argon2)
    desk = desk_id(services, DESK)
    key = a_key(services, desk)

    # Every form's real token, from the lead's pages, with the lead's CSRF cookie: a request the lead could
    # send, which only the role and membership check refuses.
    base = f"/staff/desks/{desk}/canned"
    with TestClient(client.app, base_url="http://testserver") as lead_browser:
        staff_login(lead_browser, lead(demo_accounts))
        listing = lead_browser.get(base).text
        page = lead_browser.get(f"{base}/{key}/sv").text
        csrf_cookie = lead_browser.cookies["lykta_csrf"]
    tokens = {
        base: form_token(listing, base),
        f"{base}/{key}/sv": form_token(page, f"{base}/{key}/sv"),
        f"{base}/{key}/sv/delete": form_token(page, f"{base}/{key}/sv/delete"),
        f"{base}/{key}/delete": form_token(page, f"{base}/{key}/delete"),
    }
    staff_login(client, person)
    client.cookies.set("lykta_csrf", csrf_cookie)
    before = state(services)
    for method, path in routes(desk, key):
        data = {"csrf": tokens.get(path, ""), "language": "sv", "title": "Intrång", "body": "Ändrad text"}
        response = send(client, method, path, {**data, "confirm": "yes"})
        assert response.status_code == 404, (who, method, path, response.status_code)
        assert "Intrång" not in response.text and "canned" not in response.text
    assert state(services) == before
    # The desk page (for key holders) offers the link to desk leads only.
    if desk_code == DESK and role != "analyst":
        assert f"/staff/desks/{desk}/canned" not in client.get(f"/staff/desks/{desk}").text
    # The very same request from the lead, in this browser, goes through: the tokens were good.
    staff_login(client, lead(demo_accounts))
    data = {"csrf": tokens[f"{base}/{key}/sv"], "title": "Ny rubrik", "body": "Ny text"}
    assert client.post(f"{base}/{key}/sv", data=data, follow_redirects=False).status_code == 303


def test_logged_out_visitors_are_sent_to_log_in(client: TestClient, services: Services) -> None:
    desk = desk_id(services, DESK)
    before = state(services)
    for method, path in routes(desk, a_key(services, desk)):
        response = send(client, method, path, {"csrf": "x", "title": "t", "body": "b", "language": "sv"})
        assert response.status_code == 303 and response.headers["location"] == "/staff/login", path
    assert state(services) == before


def test_a_lead_writes_translates_and_deletes_a_reply(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    desk = desk_id(services, DESK)
    staff_login(client, lead(demo_accounts))
    assert f'href="/staff/desks/{desk}/canned"' in client.get(f"/staff/desks/{desk}").text
    listing = client.get(f"/staff/desks/{desk}/canned")
    assert listing.status_code == 200
    assert "Ask for details" in listing.text  # seeded by lykta demo, in every language
    with session_scope(services.engine) as db:
        audit_before = db.exec(select(func.max(AuditEntry.seq))).one() or 0

    created = client.post(
        f"/staff/desks/{desk}/canned",
        data={
            "csrf": form_token(listing.text, f"/staff/desks/{desk}/canned"),
            "language": "ar",
            "title": "  Tack för  tipset ",
            "body": "شكرا لك.\r\nسنقرأ رسالتك.",
        },
    )
    assert created.status_code == 200
    match = re.fullmatch(rf"/staff/desks/{desk}/canned/([0-9a-f]{{16}})/ar", created.url.path)
    assert match, created.url
    assert said(services, canned_views.NOTICES["created"]) in created.text
    key = match.group(1)
    with session_scope(services.engine) as db:
        version = db.exec(select(CannedReply).where(CannedReply.key == key)).one()
        assert (version.language, version.title, version.body) == (
            "ar",
            "Tack för tipset",
            "شكرا لك.\nسنقرأ رسالتك.",
        )
    # The list says which languages are still missing: all but Arabic.
    listing = client.get(f"/staff/desks/{desk}/canned").text
    row = re.search(r"<tr>\s*<th scope=\"row\" dir=\"auto\">Tack för tipset</th>.*?</tr>", listing, re.S)
    assert row
    cell = re.search(r'<td class="missing-languages">.*?</td>', row.group(0), re.S)
    assert cell
    missing = re.findall(rf"/canned/{key}/([a-zA-Z-]+)\"", cell.group(0))
    assert sorted(missing) == sorted(loc.code for loc in i18n.LOCALES if loc.code != "ar")

    # Add Polish, then change it.
    page = client.get(f"/staff/desks/{desk}/canned/{key}/pl")
    assert page.status_code == 200 and "شكرا لك." in page.text  # the other versions, for reference
    action = f"/staff/desks/{desk}/canned/{key}/pl"
    saved = client.post(
        action, data={"csrf": form_token(page.text, action), "title": "Dzięki", "body": "Dziękujemy."}
    )
    assert saved.status_code == 200 and saved.url.path == f"/staff/desks/{desk}/canned"
    page = client.get(action)
    assert 'value="Dzięki"' in page.text
    client.post(
        action, data={"csrf": form_token(page.text, action), "title": "Dzięki", "body": "Dziękujemy bardzo."}
    )
    with session_scope(services.engine) as db:
        rows = db.exec(select(CannedReply).where(CannedReply.key == key)).all()
        assert {r.language: r.body for r in rows} == {
            "ar": "شكرا لك.\nسنقرأ رسالتك.",
            "pl": "Dziękujemy bardzo.",
        }

    # An officer answering a Polish tip finds it; then the Polish version goes, then the whole reply.
    _tip_page, drafted = officer_picks_canned_reply(client, demo_accounts, "pl", "Dzięki</option>")
    assert "Dziękujemy bardzo." in drafted

    page = client.get(action).text
    deleted = client.post(f"{action}/delete", data={"csrf": form_token(page, f"{action}/delete")})
    assert deleted.status_code == 200
    listing = client.get(f"/staff/desks/{desk}/canned").text
    assert f"/canned/{key}/pl" in listing  # missing again
    whole = f"/staff/desks/{desk}/canned/{key}/delete"
    page = client.get(f"/staff/desks/{desk}/canned/{key}/ar").text
    unconfirmed = client.post(whole, data={"csrf": form_token(page, whole)})
    assert unconfirmed.status_code == 400 and said(services, canned_views.ERROR_CONFIRM) in unconfirmed.text
    assert client.post(whole, data={"csrf": form_token(page, whole), "confirm": "yes"}).status_code == 200
    with session_scope(services.engine) as db:
        assert db.exec(select(CannedReply).where(CannedReply.key == key)).all() == []
        entries = db.exec(
            select(AuditEntry).where(col(AuditEntry.seq) > audit_before).order_by(col(AuditEntry.seq))
        ).all()
    actions = [
        (e.action, e.detail.get("language")) for e in entries if e.action.startswith("desk.canned-reply")
    ]
    assert actions == [
        ("desk.canned-reply-created", "ar"),
        ("desk.canned-reply-created", "pl"),
        ("desk.canned-reply-edited", "pl"),
        ("desk.canned-reply-deleted", "pl"),
        ("desk.canned-reply-deleted", None),
    ]
    for entry in entries:
        assert entry.desk_id == desk or not entry.action.startswith("desk.canned")
        assert not any(text in str(entry.detail) for text in ("Tack", "Dzięki", "Dziękujemy", "شكرا"))


def test_every_post_needs_its_form_token(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    desk = desk_id(services, DESK)
    key = a_key(services, desk)
    wrong_purpose = lead_opens_the_list(client, demo_accounts, desk)  # a create token
    before = state(services)
    for method, path in routes(desk, key):
        if method == "GET":
            continue
        for token in ("", "forged", wrong_purpose if not path.endswith("/canned") else "x" + wrong_purpose):
            data = {"csrf": token, "language": "sv", "title": "Förfalskad", "body": "Förfalskad text"}
            response = client.post(path, data=data, follow_redirects=False)
            assert response.status_code == 400, (path, token[:8])
            assert said(services, canned_views.ERROR_EXPIRED) in response.text
            assert "Förfalskad" in response.text or path.endswith("delete")  # what was typed is kept
    # The same token from another browser (another csrf cookie) is refused as well.
    with TestClient(client.app, base_url="http://testserver") as other_browser:
        staff_login(other_browser, lead(demo_accounts))
        response = other_browser.post(
            f"/staff/desks/{desk}/canned",
            data={"csrf": wrong_purpose, "language": "sv", "title": "Förfalskad", "body": "b"},
            follow_redirects=False,
        )
        assert response.status_code == 400
    assert state(services) == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": "", "body": "text"}, canned.ERROR_TITLE),
        ({"title": "   ", "body": "text"}, canned.ERROR_TITLE),
        ({"title": "t" * 201, "body": "text"}, canned.ERROR_TITLE),
        ({"title": "bell\x07", "body": "text"}, canned.ERROR_TITLE),
        ({"title": "t", "body": ""}, canned.ERROR_BODY),
        ({"title": "t", "body": "b" * 5001}, canned.ERROR_BODY),
        ({"title": "t", "body": "nul\x00byte"}, canned.ERROR_BODY),
        ({"title": "t", "body": "text", "language": "de"}, canned.ERROR_LANGUAGE),
        ({"title": "t", "body": "text", "language": ""}, canned.ERROR_LANGUAGE),
    ],
)
def test_bad_input_gets_a_clear_error_and_stores_nothing(
    client: TestClient,
    services: Services,
    demo_accounts: dict[str, Any],
    fields: dict[str, str],
    message: str,
) -> None:
    desk = desk_id(services, DESK)
    token = lead_opens_the_list(client, demo_accounts, desk)
    limit = {canned.ERROR_TITLE: canned.MAX_TITLE, canned.ERROR_BODY: canned.MAX_BODY}.get(message)
    assert canned.MAX_TITLE == 200 and canned.MAX_BODY == 5000  # the limits of the CannedReply columns
    before = state(services)
    data = {"language": "sv", **fields, "csrf": token}
    response = client.post(f"/staff/desks/{desk}/canned", data=data)
    assert response.status_code == 400
    assert said(services, message, limit=limit) in response.text
    assert said(services, canned_views.ERROR_FIELDS) in response.text
    assert 'aria-invalid="true"' in response.text
    # The same on an existing reply's page (the language comes from the address there).
    if "language" not in fields:
        key = a_key(services, desk)
        action = f"/staff/desks/{desk}/canned/{key}/sv"
        page = client.get(action).text
        response = client.post(action, data={**fields, "csrf": form_token(page, action)})
        assert response.status_code == 400 and said(services, message, limit=limit) in response.text
    assert state(services) == before


def test_limits_are_exact_and_unreadable_forms_are_refused(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    desk = desk_id(services, DESK)
    token = lead_opens_the_list(client, demo_accounts, desk)
    data = {"csrf": token, "language": "ti", "title": "ት" * 200, "body": "ሰ" * 5000}
    assert client.post(f"/staff/desks/{desk}/canned", data=data).status_code == 200
    before = state(services)
    bad_utf8 = f"csrf={token}&language=sv&title=%FF%FE&body=x".encode()
    response = client.post(f"/staff/desks/{desk}/canned", content=bad_utf8, headers=FORM)
    assert response.status_code == 400 and said(services, canned_views.ERROR_UNREADABLE) in response.text
    huge = f"csrf={token}&language=sv&title=t&body=".encode() + b"x" * 70_000
    response = client.post(f"/staff/desks/{desk}/canned", content=huge, headers=FORM)
    assert response.status_code == 400 and said(services, canned_views.ERROR_UNREADABLE) in response.text
    assert state(services) == before


def test_addresses_that_name_nothing_of_this_desk_are_404(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    desk = desk_id(services, DESK)
    other_key = "only-at-another-desk"
    with session_scope(services.engine) as db:
        db.add(
            CannedReply(
                desk_id=desk_id(services, OTHER_DESK), key=other_key, language="sv", title="t", body="b"
            )
        )
    staff_login(client, lead(demo_accounts))
    page = client.get(f"/staff/desks/{desk}/canned/{a_key(services, desk)}/sv").text
    token = form_token(page, f"/staff/desks/{desk}/canned/{a_key(services, desk)}/sv")
    before = state(services)
    for path in (
        f"/staff/desks/{desk}/canned/{other_key}/sv",  # another desk's reply, named under this desk
        f"/staff/desks/{desk}/canned/no-such-reply/sv",
        f"/staff/desks/{desk}/canned/{a_key(services, desk)}/de",
        f"/staff/desks/{desk}/canned/..%2F..%2Fetc/sv",
        "/staff/desks/999999/canned",
    ):
        assert client.get(path).status_code == 404, path
    for key in ("no-such-reply", other_key):
        response = client.post(
            f"/staff/desks/{desk}/canned/{key}/sv", data={"csrf": token, "title": "t", "body": "b"}
        )
        assert response.status_code == 409 and said(services, canned_views.ERROR_CHANGED) in response.text
    assert state(services) == before


def test_markup_in_a_reply_is_shown_inert(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    desk = desk_id(services, DESK)
    token = lead_opens_the_list(client, demo_accounts, desk)
    data = {"csrf": token, "language": "en", "title": HOSTILE, "body": HOSTILE}
    edit_page = client.post(f"/staff/desks/{desk}/canned", data=data).text
    listing = client.get(f"/staff/desks/{desk}/canned").text
    key = a_key_with_title(services, HOSTILE)
    translating = client.get(f"/staff/desks/{desk}/canned/{key}/sv").text  # shows the English version
    tip_page, drafted = officer_picks_canned_reply(client, demo_accounts, "en", "&lt;script&gt;")
    for page_html in (edit_page, listing, translating, tip_page, drafted):
        assert "<script>alert" not in page_html and "<img src=x" not in page_html
        assert 'href="javascript:' not in page_html
    assert edit_page.count("&lt;script&gt;alert(") >= 2  # the title field and the text
    assert translating.count("&lt;script&gt;alert(") >= 2  # the English version, for reference
    assert "&lt;script&gt;alert(" in listing


def a_key_with_title(services: Services, title: str) -> str:
    with session_scope(services.engine) as db:
        return db.exec(select(CannedReply.key).where(CannedReply.title == canned.clean_title(title))).one()
