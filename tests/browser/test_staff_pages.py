"""axe-core (WCAG 2.1 A and AA) finds nothing on any back-office page (issue 6, item 2).

Each role's pages are found the way a person finds them: from the inbox, every link to a back-office page
is followed (one page per kind of address, ids set aside), so a page added later is audited too. The pages
that only a form leads to (a phone intake, an invitation, a new organisation, a print view, form errors,
the login and enrolment pages) are reached by filling in those forms.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import Page, expect

from portal.i18n import LOCALES, STAFF_LOCALES
from tests.browser.axe import audit, describe
from tests.browser.conftest import ContextFactory
from tests.browser.pages import ANSWERS, LiveServer, finish, send_tip, staff_state, submit

pytestmark = pytest.mark.browser

OFFICER_DESK = "polisen-sodertalje-tips"  # where the drugs tip goes
ROLES = ("officer", "desk-lead", "administrator", "analyst")
LANGUAGES = "|".join(re.escape(locale.code) for locale in LOCALES)
SKIPPED_LINKS = re.compile(r"/files/|^/staff/login")  # downloads are not pages; logging in is its own test


class StaffAudit:
    def __init__(self, shots: Path) -> None:
        self.shots = shots
        self.reports: list[str] = []
        self.pages: list[str] = []
        shots.mkdir(parents=True, exist_ok=True)

    def check(self, page: Page, name: str) -> None:
        lang = page.locator("html").get_attribute("lang")
        assert lang in {locale.babel for locale in STAFF_LOCALES}, f"{name}: lang={lang!r}"
        assert page.locator("script").count() == 0, f"{name}: the page ships a script"
        self.pages.append(name)
        slug = re.sub(r"[^\w-]+", "_", name).strip("_") or "root"
        page.screenshot(path=self.shots / f"{len(self.pages):02d}-{slug}.png", full_page=True)
        violations = audit(page)
        if violations:
            self.reports.append(describe(f"{name} ({page.url})", violations))

    def assert_clean(self) -> None:
        assert not self.reports, "axe-core found WCAG 2.1 A/AA violations:\n" + "\n\n".join(self.reports)


def _kind_of(url: str) -> str:
    """An address with its ids set aside: /staff/tips/<hex>/... and /staff/desks/3 are one kind each."""
    parts = urlsplit(url)
    path = re.sub(r"/(?:[0-9a-f]{32}|\d+)(?=/|$)", "/{id}", parts.path)
    path = re.sub(rf"/(?:{LANGUAGES})(?=/|$)", "/{lang}", path)
    keys = sorted({key for key, _value in parse_qsl(parts.query)} - {"page"})
    return path + ("?" + "&".join(keys) if keys else "")


def crawl(page: Page, start: str, checker: StaffAudit, *, role: str, limit: int = 60) -> None:
    queue, seen = [start], set[str]()
    while queue and len(seen) < limit:
        url = queue.pop(0)
        kind = _kind_of(url)
        if kind in seen:
            continue
        seen.add(kind)
        response = page.goto(url)
        assert response is not None and response.status == 200, f"a link leads to {url}: {response}"
        checker.check(page, f"{role} {kind}")
        hrefs: list[str] = page.eval_on_selector_all("a[href]", "links => links.map((a) => a.href)")
        for href in hrefs:
            parts = urlsplit(href)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if parts.path.startswith("/staff/") and not SKIPPED_LINKS.search(parts.path):
                queue.append(target)


def _officer_pages(page: Page, checker: StaffAudit) -> None:
    """A tip's print view, a phone intake and its result page."""
    page.goto("/staff/")
    page.locator('a[href^="/staff/tips/"]').first.click()
    page.locator('button[value="print"]').click()
    checker.check(page, "officer tip print view")
    page.goto("/staff/intake")
    submit(page, "/staff/intake")  # empty: the form comes back with its errors
    checker.check(page, "officer intake with errors")
    page.locator("#municipality").select_option("sodertalje")
    page.locator("#category").select_option("drugs")
    page.locator("#what").fill("Called in: drugs sold from a car at the bus stop.")
    submit(page, "/staff/intake")
    checker.check(page, "officer intake done")


