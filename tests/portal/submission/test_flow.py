"""The whole resident flow through the app: form, review, send with files, reply code, follow-up."""

from __future__ import annotations

import io
import re

import pytest
from starlette.testclient import TestClient

import crypto
from portal.db import session_scope
from portal.submission import services as tips
from portal.submission.uploads import new_id
from portal.web import Services
from tests.portal.submission.browser import ANSWERS, form_token, send_tip


@pytest.mark.parametrize("lang", ["sv", "ar", "fi"])
def test_send_and_follow_up(client: TestClient, services: Services, lang: str) -> None:
    code, case_number = send_tip(
        client, lang, ANSWERS, [("bild.bin", b"A" * 200_000), ("notes.txt", b"hello")]
    )
    assert re.fullmatch(r"(\d{4} ){5}\d{4}", code)
    crypto.parse_reply_code(code)
    login = client.get(f"/{lang}/followup")
    mailbox = client.post(
        f"/{lang}/followup", data={"reply_code": code, "csrf": form_token(login.text, f"/{lang}/followup")}
    )
    assert mailbox.status_code == 200, mailbox.text
    assert case_number in mailbox.text
    assert "Försäljning vid busshållplatsen" in mailbox.text
    assert "bild.bin" in mailbox.text

    # A desk answers; the tipster reads the answer decrypted with the tipster key.
    with session_scope(services.engine) as db:
        tip = db.exec(tips.select(tips.Tip).where(tips.Tip.case_number == case_number)).one()
        tips.store_message(
            db, tip=tip, message_id=new_id(), author="desk", text="Vilken färg hade bilen?", desk_id=1
        )
    mailbox = client.get(f"/{lang}/mailbox")
    assert "Vilken färg hade bilen?" in mailbox.text

    reply = client.post(
        f"/{lang}/mailbox/reply",
        data={"message": "Svart Volvo", "csrf": form_token(mailbox.text, f"/{lang}/mailbox/reply")},
        files=[("files", ("foto.bin", io.BytesIO(b"B" * 1000), "application/octet-stream"))],
    )
    assert reply.status_code == 200
    assert "Svart Volvo" in reply.text and "foto.bin" in reply.text

    logout = client.post(f"/{lang}/logout", data={"csrf": form_token(reply.text, f"/{lang}/logout")})
    assert logout.status_code == 200
    after = client.get(f"/{lang}/mailbox", follow_redirects=False)
    assert after.status_code == 303
