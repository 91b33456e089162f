"""The statistics pages: the public one in every language, without script or third party, with figures
under 5 never shown; the back-office one for administrators, analysts and desk leads only."""

from __future__ import annotations

import datetime
import html
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from portal import i18n
from portal.stats.figures import Quarter
from portal.web import Services
from tests.portal.stats.facts import plant_facts
from tests.portal.submission.browser import ANSWERS, send_tip
from tests.portal.test_i18n import assert_translated
from tests.portal.triage.test_staff_flow import account, staff_login

TODAY = datetime.datetime.now(datetime.UTC).date()
LAST_QUARTER = Quarter.of(TODAY).previous()
RTL = {"ar", "syr", "fa", "fa-AF"}


def plant_last_quarter(services: Services) -> None:
    """1234 drug tips (all passed on to an investigation), 7 about weapons, 3 about tax (to be hidden)."""
    first = LAST_QUARTER.first_day
    rows: list[dict[str, Any]] = []
    rows += [
        {"category": "drugs", "received_on": first, "closed_on": first, "outcome": "passed-to-investigation"}
    ] * 1234
    rows += [{"category": "weapons", "received_on": first + datetime.timedelta(days=20)}] * 7
    rows += [{"category": "tax", "received_on": LAST_QUARTER.last_day, "closed_on": LAST_QUARTER.last_day,
              "outcome": "unfounded"}] * 3  # fmt: skip
    plant_facts(services.engine, rows)


def figure(page: str, table_id: str, row_text: str) -> str:
    """The figure in the row of table `table_id` whose heading contains `row_text`."""
    table = re.search(rf'<table id="{table_id}-table">(.*?)</table>', page, re.S)
    assert table, table_id
    for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        if row_text in html.unescape(cells[0]):
            return html.unescape(cells[-1]).strip()
    raise LookupError(row_text)


def translate(lang: str, msgid: str, **variables: object) -> str:
    text = i18n.load_all()[lang].gettext(msgid)
    return text % variables if variables else text


@pytest.mark.parametrize("locale", i18n.LOCALES, ids=lambda locale: locale.code)
def test_public_page_in_every_language(client: TestClient, services: Services, locale: i18n.Locale) -> None:
    plant_last_quarter(services)
    home = client.get(f"/{locale.code}/")
    assert f'href="/{locale.code}/statistics"' in home.text, "linked from every resident page"
    page = client.get(f"/{locale.code}/statistics")
    assert page.status_code == 200
    text = page.text
    assert f'dir="{"rtl" if locale.code in RTL else "ltr"}"' in text.split(">", 2)[1]
    if locale.code != "en":
        assert_translated(text, locale)
    # No script, and nothing fetched from or linked to another site.
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", text)
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # The chart is a picture of the table beside it.
    assert re.search(r'<svg [^>]*role="img"[^>]*aria-labelledby="received-title"', text)
    assert '<title id="received-title">' in text
    if locale.code in RTL:
        assert 'direction="rtl"' in text
    # Numbers as the language writes them, and no figure under 5.
    few = translate(locale.code, "fewer than %(limit)s", limit="5")
    drugs = translate(locale.code, "Drugs")
    thousands = {"sv": "1\xa0234", "fi": "1\xa0234", "pl": "1\xa0234"}.get(locale.code, "1,234")
    assert figure(text, "received", drugs) == thousands
    assert figure(text, "received", translate(locale.code, "Tax and company fraud")) == few
    # 7 weapons tips are the smallest figure beside the 3: left out, so 3 is not the total minus the rest.
    weapons = figure(text, "received", translate(locale.code, "Weapons and explosives"))
    assert weapons == translate(locale.code, "not shown")
    assert figure(text, "concluded", translate(locale.code, "Closed as unfounded")) == few


def test_public_page_totals_never_give_a_small_figure_away(client: TestClient, services: Services) -> None:
    plant_last_quarter(services)
    page = client.get("/en/statistics").text
    # 1244 tips came in: the 3 about tax are "fewer than 5", the 7 about weapons are left out, so the total
    # (shown) minus the figures shown is 10, which could be 0 + 10 as well as 3 + 7.
    assert figure(page, "received", "All tips") == "1,244"
    shown = [figure(page, "received", name) for name in ("Drugs", "Weapons", "Tax")]
    assert shown == ["1,234", "not shown", "fewer than 5"]
    # Concluded: 1234 passed on and 3 unfounded; the other outcomes are 0, which is "fewer than 5" too.
    # This table leaves out its total rather than its largest figure.
    assert figure(page, "concluded", "Passed on to an investigation") == "1,234"
    assert figure(page, "concluded", "All concluded cases") == "not shown"