def _administrator_pages(page: Page, checker: StaffAudit, new_context: ContextFactory) -> None:
    """An invitation (with errors, then done), the invitee's enrolment page, a new organisation."""
    page.goto("/staff/admin/staff")
    submit(page, "/staff/admin/staff")
    checker.check(page, "administrator invite with errors")
    page.locator("#username").fill("axel.audit")
    page.locator("#role").select_option("analyst")
    submit(page, "/staff/admin/staff")
    link = page.locator("#enrol-link").inner_text().strip()
    checker.check(page, "administrator enrolment link")
    invitee = new_context(javascript=True, bypass_csp=True).new_page()
    invitee.goto(link)
    checker.check(invitee, "enrolment")
    submit(invitee, urlsplit(link).path)
    checker.check(invitee, "enrolment with errors")
    invitee.goto("/staff/enrol/not-a-real-token")
    checker.check(invitee, "enrolment link not valid")
    page.goto("/staff/admin/organisations")
    page.locator("#name").fill("Granskningskommunen")
    page.locator("#code").fill("granskning-kommun")
    submit(page, "/staff/admin/organisations")
    expect(page.locator("main")).to_contain_text("AGE-SECRET-KEY-1")
    checker.check(page, "administrator organisation created")


@pytest.mark.parametrize("role", ROLES)
def test_every_staff_page_of_each_role(
    role: str, new_context: ContextFactory, live_server: LiveServer, artifacts_dir: Path
) -> None:
    if role in {"officer", "desk-lead"}:  # something in their inbox to open: police, or the joint desk
        resident = new_context().new_page()
        category = "drugs" if role == "officer" else "other"
        send_tip(resident, "sv", photo=None, answers=ANSWERS["sv"], category=category)
        finish(resident, "sv")
    who = live_server.account(role=role, desk=OFFICER_DESK if role == "officer" else None)
    context = new_context(
        javascript=True, bypass_csp=True, storage_state=staff_state(new_context, live_server, who)
    )
    page = context.new_page()
    checker = StaffAudit(artifacts_dir / "screenshots" / "staff" / role)
    crawl(page, "/staff/", checker, role=role)
    assert len(checker.pages) >= 2, checker.pages
    if role == "officer":
        _officer_pages(page, checker)
    if role == "administrator":
        _administrator_pages(page, checker, new_context)
    checker.assert_clean()


def test_login_and_error_pages(new_context: ContextFactory, artifacts_dir: Path) -> None:
    page = new_context(javascript=True, bypass_csp=True).new_page()
    checker = StaffAudit(artifacts_dir / "screenshots" / "staff" / "logged-out")
    for locale in STAFF_LOCALES:
        page.goto(f"/staff/login?lang={locale.code}")
        expect(page.locator("html")).to_have_attribute("lang", locale.babel)
        checker.check(page, f"login {locale.code}")
    page.locator("#username").fill("nobody.here")
    page.locator("#passphrase").fill("not the passphrase at all")
    page.locator("#code").fill("000000")
    submit(page, "/staff/login")
    expect(page.locator(".error-summary")).to_be_visible()
    checker.check(page, "login failed")
    page.goto("/staff/no-such-page")
    checker.check(page, "not found")
    checker.assert_clean()


def test_the_audit_reports_what_it_finds(new_context: ContextFactory) -> None:
    """The audit is not blind: a picture without a text alternative and grey-on-white text are caught."""
    page = new_context(javascript=True, bypass_csp=True).new_page()
    page.goto("/staff/login")
    page.evaluate(
        """() => {
            const main = document.querySelector("main");
            main.insertAdjacentHTML("beforeend",
                '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="20" height="20">' +
                '<p style="color:#bbbbbb;background:#ffffff">Hard to read</p>');
        }"""
    )
    found = {violation["id"] for violation in audit(page)}
    assert {"image-alt", "color-contrast"} <= found, found
