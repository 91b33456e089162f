"""What people do in the browser tests: a resident sends and follows up a tip, staff log in with an
authenticator. Shared by the flow, screenshot, accessibility and keyboard tests.

Everything goes through the page as a person would (labels, buttons, links); ids are used only where the
interface contract names them (`#reply-code`, `#case-number`) or a person reads the value off the screen.
"""

from __future__ import annotations

import dataclasses
import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyotp
from PIL import Image
from playwright.sync_api import BrowserContext, Page, Route, StorageState, expect

from portal.accounts.login import TOTP_STEP_SECONDS, TOTP_WINDOW

CAMERA_MAKE = "LyktaTestCamera"  # planted in the photo's EXIF; must not reach the officer
# What a resident writes, in the language of the page (the form takes any script).
ANSWERS: dict[str, dict[str, str]] = {
    "sv": {"what": "Försäljning av narkotika vid busshållplatsen varje kväll.", "where": "Torget"},
    "fi": {"what": "Huumekauppaa bussipysäkillä joka ilta.", "where": "Tori"},
    "ar": {"what": "بيع المخدرات عند موقف الحافلات كل مساء.", "where": "الساحة"},
    "syr": {"what": "ܙܒܢܐ ܕܣܡܡܐ ܠܘܬ ܩܘܝܡܐ ܕܒܣ ܟܠ ܪܡܫ.", "where": "ܫܘܩܐ"},
}
DEFAULT_ANSWERS = {"what": "Someone sells drugs at the bus stop every evening.", "where": "The square"}


