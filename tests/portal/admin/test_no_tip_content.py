"""THE invariant of the administration (issue 4, part 7): an administrator without a desk grant reads no tip.

Tips carrying canary strings in every field, in file names and in file bodies are sent through the
resident app. The demo administrator then opens every admin page and every staff page linked from them:
no canary appears anywhere, and the tips and their files answer 404. An officer of the desk does see the
canaries, so the tips were really there to be leaked.
"""

from __future__ import annotations

import html
import re
import secrets
from typing import Any

from sqlmodel import Session, select
from starlette.testclient import TestClient

from portal.submission.models import STATUSES, StoredFile, Tip
from portal.triage.services import STATUS_LABELS
from portal.web import Services
from tests.portal.admin.pages import crawl, log_in_as, said
from tests.portal.submission.browser import ANSWERS, send_tip
from tests.portal.triage.test_staff_flow import account, staff_login

# (municipality, category): routed to a demo officer's desk, to the police and to the joint desk.
ROUTED = [("sodertalje", "income-support"), ("sodertalje", "drugs"), ("nykvarn", "other")]
FIELDS = ("what", "when", "where", "who", "contact")


def _canaries() -> dict[str, str]:
    marker = secrets.token_hex(6)
    names = [*FIELDS, "file name", "file body"]
    return {name: f"KANARIE{marker}{name.replace(' ', '')}" for name in names}


def test_an_administrator_sees_no_tip_content_anywhere(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    canaries = _canaries()
    for municipality, category in ROUTED:
        answers = {**ANSWERS, "municipality": municipality, "category": category}
        answers |= {name: canaries[name] for name in FIELDS}
        send_tip(
            client, "sv", answers, [(f"{canaries['file name']}.txt", canaries["file body"].encode() * 3)]
        )
    client.cookies.clear()
    with Session(services.engine) as db:
        tips = list(db.exec(select(Tip)))
        files = list(db.exec(select(StoredFile)))
    assert len(tips) == len(ROUTED) and len(files) == len(ROUTED)

    log_in_as(client, demo_accounts, "administrator")
    pages = crawl(client)
    for municipality, category in ROUTED:
        pages[f"preview {municipality} {category}"] = client.get(
            f"/staff/admin/routing?municipality={municipality}&category={category}&all=1"
        )
    # The crawl really went everywhere: overview, every section, every desk and every account, the inbox.
    assert {"/staff/", "/staff/admin/desks", "/staff/admin/staff", "/staff/admin/routing"} <= set(pages)
    assert sum(1 for path in pages if re.fullmatch(r"/staff/admin/desks/\d+", path)) >= 40
    assert sum(1 for path in pages if re.fullmatch(r"/staff/admin/staff/\d+", path)) == len(
        demo_accounts["accounts"]
    )
    for path, response in pages.items():
        assert response.status_code == 200, path
        for name, canary in canaries.items():
            assert canary not in response.text and canary not in html.unescape(response.text), (path, name)
    # Counts are all the administrator learns: the overview says how many new tips there are.
    counted = " · ".join(
        f"{said(STATUS_LABELS[status])}: {sum(1 for tip in tips if tip.status == status)}"
        for status in STATUSES
    )
    assert counted in html.unescape(pages["/staff/admin/"].text)

    for tip in tips:
        opened = client.get(f"/staff/tips/{tip.id}")
        assert opened.status_code == 404
        assert all(canary not in opened.text for canary in canaries.values())
    for stored in files:
        download = client.get(f"/staff/tips/{stored.tip_id}/files/{stored.id}")
        assert download.status_code == 404
        assert canaries["file body"].encode() not in download.content

    # The control: an officer of the receiving desk reads the same tip, canaries and all.
    client.cookies.clear()
    staff_login(client, account(demo_accounts, desk="sodertalje-bistand"))
    income_support = next(tip for tip in tips if tip.category == "income-support")
    readable = client.get(f"/staff/tips/{income_support.id}")
    assert readable.status_code == 200
    assert all(canaries[name] in html.unescape(readable.text) for name in (*FIELDS, "file name"))
