"""Every resident page in every launch language: a full-page screenshot as a test artifact, an axe-core
audit (WCAG 2.1 A and AA) with no violation, the self-hosted font of the page's script in use, and on
right-to-left pages the reading order (issue 6, items 1 and 2).

The walk goes through the pages as a resident meets them: home, privacy, accessibility, emergency, the tip
form (empty, then with errors), the review, the reply-code card, the thank-you page, follow-up (empty, then
with a mistyped code), the mailbox before and after a message, and a page that does not exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, FloatRect, Locator, Page, ViewportSize, expect

from portal.i18n import LOCALES, Locale
from tests.browser.axe import audit, describe
from tests.browser.pages import (
    LiveServer,
    RequestGuard,
    fill_tip_form,
    finish,
    open_mailbox,
    photo_with_exif,
    read_code_card,
    send_message,
    submit,
)

pytestmark = pytest.mark.browser

SCRIPT_FONTS = {"Arab": "Noto Sans Arabic", "Syrc": "Noto Sans Syriac", "Ethi": "Noto Sans Ethiopic"}
WRITTEN = {  # typed in the page's own script, so the user-text boxes are shown in it too
    "Arab": ("بيع مخدرات عند موقف الحافلات.", "الساحة"),
    "Syrc": ("ܙܒܢܐ ܕܣܡܡܐ ܠܘܬ ܩܘܝܡܐ.", "ܫܘܩܐ"),
    "Ethi": ("ኣብ መዕረፊ ኣውቶቡስ ኣደንዛዚ ዕጽ ይሽየጥ።", "ኣደባባይ"),
    "Latn": ("Drugs are sold at the bus stop every evening.", "The square"),
}
PX = 2.0  # layout tolerance in CSS pixels
DESKTOP: ViewportSize = {"width": 1024, "height": 768}  # as the contexts open (conftest)
PHONE: ViewportSize = {"width": 320, "height": 640}


class Walk:
    """Visits pages of one language, photographing and auditing each one."""

    def __init__(self, page: Page, locale: Locale, shots: Path) -> None:
        self.page, self.locale, self.shots = page, locale, shots
        self.reports: list[str] = []
        self.count = 0
        shots.mkdir(parents=True, exist_ok=True)

    def check(self, name: str) -> None:
        page = self.page
        expect(page.locator("html")).to_have_attribute("lang", self.locale.babel.replace("_", "-"))
        expect(page.locator("html")).to_have_attribute("dir", self.locale.direction)
        assert page.locator("script").count() == 0, f"{name}: the page ships a script"
        page.evaluate("document.fonts.ready.then(() => true)")
        self.count += 1
        page.screenshot(path=self.shots / f"{self.count:02d}-{name}.png", full_page=True)
        violations = audit(page)
        if violations:
            self.reports.append(describe(f"{self.locale.code} {name} ({page.url})", violations))
        # On a small phone (320 CSS px, WCAG 1.4.10 reflow): nothing may need sideways scrolling.
        page.set_viewport_size(PHONE)
        overflow = page.evaluate("(d => d.scrollWidth - d.clientWidth)(document.documentElement)")
        page.screenshot(path=self.shots / f"{self.count:02d}-{name}-phone.png", full_page=True)
        page.set_viewport_size(DESKTOP)
        if overflow > 0:
            self.reports.append(f"{self.locale.code} {name}: {overflow}px wider than a 320px screen")


def _box(locator: Locator) -> FloatRect:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not rendered"
    return box


def assert_labels_beside_fields(page: Page, direction: str) -> None:
    """Labels sit above their text fields, flush with the start edge (right in RTL, left in LTR); a radio
    button or checkbox comes first on the line and its label after it, on the end side."""
    rtl = direction == "rtl"
    for field in ("municipality", "what", "when", "where", "who", "contact"):
        label, control = _box(page.locator(f'label[for="{field}"]')), _box(page.locator(f"#{field}"))
        assert label["y"] + label["height"] <= control["y"] + PX, f"label of {field} is not above it"
        if rtl:
            assert abs((label["x"] + label["width"]) - (control["x"] + control["width"])) <= PX, field
        else:
            assert abs(label["x"] - control["x"]) <= PX, field
    for choice in ("category-drugs", "how_known-saw"):
        radio, label = _box(page.locator(f"#{choice}")), _box(page.locator(f'label[for="{choice}"]'))
        assert abs((radio["y"] + radio["height"] / 2) - (label["y"] + label["height"] / 2)) < label["height"]
        if rtl:
            assert radio["x"] >= label["x"] + label["width"] - PX, f"{choice}: radio not right of its label"
        else:
            assert radio["x"] + radio["width"] <= label["x"] + PX, f"{choice}: radio not left of its label"


def assert_reply_code_left_to_right(page: Page) -> None:
    """The code and the case number are isolated left-to-right runs: the digit groups read left to right
    in the order the resident must type them, whatever the page's direction."""
    code = page.locator("#reply-code")
    for element in (code, page.locator("#case-number")):
        style = element.evaluate("e => [getComputedStyle(e).direction, getComputedStyle(e).unicodeBidi]")
        assert style == ["ltr", "isolate"], style
    text = code.inner_text().strip()
    lefts: list[float] = code.evaluate(
        """(e, groups) => {
            const node = e.firstChild, text = node.textContent;
            let from = 0;
            return groups.map((g) => {
                const start = text.indexOf(g, from); from = start + g.length;
                const range = document.createRange(); range.setStart(node, start); range.setEnd(node, from);
                return range.getBoundingClientRect().left;
            });
        }""",
        text.split(),
    )
    assert lefts == sorted(lefts) and len(set(lefts)) == 6, f"the groups of {text!r} render at {lefts}"


