"""Every resident page in every launch language: complete catalogs, no English left, the right direction."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po
from starlette.testclient import TestClient

from portal import i18n
from tests.portal.submission.browser import ANSWERS, form_token, send_tip

ROOT = Path(__file__).resolve().parents[2]
POT = ROOT / "locales" / "messages.pot"
TRANSLATED = [locale for locale in i18n.LOCALES if locale.code != i18n.SOURCE_LANGUAGE]
GET_PAGES = ["", "tip", "followup", "privacy", "accessibility", "emergency"]
TAG = re.compile(r"<[^>]+>")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


STAFF_TRANSLATED = [locale for locale in i18n.STAFF_LOCALES if locale.code != i18n.SOURCE_LANGUAGE]


def catalog(locale: i18n.Locale, domain: str = i18n.RESIDENT_DOMAIN) -> Catalog:
    with (ROOT / "locales" / locale.babel / "LC_MESSAGES" / f"{domain}.po").open("rb") as f:
        return read_po(f, locale=locale.babel)


def ids_in(path: Path) -> set[str]:
    with path.open("rb") as f:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}


def template_ids() -> set[str]:
    return ids_in(POT)


@pytest.mark.parametrize(("config", "template"), [("babel.cfg", "messages.pot"), ("staff.cfg", "staff.pot")])
def test_pot_is_not_stale(tmp_path: Path, config: str, template: str) -> None:
    fresh = tmp_path / template
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", str(ROOT / "locales" / config), "-k", "N_", "--no-wrap",
         "-o", str(fresh), str(ROOT)]
    )  # fmt: skip
    assert ids_in(fresh) == ids_in(ROOT / "locales" / template), (
        "run the extract commands in docs/translations.md"
    )


def assert_complete_and_faithful(translated: Catalog, template: set[str]) -> None:
    messages = {m.id if isinstance(m.id, str) else m.id[0]: m for m in translated if m.id}
    assert set(messages) >= template, "run pybabel update and translate the new strings"
    for msgid, message in messages.items():
        if msgid not in template:
            continue
        assert not message.fuzzy, msgid
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        for translation in strings:
            assert translation.strip(), f"untranslated: {msgid!r}"
            # Placeholders and markup must survive translation exactly, or the page breaks.
            assert set(PLACEHOLDER.findall(translation)) <= set(PLACEHOLDER.findall(" ".join(ids))), msgid
            assert sorted(TAG.findall(translation)) == sorted(TAG.findall(ids[0])), msgid


@pytest.mark.parametrize("locale", TRANSLATED, ids=lambda locale: locale.code)
def test_catalog_is_complete_and_faithful(locale: i18n.Locale) -> None:
    assert_complete_and_faithful(catalog(locale), template_ids())


@pytest.mark.parametrize("locale", STAFF_TRANSLATED, ids=lambda locale: locale.code)
def test_staff_catalog_is_complete_and_faithful(locale: i18n.Locale) -> None:
    assert_complete_and_faithful(catalog(locale, i18n.STAFF_DOMAIN), ids_in(ROOT / "locales" / "staff.pot"))


def visible_text(page: str) -> str:
    body = page.split("<body>", 1)[1]
    return html.unescape(re.sub(r"\s+", " ", TAG.sub(" ", body)))


def english_sentences() -> set[str]:
    """English msgids long enough to be recognisable in a page (short words like "Lykta" stay as they are)."""
    return {html.unescape(TAG.sub(" ", m)).strip() for m in template_ids() if len(m) > 12 and "%(" not in m}


def assert_translated(page: str, locale: i18n.Locale) -> None:
    assert f'<html lang="{locale.babel.replace("_", "-")}" dir="{locale.direction}"' in page
    text = visible_text(page)
    left = sorted(s for s in english_sentences() if re.sub(r"\s+", " ", s) in text)
    assert not left, f"English left on a {locale.code} page: {left[:3]}"


@pytest.mark.parametrize("locale", TRANSLATED, ids=lambda locale: locale.code)
def test_every_resident_page_is_translated(client: TestClient, locale: i18n.Locale) -> None:
    for page in GET_PAGES:
        response = client.get(f"/{locale.code}/{page}")
        assert response.status_code == 200, page
        assert_translated(response.text, locale)
    # The pages behind forms: review, reply code, the "saved?" step, the mailbox, and an error page.
    form = client.get(f"/{locale.code}/tip")
    review = client.post(
        f"/{locale.code}/tip", data={**ANSWERS, "csrf": form_token(form.text, f"/{locale.code}/tip")}
    )
    assert_translated(review.text, locale)
    invalid = client.post(f"/{locale.code}/tip", data={"csrf": form_token(form.text, f"/{locale.code}/tip")})
    assert invalid.status_code == 400
    assert_translated(invalid.text, locale)
    code, _case = send_tip(client, locale.code, ANSWERS, [])
    login = client.get(f"/{locale.code}/followup")
    mailbox = client.post(
        f"/{locale.code}/followup",
        data={"reply_code": code, "csrf": form_token(login.text, f"/{locale.code}/followup")},
    )
    assert_translated(mailbox.text, locale)
    assert_translated(client.get(f"/{locale.code}/nowhere").text, locale)


def test_rtl_languages_are_marked_rtl(client: TestClient) -> None:
    for locale in i18n.LOCALES:
        page = client.get(f"/{locale.code}/").text
        expected = "rtl" if locale.code in {"ar", "syr", "fa", "fa-AF"} else "ltr"
        assert f'dir="{expected}"' in page.split(">", 2)[1]


def test_reply_code_is_left_to_right_everywhere(client: TestClient) -> None:
    for code_lang in ("ar", "syr", "fa-AF"):
        form = client.get(f"/{code_lang}/tip")
        review = client.post(
            f"/{code_lang}/tip", data={**ANSWERS, "csrf": form_token(form.text, f"/{code_lang}/tip")}
        )
        sent = client.post(
            f"/{code_lang}/tip/send",
            data={**ANSWERS, "confirm": "yes", "csrf": form_token(review.text, f"/{code_lang}/tip/send")},
            files=[("files", ("", b"", "application/octet-stream"))],
        )
        assert re.search(r'id="reply-code" dir="ltr"', sent.text)


def test_explicit_choice_wins_over_accept_language(client: TestClient) -> None:
    first = client.get("/", headers={"accept-language": "ar,en;q=0.5"}, follow_redirects=False)
    assert first.headers["location"] == "/ar/"
    client.get("/fi/")  # visiting a language prefix is an explicit choice
    second = client.get("/", headers={"accept-language": "ar,en;q=0.5"}, follow_redirects=False)
    assert second.headers["location"] == "/fi/"


def test_language_switcher_on_every_page_links_every_language(client: TestClient) -> None:
    for page in GET_PAGES:
        text = client.get(f"/sv/{page}").text
        for locale in i18n.LOCALES:
            assert f'href="/{locale.code}/{page}"' in text, (page, locale.code)


def staff_sentences() -> set[str]:
    ids = ids_in(ROOT / "locales" / "staff.pot") - template_ids()  # strings shared with residents aside
    return {html.unescape(TAG.sub(" ", m)).strip() for m in ids if len(m) > 12 and "%(" not in m}


@pytest.mark.parametrize("code", ["sv", "fi"])
def test_back_office_pages_are_translated(
    client: TestClient, demo_accounts: dict[str, object], code: str
) -> None:
    from sqlmodel import select

    from portal.accounts.models import StaffAccount
    from portal.db import session_scope
    from tests.portal.triage.test_staff_flow import account, staff_login

    client.get(f"/staff/login?lang={code}")
    pages = [client.get("/staff/login").text]
    send_tip(client, "sv", {**ANSWERS, "category": "other"}, [])
    officer = account(demo_accounts, desk="pax-ragnhild-bedomning")  # type: ignore[arg-type]
    services = client.app.state.services  # type: ignore[attr-defined]
    with session_scope(services.engine) as db:
        staff = db.exec(select(StaffAccount).where(StaffAccount.username == officer["username"])).one()
        staff.language = code
        db.add(staff)
    inbox = staff_login(client, officer).text
    tip_url = re.search(r'href="(/staff/tips/[0-9a-f]{32})"', inbox)
    assert tip_url
    pages += [inbox, client.get(tip_url.group(1)).text, client.get("/staff/intake").text]
    for page in pages:
        assert f'<html lang="{code}"' in page
        left = sorted(s for s in staff_sentences() if re.sub(r"\s+", " ", s) in visible_text(page))
        assert not left, f"English left on a {code} staff page: {left[:3]}"
