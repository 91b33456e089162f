"""The whole resident flow with the keyboard alone, JavaScript off: choose a language, fill in the form,
send, save the code, follow up, write a message (issue 6, item 2; WCAG 2.1.1 and 2.4.7).

Only keys move and act: Tab to go forward, Enter on links and buttons, Space on checkboxes, and the arrow
keys inside a radio group or a list box, which is how the platform lets a keyboard choose in them. Every
element that takes the focus on the way must show it: a visible outline or ring, never just the UA's
default that the CSS might have removed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

MAX_TABS = 150  # the longest page, the tip form, has about 40 stops


def focused(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.locator(":focus").evaluate(
        """(e) => {
            const s = getComputedStyle(e), box = e.getBoundingClientRect();
            return {
                id: e.id, classes: [...e.classList], tag: e.tagName.toLowerCase(),
                href: e.getAttribute("href"), type: e.type || "",
                value: e.value, checked: e.checked, text: e.textContent.trim().slice(0, 60),
                focusVisible: e.matches(":focus-visible"),
                outline: s.outlineStyle === "none" ? 0 : parseFloat(s.outlineWidth),
                shadow: s.boxShadow, width: box.width, height: box.height,
            };
        }"""
    )
    return state


def assert_focus_visible(state: dict[str, Any]) -> None:
    assert state["focusVisible"], f"{state} does not match :focus-visible"
    ring = state["outline"] >= 2 or (state["shadow"] not in ("", "none"))
    assert ring, f"no visible focus indicator on {state}"
    assert state["width"] > 1 and state["height"] > 1, f"the focused element is hidden: {state}"


def tab_to(page: Page, matches: Any, what: str) -> dict[str, Any]:
    """Press Tab until the focused element is the one wanted, checking the focus ring at every stop."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        state = focused(page)
        assert_focus_visible(state)
        if matches(state):
            return state
    raise AssertionError(f"{what} cannot be reached with Tab")


def follow(page: Page, key: str) -> None:
    """Press a key that opens a link or sends a form, and wait until the next page (and its stylesheet) is
    in place before the next key."""
    with page.expect_navigation():
        page.keyboard.press(key)


def choose_with_arrows(page: Page, matches: Any, what: str) -> None:
    """Arrow down through a closed list box or a radio group (each step chooses) until `what` is chosen."""
    for _ in range(40):
        state = focused(page)
        assert_focus_visible(state)
        if matches(state):
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"{what} cannot be chosen with the arrow keys")


def test_resident_flow_with_the_keyboard_only(resident_context: BrowserContext) -> None:
    page = resident_context.new_page()
    page.goto("/")  # the language is picked from the browser's Accept-Language: English here

    # The skip link is the first stop and shows itself when focused.
    first = tab_to(page, lambda s: True, "the skip link")
    assert first["href"] == "#main"

    # Language choice: Arabic, from the language menu.
    tab_to(page, lambda s: s["href"] == "/ar/", "the Arabic language link")
    follow(page, "Enter")
    expect(page).to_have_url(re.compile(r"/ar/$"))
    expect(page.locator("html")).to_have_attribute("dir", "rtl")

    tab_to(
        page,
        lambda s: s["href"] == "/ar/tip" and "button" in s["classes"],
        "Send a tip",
    )
    follow(page, "Enter")
    expect(page).to_have_url(re.compile(r"/ar/tip$"))

    tab_to(page, lambda s: s["id"] == "municipality", "the municipality list")
    choose_with_arrows(page, lambda s: s["value"] == "sodertalje", "Södertälje")
    tab_to(page, lambda s: s["id"].startswith("category-"), "the category radio group")
    choose_with_arrows(page, lambda s: s["id"] == "category-drugs" and s["checked"], "the drugs category")
    tab_to(page, lambda s: s["id"] == "what", "What happened?")
    page.keyboard.type("بيع مخدرات عند موقف الحافلات كل مساء.")
    tab_to(page, lambda s: s["tag"] == "button" and s["type"] == "submit", "Continue")
    follow(page, "Enter")

    expect(page.locator("#confirm")).to_be_visible()
    tab_to(page, lambda s: s["id"] == "confirm", "the confirmation box")
    page.keyboard.press("Space")
    assert focused(page)["checked"]
    tab_to(page, lambda s: s["tag"] == "button" and s["type"] == "submit", "Send the tip")
    follow(page, "Enter")

    code = page.locator("#reply-code").inner_text().strip()  # the resident reads and writes it down
    assert re.fullmatch(r"\d{4}( \d{4}){5}", code)
    tab_to(page, lambda s: s["id"] == "saved", "I have saved my reply code")
    page.keyboard.press("Space")
    tab_to(page, lambda s: s["tag"] == "button" and s["type"] == "submit", "Finish")
    follow(page, "Enter")

    tab_to(page, lambda s: s["href"] == "/ar/followup", "Follow up a tip")
    follow(page, "Enter")
    expect(page).to_have_url(re.compile(r"/ar/followup$"))
    tab_to(page, lambda s: s["id"] == "reply_code", "the reply code field")
    page.keyboard.type(code)
    follow(page, "Enter")  # in a text field: submits the form it belongs to
    expect(page).to_have_url(re.compile(r"/ar/mailbox$"))

    tab_to(page, lambda s: s["id"] == "message", "the message field")
    page.keyboard.type("السيارة سوداء.")
    tab_to(page, lambda s: s["tag"] == "button" and "mailbox/reply" in _form_action(page), "Send the message")
    follow(page, "Enter")
    expect(page.locator(".conversation .from-tipster")).to_contain_text("السيارة سوداء.")


def _form_action(page: Page) -> str:
    action: str = page.locator(":focus").evaluate("(e) => (e.form && e.form.getAttribute('action')) || ''")
    return action
