"""An administrator invites an officer; the officer enrols (passphrase, authenticator from the key on the
page) and logs in; a member of the desk grants them the desk key, and they read the desk's tips, one sent
before they joined included. All with JavaScript off, against a real `lykta serve` (issue 6, item 1)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
import pytest
from playwright.sync_api import expect

from portal.accounts.login import TOTP_STEP_SECONDS
from tests.browser.conftest import ContextFactory
from tests.browser.pages import LiveServer, finish, send_tip, staff_log_in, staff_state, submit

pytestmark = pytest.mark.browser

DESK = "polisen-sodertalje-tips"
DESK_NAME = "Underrättelsetjänst/tips"
ORGANISATION = "Polisen, lokalpolisområde Södertälje"


def test_invited_officer_enrols_and_is_granted_the_desk(
    new_context: ContextFactory, live_server: LiveServer, tmp_path: Path
) -> None:
    # A tip reaches the desk before the new officer exists.
    resident = new_context().new_page()
    _code, case_number = send_tip(resident, "sv", photo=None)
    finish(resident, "sv")

    # The administrator invites nora to the desk and reads the one-time link off the page.
    administrator = live_server.account(role="administrator")
    admin = new_context(storage_state=staff_state(new_context, live_server, administrator)).new_page()
    admin.goto("/staff/admin/staff")
    admin.locator("#username").fill("nora.officer.browser")
    admin.locator("#role").select_option("officer")
    admin.locator("#organisation").select_option(label=ORGANISATION)
    admin.locator("fieldset.choices", has_text=ORGANISATION).get_by_label(DESK_NAME).check()
    submit(admin, "/staff/admin/staff")
    link = admin.locator("#enrol-link").inner_text().strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/staff/enrol/\S+", link), link

    # Nora opens the link in her own browser, chooses a passphrase and sets up her authenticator.
    nora = new_context().new_page()
    nora.goto(link)
    passphrase = "willow heron granite compass ember"
    nora.locator("#passphrase").fill(passphrase)
    nora.locator("#repeat").fill(passphrase)
    secret = re.sub(r"\s+", "", nora.locator("#totp-secret").inner_text())
    authenticator = live_server.authenticator("nora.officer.browser", secret)
    code = pyotp.TOTP(secret, interval=TOTP_STEP_SECONDS).now()
    authenticator.spend(code)
    nora.locator("#code").fill(code)
    submit(nora, urlsplit(link).path)
    expect(nora.locator("form[action='/staff/login']")).to_be_visible()
    staff_log_in(nora, live_server, "nora.officer.browser", passphrase, secret)
    # A member without the desk key sees no tip of the desk yet.
    expect(nora.get_by_role("link", name=case_number, exact=True)).to_have_count(0)

    # Erik, who holds the desk key, grants it to her from the desk page.
    officer = live_server.account(desk=DESK)
    erik = new_context(storage_state=staff_state(new_context, live_server, officer)).new_page()
    erik.goto("/staff/")
    desk_link = erik.locator('a[href^="/staff/desks/"]').first
    expect(desk_link).to_be_visible()
    desk_link.click()
    erik.get_by_role("button", name=re.compile(r"nora\.officer\.browser")).first.click()
    expect(erik.locator(".notice")).to_be_visible()
    expect(erik.locator("#holders-heading + .members")).to_contain_text("nora.officer.browser")

    # From her next page she reads the tip that was sent before she joined.
    nora.goto("/staff/")
    nora.get_by_role("link", name=case_number, exact=True).click()
    expect(nora.locator("main")).to_contain_text("Försäljning av narkotika vid busshållplatsen")