@dataclasses.dataclass
class Authenticator:
    """A staff member's authenticator app. The server accepts each code once (replay protection) and one
    step of clock drift either way, so a second login in the same 30 seconds takes the next step's code;
    past that, it waits for the clock as a person would."""

    secret: str
    last_step: int = -1

    def code(self) -> str:
        totp = pyotp.TOTP(self.secret, interval=TOTP_STEP_SECONDS)
        while True:
            current = int(time.time() // TOTP_STEP_SECONDS)
            step = max(current, self.last_step + 1)
            if step <= current + TOTP_WINDOW:
                self.last_step = step
                return totp.at(step * TOTP_STEP_SECONDS)
            time.sleep(TOTP_STEP_SECONDS - time.time() % TOTP_STEP_SECONDS + 0.05)

    def spend(self, code: str) -> None:
        """Remember a code typed elsewhere (enrolment), so the next login does not replay it."""
        totp = pyotp.TOTP(self.secret, interval=TOTP_STEP_SECONDS)
        current = int(time.time() // TOTP_STEP_SECONDS)
        for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
            if totp.at(step * TOTP_STEP_SECONDS) == code:
                self.last_step = max(self.last_step, step)


@dataclasses.dataclass
class LiveServer:
    base_url: str
    accounts: dict[str, Any]
    data_dir: Path
    log_path: Path
    authenticators: dict[str, Authenticator] = dataclasses.field(default_factory=dict)
    staff_states: dict[str, StorageState] = dataclasses.field(default_factory=dict)

    def account(self, *, role: str | None = None, desk: str | None = None) -> dict[str, Any]:
        for candidate in self.accounts["accounts"]:
            if (role is None or candidate["role"] == role) and (desk is None or desk in candidate["desks"]):
                return candidate  # type: ignore[no-any-return]
        raise LookupError((role, desk))

    def authenticator(self, username: str, secret: str) -> Authenticator:
        return self.authenticators.setdefault(username, Authenticator(secret))


class RequestGuard:
    """Every request a page makes goes through here: to the server under test it passes, anywhere else is
    refused and remembered (DESIGN 4: no third-party request from any page)."""

    def __init__(self, context: BrowserContext, base_url: str) -> None:
        self.origin = urlsplit(base_url).netloc
        self.requests: list[str] = []
        self.foreign: list[str] = []
        context.route("**/*", self._route)

    def _route(self, route: Route) -> None:
        url = route.request.url
        self.requests.append(url)
        parts = urlsplit(url)
        if parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.netloc == self.origin:
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def assert_only_loopback(self) -> None:
        assert not self.foreign, f"requests left the server under test: {self.foreign}"


def photo_with_exif(path: Path) -> Path:
    """A small JPEG with a camera make and a GPS position in its EXIF, as a phone photo has."""
    image = Image.new("RGB", (96, 64), (180, 110, 40))
    exif = Image.Exif()
    exif[0x010F] = CAMERA_MAKE  # Make
    exif[0x8825] = {1: "N", 2: (59.0, 12.0, 0.0), 3: "E", 4: (17.0, 37.0, 0.0)}  # GPSInfo
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, quality=80)
    path.write_bytes(buffer.getvalue())
    return path


def submit(page: Page, action: str) -> None:
    """Press the submit button of the form posting to `action` (a path ending)."""
    page.locator(f'form[action$="{action}"] button[type="submit"]').first.click()


def fill_tip_form(page: Page, lang: str, *, what: str, where: str, category: str = "drugs") -> None:
    page.goto(f"/{lang}/tip")
    page.locator("#municipality").select_option("sodertalje")
    page.locator(f"#category-{category}").check()
    page.locator("#what").fill(what)
    page.locator("#where").fill(where)
    page.locator("#how_known-saw").check()


def send_tip(
    page: Page,
    lang: str,
    photo: Path | None,
    answers: dict[str, str] | None = None,
    *,
    category: str = "drugs",
) -> tuple[str, str]:
    """Fill in the form, review, attach `photo`, send; the reply code and case number as shown."""
    answers = answers or ANSWERS.get(lang, DEFAULT_ANSWERS)
    fill_tip_form(page, lang, category=category, **answers)
    submit(page, f"/{lang}/tip")
    expect(page.locator('form[action$="/tip/send"]')).to_be_visible()
    if photo is not None:
        page.locator("#files").set_input_files(photo)
    page.locator("#confirm").check()
    submit(page, f"/{lang}/tip/send")
    return read_code_card(page)


def read_code_card(page: Page) -> tuple[str, str]:
    code = page.locator("#reply-code").inner_text().strip()
    case_number = page.locator("#case-number").inner_text().strip()
    assert re.fullmatch(r"\d{4}( \d{4}){5}", code), code
    return code, case_number


def finish(page: Page, lang: str) -> None:
    page.locator("#saved").check()
    submit(page, f"/{lang}/tip/done")
    expect(page.locator(f'a[href="/{lang}/followup"]').first).to_be_visible()


def open_mailbox(page: Page, lang: str, code: str) -> None:
    page.goto(f"/{lang}/followup")
    page.locator("#reply_code").fill(code)
    submit(page, f"/{lang}/followup")
    expect(page).to_have_url(re.compile(rf"/{re.escape(lang)}/mailbox$"))


def send_message(page: Page, lang: str, text: str, files: list[Path] | None = None) -> None:
    page.locator("#message").fill(text)
    if files:
        page.locator("#files").set_input_files(files)
    submit(page, f"/{lang}/mailbox/reply")
    expect(page.locator(".conversation")).to_contain_text(text)


def staff_log_in(page: Page, server: LiveServer, username: str, password: str, secret: str) -> None:
    page.goto("/staff/login")
    page.locator("#username").fill(username)
    page.locator("#passphrase").fill(password)
    page.locator("#code").fill(server.authenticator(username, secret).code())
    submit(page, "/staff/login")
    expect(page.locator('form[action="/staff/logout"]')).to_be_visible()


def staff_state(
    context_factory: Callable[[], BrowserContext], server: LiveServer, who: dict[str, Any]
) -> StorageState:
    """The cookies of a logged-in session for `who`, logging in once per test session (each login spends a
    TOTP code, and the key unwrapping is deliberately slow)."""
    username = who["username"]
    if username not in server.staff_states:
        context = context_factory()
        page = context.new_page()
        staff_log_in(page, server, username, who["password"], who["totp_secret"])
        server.staff_states[username] = context.storage_state()
        context.close()
    return server.staff_states[username]