def test_only_ended_quarters_are_published(client: TestClient) -> None:
    assert client.get(f"/en/statistics/{Quarter.of(TODAY)}").status_code == 404
    assert client.get("/en/statistics/2026-Q9").status_code == 404
    assert client.get("/en/statistics/nonsense").status_code == 404
    assert client.get(f"/en/statistics/{LAST_QUARTER}").status_code == 200


def test_a_new_tip_is_not_public_until_its_quarter_has_ended(client: TestClient) -> None:
    send_tip(client, "en", ANSWERS, [])
    page = client.get("/en/statistics").text
    assert figure(page, "received", "All tips") == "fewer than 5"


@pytest.mark.parametrize(("role", "allowed"), [
    ("administrator", True), ("analyst", True), ("desk-lead", True), ("officer", False),
])  # fmt: skip
def test_who_sees_the_staff_statistics(
    client: TestClient, demo_accounts: dict[str, Any], role: str, allowed: bool
) -> None:
    staff_login(client, account(demo_accounts, role=role))
    page = client.get("/staff/statistics")
    if allowed:
        assert page.status_code == 200
        assert 'href="/staff/statistics"' in client.get("/staff/").text
    else:
        assert page.status_code == 404
        assert page.text == client.get("/staff/no-such-page").text
        assert 'href="/staff/statistics"' not in client.get("/staff/").text


def test_logged_out_visitors_are_sent_to_the_login(client: TestClient) -> None:
    response = client.get("/staff/statistics", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/login"


def test_staff_page_counts_this_quarter_and_hides_small_figures(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    for _ in range(6):
        send_tip(client, "sv", ANSWERS, [])  # drugs
    send_tip(client, "sv", {**ANSWERS, "category": "tax"}, [])
    client.cookies.clear()
    staff_login(client, account(demo_accounts, role="analyst"))
    page = client.get("/staff/statistics").text
    staff_sv = i18n.load_all(domain=i18n.STAFF_DOMAIN)["sv"].gettext  # the demo staff read Swedish
    assert figure(page, "categories", staff_sv("Drugs")) == staff_sv("not shown")
    few = staff_sv("fewer than %(limit)s") % {"limit": "5"}
    assert figure(page, "categories", staff_sv("Tax and company fraud")) == few
    assert figure(page, "categories", staff_sv("Total")) == "7"
    assert "<script" not in page.lower()
    assert re.search(r'<svg [^>]*role="img"', page)
    assert client.get("/staff/statistics?quarter=1999-Q1").status_code == 400
    assert client.get(f"/staff/statistics?quarter={Quarter.of(TODAY)}").status_code == 200


def test_staff_page_times_to_acknowledgement_and_closing(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    start = Quarter.of(TODAY).first_day
    acknowledged = [1, 2, 3, 4, 10]  # median 3; nine in ten within 10
    plant_facts(
        services.engine,
        [{"received_on": start, "acknowledged_on": start + datetime.timedelta(days=d)} for d in acknowledged]
        + [{"received_on": start, "closed_on": start + datetime.timedelta(days=30), "outcome": "unfounded"}],
    )
    staff_login(client, account(demo_accounts, role="administrator"))
    page = client.get("/staff/statistics").text
    timing = re.search(r'<table id="timing-table">(.*?)</table>', page, re.S)
    assert timing
    rows = [re.sub(r"<[^>]+>", "|", row) for row in re.findall(r"<tr>(.*?)</tr>", timing.group(1), re.S)]
    figures_in = [[cell for cell in row.split("|") if cell.strip()] for row in rows[1:]]
    assert figures_in[0][1:] == ["3", "10"]
    # One tip closed: too few for a median, which would be that tip's own time.
    assert len(figures_in[1]) == 2 and "30" not in figures_in[1][1]
