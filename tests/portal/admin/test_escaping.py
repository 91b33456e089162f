"""HTML and script typed into every admin text field is shown as text, never run, on every admin page.

Names of organisations, municipalities and desks accept any printable text ("Bygg & Miljö"), so markup
is stored as typed and must be escaped wherever it is shown: every page of the admin section (reached by
crawling), the one-time recovery-key page, forms shown again with an error, and the resident's review
page, which names the desks. Fields with a strict format (codes, usernames) refuse markup and show it back,
escaped, in the form.
"""

from __future__ import annotations

from typing import Any

from markupsafe import escape
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portal.network.models import Desk, Organisation
from portal.web import Services
from tests.portal.admin.pages import crawl, log_in_as, post_form
from tests.portal.submission.browser import ANSWERS, review

PAYLOADS = {
    "organisation": '<script>alert("organisation")</script>',
    "municipality": '"><img src=x onerror=alert("municipality")>',
    "new desk": "<b onmouseover='alert(1)'>desk</b>",
    "renamed desk": "</td></tr></table><script>alert('renamed')</script>",
}


def _inert(page: str, where: str) -> None:
    for name, payload in PAYLOADS.items():
        assert payload not in page, (where, name)
    assert "<script>alert" not in page and "onerror=alert" not in page.replace("onerror=alert(&#34;", ""), (
        where
    )


def test_markup_in_names_is_shown_as_text_everywhere(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    log_in_as(client, demo_accounts, "administrator")
    created = post_form(
        client,
        "/staff/admin/organisations",
        "/staff/admin/organisations",
        {"code": "markup-org", "name": PAYLOADS["organisation"], "kind": "joint"},
    )
    assert created.status_code == 200
    _inert(created.text, "recovery key page")
    assert str(escape(PAYLOADS["organisation"])) in created.text
    post_form(
        client,
        "/staff/admin/municipalities",
        "/staff/admin/municipalities",
        {"code": "markup-kommun", "name": PAYLOADS["municipality"]},
    )
    with Session(services.engine) as db:
        organisation = db.exec(select(Organisation).where(Organisation.code == "markup-org")).one()
        existing = db.exec(select(Desk).where(Desk.code == "nykvarn-sakerhet")).one()
    post_form(
        client,
        "/staff/admin/desks",
        "/staff/admin/desks",
        {
            "organisation": str(organisation.id),
            "code": "markup-desk",
            "name": PAYLOADS["new desk"],
            "retention_days": "730",
        },
    )
    post_form(
        client,
        f"/staff/admin/desks/{existing.id}",
        f"/staff/admin/desks/{existing.id}",
        {"name": PAYLOADS["renamed desk"], "retention_days": "730"},
    )
    with Session(services.engine) as db:
        new_desk = db.exec(select(Desk).where(Desk.code == "markup-desk")).one()
        assert new_desk.name == PAYLOADS["new desk"]  # stored as typed: escaping is the output's job
    # Route the two desks somewhere, so the routing grid and the resident's review page name them.
    post_form(
        client,
        "/staff/admin/routing?municipality=markup-kommun&all=1",
        "/staff/admin/routing",
        {
            "municipality": "markup-kommun",
            "all": "1",
            f"route:other:{new_desk.id}": "primary",
            f"route:other:{existing.id}": "primary",
        },
    )

    pages = crawl(client)
    pages["routing, every desk"] = client.get("/staff/admin/routing?municipality=markup-kommun&all=1")
    pages["routing preview"] = client.get("/staff/admin/routing?municipality=markup-kommun&category=other")
    for where, response in pages.items():
        assert response.status_code == 200, where
        _inert(response.text, where)
    everything = "".join(response.text for response in pages.values())
    for name, payload in PAYLOADS.items():
        assert str(escape(payload)) in everything, name  # shown, as text

    # A form shown again after an error keeps the markup, escaped, in its value.
    refused = post_form(
        client,
        "/staff/admin/desks",
        "/staff/admin/desks",
        {"organisation": str(organisation.id), "code": "<i>x</i>", "name": PAYLOADS["renamed desk"]},
    )
    assert refused.status_code == 400
    _inert(refused.text, "desk form with errors")
    assert "<i>x</i>" not in refused.text and str(escape("<i>x</i>")) in refused.text
    refused = post_form(
        client,
        "/staff/admin/staff",
        "/staff/admin/staff",
        {"username": PAYLOADS["municipality"], "role": "officer"},
    )
    assert refused.status_code == 400
    _inert(refused.text, "invitation form with errors")
    assert f'value="{escape(PAYLOADS["municipality"])}"' in refused.text

    resident = review(client, "sv", {**ANSWERS, "municipality": "markup-kommun", "category": "other"})
    assert resident.status_code == 200
    _inert(resident.text, "resident review page")
    assert str(escape(PAYLOADS["new desk"])) in resident.text