def assert_script_font_used(page: Page, script: str) -> None:
    family = SCRIPT_FONTS.get(script)
    if family is None:
        return
    faces: list[dict[str, Any]] = page.evaluate(
        """async (family) => {
            await document.fonts.ready;
            return [...document.fonts].filter((f) => f.family.replace(/"/g, "") === family)
                .map((f) => ({weight: f.weight, status: f.status}));
        }""",
        family,
    )
    assert any(face["status"] == "loaded" for face in faces), f"{family} is not used: {faces}"


@pytest.mark.parametrize("locale", LOCALES, ids=[locale.code for locale in LOCALES])
def test_every_resident_page(
    locale: Locale, audit_context: BrowserContext, artifacts_dir: Path, tmp_path: Path
) -> None:
    lang = locale.code
    page = audit_context.new_page()
    walk = Walk(page, locale, artifacts_dir / "screenshots" / lang)

    page.goto(f"/{lang}/")
    assert_script_font_used(page, locale.script)
    walk.check("home")
    for name in ("privacy", "accessibility", "emergency"):
        page.goto(f"/{lang}/{name}")
        walk.check(name)

    page.goto(f"/{lang}/tip")
    assert_labels_beside_fields(page, locale.direction)
    walk.check("tip-form")
    submit(page, f"/{lang}/tip")
    expect(page.locator(".error-summary")).to_be_visible()
    walk.check("tip-form-errors")

    what, where = WRITTEN[locale.script]
    fill_tip_form(page, lang, what=what, where=where)
    submit(page, f"/{lang}/tip")
    expect(page.locator("#confirm")).to_be_visible()
    walk.check("tip-review")
    page.locator("#files").set_input_files(photo_with_exif(tmp_path / "photo.jpg"))
    page.locator("#confirm").check()
    submit(page, f"/{lang}/tip/send")
    code, _case_number = read_code_card(page)
    assert_reply_code_left_to_right(page)
    walk.check("tip-sent")
    finish(page, lang)
    walk.check("tip-done")

    page.goto(f"/{lang}/followup")
    walk.check("followup")
    page.locator("#reply_code").fill("1234 5678")
    submit(page, f"/{lang}/followup")
    expect(page.locator("#reply_code-error")).to_be_visible()
    walk.check("followup-error")
    open_mailbox(page, lang, code)
    walk.check("mailbox")
    send_message(page, lang, what)
    walk.check("mailbox-message")

    page.goto(f"/{lang}/no-such-page")
    walk.check("not-found")

    assert walk.count == 14
    assert not walk.reports, "WCAG 2.1 A/AA violations (axe-core, reflow):\n" + "\n\n".join(walk.reports)


def test_the_request_guard_sees_a_third_party_request(browser: Browser, live_server: LiveServer) -> None:
    """The guard every context carries is not blind: a page that asked another host would fail its test."""
    # With the page's CSP set aside: it would stop this image before any request (a second line of defence).
    context = browser.new_context(base_url=live_server.base_url, java_script_enabled=False, bypass_csp=True)
    guard = RequestGuard(context, live_server.base_url)
    page = context.new_page()
    page.goto("/en/")
    page.set_content('<img src="http://192.0.2.1/tracker.gif" alt="">')
    page.wait_for_load_state()
    context.close()
    assert any(url.startswith(f"{live_server.base_url}/en/") for url in guard.requests)
    assert guard.foreign == ["http://192.0.2.1/tracker.gif"]
    with pytest.raises(AssertionError, match="requests left the server under test"):
        guard.assert_only_loopback()
