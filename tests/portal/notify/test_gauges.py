"""The outbox's counts on the operators' metrics page: numbers only, no address, no case."""

from __future__ import annotations

import dataclasses

from sqlmodel import select
from starlette.datastructures import Secret
from starlette.testclient import TestClient

from portal.app import create_app
from portal.db import session_scope
from portal.notify.models import EACH, FAILED, Notification
from portal.settings import Settings
from portal.web import Services
from tests.portal.notify.conftest import choose
from tests.portal.notify.test_sender import KARIN, SARA, send_canary_tip
from tests.portal.test_health_metrics import AUTH, TOKEN, sample


def test_the_metrics_page_counts_the_outbox(
    client: TestClient, settings: Settings, services: Services
) -> None:
    choose(services, SARA, mode=EACH, email="sara@pax.example")
    choose(services, KARIN, mode=EACH, email="karin@pax.example")
    _, case_number = send_canary_tip(client)
    with session_scope(services.engine) as db:
        first = db.exec(select(Notification)).first()
        assert first is not None
        first.status, first.attempts, first.last_error = FAILED, 8, "SMTPDataError"
        db.add(first)
    changed = dataclasses.replace(settings, metrics_token=Secret(TOKEN))
    built = dataclasses.replace(services, settings=changed)
    with TestClient(create_app(changed, services=built), base_url="http://testserver") as metered:
        page = metered.get("/staff/metrics", headers=AUTH)
    assert page.status_code == 200
    assert sample(page.text, "lykta_notifications", state="failed") == 1
    assert sample(page.text, "lykta_notifications", state="pending") == 1
    assert sample(page.text, "lykta_notifications", state="retrying") == 0
    assert "pax.example" not in page.text and case_number not in page.text
