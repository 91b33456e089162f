"""The public statistics page in every launch language, in a real browser: no script, no request off the
machine, no WCAG 2.1 A/AA violation (axe-core), and on right-to-left pages bars that grow from the right."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from portal.i18n import LOCALES, Locale
from tests.browser.axe import audit, describe
from tests.browser.pages import LiveServer, finish, send_tip

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("locale", LOCALES, ids=lambda locale: locale.code)
def test_statistics_page(
    audit_context: BrowserContext, live_server: LiveServer, artifacts_dir: Path, locale: Locale
) -> None:
    page = audit_context.new_page()
    page.goto(f"{live_server.base_url}/{locale.code}/")
    page.locator(f'footer a[href="/{locale.code}/statistics"]').click()
    assert page.url.endswith(f"/{locale.code}/statistics")
    assert page.locator("script").count() == 0
    chart = page.locator("svg.chart").first
    assert chart.get_attribute("role") == "img"
    page.evaluate("document.fonts.ready.then(() => true)")
    shots = artifacts_dir / "statistics"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=shots / f"{locale.code}.png", full_page=True)
    violations = audit(page)
    assert not violations, describe(f"{locale.code} statistics", violations)
    # The first label starts at the start edge of the chart: the right edge in RTL, the left in LTR.
    svg_box, label_box = chart.bounding_box(), chart.locator("text").first.bounding_box()
    assert svg_box is not None and label_box is not None
    if locale.direction == "rtl":
        assert abs((svg_box["x"] + svg_box["width"]) - (label_box["x"] + label_box["width"])) < 3
    else:
        assert abs(svg_box["x"] - label_box["x"]) < 3


def test_a_tip_sent_today_is_not_on_the_public_page(
    resident_context: BrowserContext, live_server: LiveServer
) -> None:
    page = resident_context.new_page()
    send_tip(page, "en", None)
    finish(page, "en")
    page.goto(f"{live_server.base_url}/en/statistics")
    assert page.locator("#received-table tfoot td").inner_text() == "fewer than 5"
