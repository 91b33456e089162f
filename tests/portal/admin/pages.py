"""What an administrator's browser does in the admin tests: log in, read forms, post them, crawl pages.

`snapshot` is how the tests check that a refused request changed nothing: every row of every table but
the sessions (whose last-seen time moves on every request).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portal import i18n
from portal.accounts.models import StaffAccount
from portal.csrf import COOKIE_NAME
from portal.network.models import Desk, Municipality, Organisation
from portal.web import Services
from tests.portal.triage.test_staff_flow import account, staff_login

CHANGING_ON_EVERY_REQUEST = {"session", "ratelimit"}
_STAFF_CATALOGS = i18n.load_all(domain=i18n.STAFF_DOMAIN)


def said(msgid: str, lang: str = "sv", **variables: object) -> str:
    """What a staff page in `lang` says for `msgid` (demo accounts use Swedish): the catalog's text."""
    translated = _STAFF_CATALOGS[lang].gettext(msgid)
    return translated % variables if variables else translated


def log_in_as(client: TestClient, demo_accounts: dict[str, Any], role: str) -> httpx.Response:
    response: httpx.Response = staff_login(client, account(demo_accounts, role=role))
    assert response.status_code == 200, response.text
    return response


def second_browser(client: TestClient) -> TestClient:
    """Another browser on the same app: its own cookies."""
    return TestClient(client.app, base_url="http://testserver")


def post_token(page: str, action: str) -> str:
    """The CSRF token of the page's POST form to `action` (a page may also have GET forms to it)."""
    for form in re.findall(r"<form[^>]*>.*?</form>", page, re.S):
        opening = form[: form.index(">")]
        if 'method="post"' in opening and f'action="{action}"' in opening:
            token = re.search(r'name="csrf" value="([^"]+)"', form)
            assert token, f"the form posting to {action} has no CSRF token"
            return token.group(1)
    raise AssertionError(f"no form posting to {action}")


def post_form(client: TestClient, page_path: str, action: str, fields: dict[str, Any]) -> httpx.Response:
    """Open `page_path`, take the CSRF token of its form posting to `action`, and post `fields` there."""
    page = client.get(page_path)
    assert page.status_code == 200, page.text
    posted: httpx.Response = client.post(
        action, data={**fields, "csrf": post_token(page.text, action)}, follow_redirects=True
    )
    return posted


def mint_token(client: TestClient, services: Services, purpose: str) -> str:
    """A valid CSRF token of `purpose` for this browser, as a page of the section would carry it.

    Lets a test show that a non-administrator is refused even with a perfect token: the role decides.
    """
    cookie = client.cookies.get(COOKIE_NAME)
    assert cookie, "the browser has no CSRF cookie yet: open a page first"
    return services.csrf.issue(cookie, purpose=f"staff-{purpose}")


def snapshot(engine: Engine) -> dict[str, list[tuple[str, ...]]]:
    with engine.connect() as conn:
        return {
            table: sorted(
                tuple(repr(v) for v in row) for row in conn.execute(text(f'SELECT * FROM "{table}"'))
            )
            for table in inspect(conn).get_table_names()
            if table not in CHANGING_ON_EVERY_REQUEST
        }


def ids(services: Services) -> dict[str, int]:
    """Ids the route table needs: a desk, an organisation, an officer and the officer's desk."""
    with Session(services.engine) as db:
        officer = db.exec(
            select(StaffAccount).where(StaffAccount.username == "anna.officer.sodertalje")
        ).one()
        officer_desk = db.exec(select(Desk).where(Desk.code == "sodertalje-bistand")).one()
        other_desk = db.exec(select(Desk).where(Desk.code == "ivo-tillsyn")).one()
        organisation = db.exec(select(Organisation).where(Organisation.code == "ivo")).one()
        municipality = db.exec(select(Municipality).where(Municipality.code == "nykvarn")).one()
    assert officer.id and officer_desk.id and other_desk.id and organisation.id and municipality.id
    return {
        "officer": officer.id,
        "officer_desk": officer_desk.id,
        "other_desk": other_desk.id,
        "organisation": organisation.id,
        "municipality": municipality.id,
    }


def visible_text(response: httpx.Response) -> str:
    return html.unescape(response.text)


def staff_links(page: str) -> Iterator[str]:
    for href in re.findall(r'href="([^"]+)"', page):
        href = html.unescape(href)
        if href.startswith("/staff/"):
            yield href


def crawl(client: TestClient, start: str = "/staff/admin/") -> dict[str, httpx.Response]:
    """Every admin page reachable by links from `start`, and every other staff page they link to."""
    seen: dict[str, httpx.Response] = {}
    queue = [start]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        response = client.get(path)
        seen[path] = response
        if path.startswith("/staff/admin"):
            queue.extend(link for link in staff_links(response.text) if link not in seen)
    return seen
