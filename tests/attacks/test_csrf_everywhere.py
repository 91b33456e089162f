"""Every state-changing route of both apps refuses a missing or foreign CSRF token and changes nothing.

The routes are read from the Starlette routers themselves (resident and staff, every section), so a POST
route added later is tested without anyone listing it here: if no identity (visitor, tipster, officer, desk
lead, administrator) gets its request as far as a CSRF check, or a path parameter has no value below, the
test fails and names the route. The check is observed where every view makes it (portal.csrf.CsrfTokens);
"no state change" is every row of every table compared before and after (sessions and rate counters
aside, which move on every request).

The admin section's own matrix (tests/portal/admin/test_access.py) and the tip routes'
(tests/portal/triage/test_access_matrix.py) test their tokens with form data; this test is the net that
catches the routes nobody listed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlmodel import select
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from crypto import Argon2Params
from portal import csrf
from portal.accounts.models import StaffAccount
from portal.app import _resident_routes, _staff_routes
from portal.db import session_scope
from portal.network.models import Desk
from portal.submission.models import Tip
from portal.triage.canned import CannedReply
from portal.web import Services
from tests.portal.accounts.people import PAX_DESK, invite
from tests.portal.submission.browser import ANSWERS, log_in, send_tip
from tests.portal.triage.test_access_matrix import make_account
from tests.portal.triage.test_staff_flow import account, staff_login

MOVING_TABLES = {"session", "ratecounter"}
# Routes that change nothing whatever they are sent: the admin section's catch-all answers every unknown
# path under /admin/ with the plain 404 page (portal.admin.views.nothing_here).
NOTHING_TO_PROTECT = {("staff", "/admin/{rest:path}")}
# Everything any form posts, so that a view that reads its fields before the token finds them.
FIELDS = {
    **ANSWERS,
    "text": "x",
    "message": "x",
    "status": "closed",
    "outcome": "no-action",
    "assignee": "",
    "label": "urgent",
    "desk": "1",
    "basis": "consent",
    "legal_basis": "x",
    "format": "print",
    "action": "set",
    "reference": "AM-1-26",
    "confirm": "yes",
    "decision": "approve",
    "request": "1",
    "reply_code": "0000 0000 0000 0000 0000 0000",
    "username": "attacker",
    "passphrase": "a long passphrase of the attacker",
    "repeat": "a long passphrase of the attacker",
    "code": "123456",
    "name": "x",
    "title": "x",
    "body": "x",
    "language": "sv",
    "role": "officer",
}


@dataclasses.dataclass
class Checks:
    """The CSRF checks the app made: (purpose, refused) for each."""

    made: list[tuple[str, bool]] = dataclasses.field(default_factory=list)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> Checks:
    seen = Checks()
    real_check = csrf.CsrfTokens.check

    def observed(self: csrf.CsrfTokens, token: str | None, cookie_value: str | None, *, purpose: str) -> None:
        try:
            real_check(self, token, cookie_value, purpose=purpose)
        except csrf.CsrfError:
            seen.made.append((purpose, True))
            raise
        seen.made.append((purpose, False))

    monkeypatch.setattr(csrf.CsrfTokens, "check", observed)
    return seen


def post_routes() -> list[tuple[str, str]]:
    """(app, path) of every route that answers POST, in both apps, mounts followed."""

    def walk(routes: list[BaseRoute], prefix: str) -> Iterator[str]:
        for route in routes:
            if isinstance(route, Mount):
                yield from walk(list(route.routes), prefix + route.path)
            elif isinstance(route, Route) and "POST" in (route.methods or set()):
                yield prefix + route.path

    return [("staff", p) for p in walk(list(_staff_routes()), "")] + [
        ("resident", p) for p in walk(list(_resident_routes()), "")
    ]


def snapshot(engine: Engine) -> dict[str, list[tuple[str, ...]]]:
    with engine.connect() as conn:
        return {
            table: sorted(
                tuple(repr(v) for v in row) for row in conn.execute(text(f'SELECT * FROM "{table}"'))
            )
            for table in inspect(conn).get_table_names()
            if table not in MOVING_TABLES
        }


@pytest.fixture
def world(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], fast_argon2: Argon2Params
) -> dict[str, Any]:
    """A tip on the PAX desk with a file, a tipster logged in to it, and staff of every kind logged in."""
    code, case_number = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [("fil.bin", b"F" * 100)])
    tipster = TestClient(client.app, base_url="http://testserver")
    assert log_in(tipster, "sv", code).url.path == "/sv/mailbox"
    officer = make_account(services, demo_accounts, role="officer", desk_code=PAX_DESK, params=fast_argon2)
    browsers: dict[str, TestClient] = {"visitor": TestClient(client.app, base_url="http://testserver")}
    browsers["visitor"].get("/sv/")
    browsers["visitor"].get("/staff/login")
    browsers["tipster"] = tipster
    for name, who in (
        ("officer", officer),
        ("desk-lead", account(demo_accounts, desk=PAX_DESK, role="desk-lead")),
        ("administrator", account(demo_accounts, role="administrator")),
    ):
        browser = TestClient(client.app, base_url="http://testserver")
        assert staff_login(browser, who).status_code == 200, name
        browsers[name] = browser
    token = invite(services, "csrf.invitee")
    with session_scope(services.engine) as db:
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
        desk = db.exec(select(Desk).where(Desk.code == PAX_DESK)).one()
        canned = db.exec(select(CannedReply).where(CannedReply.desk_id == desk.id)).first()
        staff = db.exec(select(StaffAccount).where(StaffAccount.role == "officer")).first()
        assert canned is not None and staff is not None
        values = {
            "lang": "sv",
            "tip_id": tip.id,
            "desk_id": str(desk.id),
            "staff_id": str(staff.id),
            "key": canned.key,
            "language": canned.language,
            "token": token,
            "rest": "nothing",
        }
    return {"browsers": browsers, "values": values}


def concrete(path: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"{path}: no value for the path parameter {name!r}; add one to `world`"
        return values[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def post(browser: TestClient, path: str, *, token: str | None, multipart: bool) -> int:
    fields = dict(FIELDS) if token is None else {**FIELDS, "csrf": token}
    if multipart:
        files = {"files": ("fil.txt", b"content", "text/plain")}
        response = browser.post(path, data=fields, files=files, follow_redirects=False)
    else:
        response = browser.post(path, data=fields, follow_redirects=False)
    return response.status_code


def test_every_post_route_refuses_a_missing_or_foreign_token(
    services: Services, world: dict[str, Any], checks: Checks
) -> None:
    routes = post_routes()
    assert len(routes) >= 40  # both apps, every section: the walk found them
    unprotected = []
    for app, route in routes:
        if (app, route) in NOTHING_TO_PROTECT:
            continue
        path = ("/staff" if app == "staff" else "") + concrete(route, world["values"])
        reached = False
        for name, browser in world["browsers"].items():
            for multipart in (False, True):
                before = snapshot(services.engine)
                checks.made.clear()
                status = post(browser, path, token=None, multipart=multipart)
                assert snapshot(services.engine) == before, (path, name, "missing token", status)
                if not checks.made:
                    continue  # refused before the token (not logged in, not allowed, unreadable body)
                assert all(refused for _purpose, refused in checks.made), (path, name, checks.made)
                assert status in (200, 303, 400, 404), (path, name, status)
                # A perfectly valid token of the same purpose, but made for another browser's cookie.
                purpose = checks.made[0][0]
                foreign = services.csrf.issue(csrf.CsrfTokens.new_cookie_value(), purpose=purpose)
                checks.made.clear()
                post(browser, path, token=foreign, multipart=multipart)
                assert checks.made and all(refused for _p, refused in checks.made), (path, name, "foreign")
                assert snapshot(services.engine) == before, (path, name, "foreign token")
                reached = True
                break
            if reached:
                break
        if not reached:
            unprotected.append(f"{app} {route}")
    assert not unprotected, f"POST routes that never check a CSRF token: {unprotected}"


def test_the_catch_all_changes_nothing(services: Services, world: dict[str, Any]) -> None:
    for app, route in NOTHING_TO_PROTECT:
        assert app == "staff"
        path = "/staff" + concrete(route, world["values"])
        before = snapshot(services.engine)
        assert world["browsers"]["administrator"].post(path, data=FIELDS).status_code == 404
        assert snapshot(services.engine) == before


def test_a_forged_logout_ends_no_session(services: Services, world: dict[str, Any]) -> None:
    """Sessions move on every request, so the row comparison above leaves them out: logout is checked
    here, for the officer and the tipster, with a foreign token of the right purpose."""
    for name, path, purpose, page in (
        ("officer", "/staff/logout", "staff-logout", "/staff/"),
        ("tipster", "/sv/logout", "mailbox-logout", "/sv/mailbox"),
    ):
        browser = world["browsers"][name]
        foreign = services.csrf.issue(csrf.CsrfTokens.new_cookie_value(), purpose=purpose)
        browser.post(path, data={"csrf": foreign}, follow_redirects=False)
        still = browser.get(page, follow_redirects=False)
        assert still.status_code == 200, (name, still.status_code)
