"""A desk that acknowledges automatically answers at once, in the tipster's language; others do not."""

from __future__ import annotations

from sqlmodel import select
from starlette.testclient import TestClient

from portal import i18n
from portal.db import session_scope
from portal.submission.models import Message, Tip
from portal.submission.views import AUTOMATIC_ACKNOWLEDGEMENT
from portal.web import Services
from tests.portal.submission.browser import ANSWERS, form_token, send_tip


def mailbox(client: TestClient, lang: str, code: str) -> str:
    login = client.get(f"/{lang}/followup")
    return client.post(
        f"/{lang}/followup", data={"reply_code": code, "csrf": form_token(login.text, f"/{lang}/followup")}
    ).text


def test_joint_desk_acknowledges_in_the_tipsters_language(client: TestClient, services: Services) -> None:
    code, case_number = send_tip(client, "fi", {**ANSWERS, "category": "other"}, [])
    expected = i18n.load_translations(i18n.BY_CODE["fi"]).gettext(AUTOMATIC_ACKNOWLEDGEMENT)
    assert expected in mailbox(client, "fi", code)
    with session_scope(services.engine) as db:
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
        assert tip.status == "acknowledged" and tip.acknowledged_at is not None


def test_other_desks_do_not(client: TestClient, services: Services) -> None:
    _code, case_number = send_tip(client, "sv", ANSWERS, [])
    with session_scope(services.engine) as db:
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
        assert tip.status == "new"
        assert db.exec(select(Message).where(Message.tip_id == tip.id)).first() is None
