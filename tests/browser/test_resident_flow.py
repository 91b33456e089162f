"""A resident with JavaScript off sends a tip with a photo and follows it up; an officer logs in with
passphrase and TOTP, opens the tip, answers; the resident reads the answer. In Swedish, Arabic, Syriac and
Finnish, against a real `lykta serve` (issue 6, item 1)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import ContextFactory
from tests.browser.pages import (
    ANSWERS,
    CAMERA_MAKE,
    LiveServer,
    finish,
    open_mailbox,
    photo_with_exif,
    send_message,
    send_tip,
    staff_state,
    submit,
)

pytestmark = pytest.mark.browser

FOLLOW_UP = {
    "sv": "Bilen är svart och står där efter klockan tio.",
    "fi": "Auto on musta ja seisoo siellä kello kymmenen jälkeen.",
    "ar": "السيارة سوداء وتقف هناك بعد الساعة العاشرة.",
    "syr": "ܡܪܟܒܬܐ ܐܘܟܡܬܐ ܗ̄ܝ ܘܩܝܡܐ ܬܡܢ ܒܬܪ ܫܥܐ ܥܣܪ.",
}
OFFICER_DESK = "polisen-sodertalje-tips"  # where a drugs tip about Södertälje goes (network catalogue)


@pytest.mark.parametrize("lang", ["sv", "ar", "syr", "fi"])
def test_tip_with_photo_follow_up_and_answer_without_javascript(
    lang: str,
    resident_context: BrowserContext,
    new_context: ContextFactory,
    live_server: LiveServer,
    tmp_path: Path,
) -> None:
    resident = resident_context.new_page()
    code, case_number = send_tip(resident, lang, photo_with_exif(tmp_path / "bild.jpg"))
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", case_number), case_number
    finish(resident, lang)
    assert resident.locator("script").count() == 0  # nothing here needs, or ships, JavaScript

    open_mailbox(resident, lang, code)
    expect(resident.locator("main")).to_contain_text(case_number)
    expect(resident.locator("main")).to_contain_text(ANSWERS[lang]["what"])
    expect(resident.locator("main .files")).to_contain_text("bild.jpg")
    send_message(resident, lang, FOLLOW_UP[lang])
    submit(resident, f"/{lang}/logout")

    # The officer of the receiving desk logs in (passphrase + TOTP), finds the tip by its case number.
    officer = live_server.account(desk=OFFICER_DESK)
    staff = new_context(storage_state=staff_state(new_context, live_server, officer))
    desk_page = staff.new_page()
    desk_page.goto("/staff/")
    desk_page.get_by_role("link", name=case_number, exact=True).click()
    main = desk_page.locator("main")
    expect(main).to_contain_text(ANSWERS[lang]["what"])
    expect(main).to_contain_text(FOLLOW_UP[lang])
    # The photo arrives without its EXIF (camera make, GPS position): the resident did not ask to keep it.
    with desk_page.expect_download() as download_info:
        desk_page.get_by_role("link", name="bild.jpg").click()
    photo = Path(download_info.value.path()).read_bytes()
    assert CAMERA_MAKE.encode() not in photo
    assert not Image.open(io.BytesIO(photo)).getexif()
    answer = f"Tack för tipset ({lang}). Vilken bil?"
    desk_page.locator("#reply-text").fill(answer)
    submit(desk_page, "/reply")
    expect(desk_page.locator(".conversation")).to_contain_text(answer)

    # The resident comes back with the code and reads the answer.
    open_mailbox(resident, lang, code)
    conversation = resident.locator(".conversation")
    expect(conversation.locator(".from-desk")).to_contain_text(answer)
    expect(conversation.locator(".from-tipster")).to_contain_text(FOLLOW_UP[lang])
