"""Organisations, municipalities, desks and routing, driven through the admin pages as an administrator.

The recovery key is shown once and found nowhere afterwards; a new desk's key is granted to it at once;
routing edits change what a resident is shown before sending.
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import segno
from sqlalchemy import inspect, text
from sqlmodel import Session, select
from starlette.testclient import TestClient

import crypto
from portal.admin.forms import ERROR_CHOOSE, ERROR_CODE, ERROR_CODE_TAKEN, ERROR_NAME, ERROR_NUMBER_RANGE
from portal.admin.services import KIND_LABELS
from portal.admin.web import ERROR_FIELDS, NOTICES
from portal.audit.models import AuditEntry
from portal.keyring.models import DeskKeyGrant
from portal.keyring.services import open_grant
from portal.network.catalogue import ORGANISATION_KINDS
from portal.network.models import Desk, Municipality, Organisation, Route
from portal.settings import Settings
from portal.web import Services
from tests.portal.admin.pages import log_in_as, post_form, said, visible_text
from tests.portal.submission.browser import ANSWERS, element_text, review


def _database_bytes(settings: Settings, services: Services) -> list[tuple[str, bytes]]:
    """The SQLite file with its -wal and -shm, and every row of every table (for PostgreSQL too)."""
    found: list[tuple[str, bytes]] = []
    if settings.database_url.startswith("sqlite"):
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                found.append((f"file{suffix}", Path(f"{path}{suffix}").read_bytes()))
    with services.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                values = [bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row]
                found.append((f"table {table}", b"\x1f".join(values)))
    return found


def _create_organisation(client: TestClient, **fields: str) -> Any:
    return post_form(client, "/staff/admin/organisations", "/staff/admin/organisations", fields)


def test_the_recovery_key_is_shown_once_and_never_stored(
    client: TestClient,
    services: Services,
    settings: Settings,
    demo_accounts: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    log_in_as(client, demo_accounts, "administrator")
    created = _create_organisation(client, code="lansstyrelsen", name="Länsstyrelsen", kind="agency")
    assert created.status_code == 200
    identity_text = element_text(created.text, "recovery-identity")
    identity = crypto.X25519Identity.parse(identity_text)
    assert said("Print this page now, and keep the printout offline, for example in a safe.") in visible_text(
        created
    )
    # The QR code is drawn into the page (no request to anyone) and holds exactly the key shown as text.
    svg = re.search(r"<svg.*?</svg>", created.text, re.S)
    assert svg and "http" not in svg.group(0).replace('xmlns="http://www.w3.org/2000/svg"', "")
    expected = segno.make(identity_text, error="q").svg_inline(
        scale=4, border=4, dark="#000", light="#fff", svgclass="recovery-qr"
    )
    assert svg.group(0) == expected
    assert created.headers["cache-control"] == "no-store"

    with Session(services.engine) as db:
        organisation = db.exec(select(Organisation).where(Organisation.code == "lansstyrelsen")).one()
        assert organisation.recovery_public_key == str(identity.recipient)
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "admin.organisation.created")).one()
        assert entry.detail["organisation_id"] == organisation.id

    needles = {
        "identity text": identity_text.encode(),
        "identity text, lower case": identity_text.lower().encode(),
        "raw private key": identity.secret_bytes(),
    }
    stored = _database_bytes(settings, services)
    assert stored
    leaks = [(name, where) for where, data in stored for name, needle in needles.items() if needle in data]
    assert leaks == []
    assert identity_text not in caplog.text and identity_text.lower() not in caplog.text
    # Nowhere to see it again: the list shows only the public half.
    listing = client.get("/staff/admin/organisations")
    assert str(identity.recipient) in listing.text and identity_text not in listing.text


def test_a_new_desk_is_granted_to_the_recovery_key_shown(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    log_in_as(client, demo_accounts, "administrator")
    created = _create_organisation(
        client, code="ekobrottsmyndigheten", name="Ekobrottsmyndigheten", kind="agency"
    )
    identity = crypto.X25519Identity.parse(element_text(created.text, "recovery-identity"))
    with Session(services.engine) as db:
        organisation = db.exec(select(Organisation).where(Organisation.code == "ekobrottsmyndigheten")).one()
    saved = post_form(
        client,
        "/staff/admin/desks",
        "/staff/admin/desks",
        {
            "organisation": str(organisation.id),
            "code": "ekobrott-tips",
            "name": "Underrättelser",
            "retention_days": "365",
            "auto_acknowledge": "yes",
        },
    )
    assert saved.status_code == 200
    assert said(NOTICES["desk-created"]) in visible_text(saved)
    with Session(services.engine) as db:
        desk = db.exec(select(Desk).where(Desk.code == "ekobrott-tips")).one()
        grant = db.exec(
            select(DeskKeyGrant).where(
                DeskKeyGrant.desk_id == desk.id, DeskKeyGrant.recovery_organisation_id == organisation.id
            )
        ).one()
    assert (desk.retention_days, desk.auto_acknowledge, desk.organisation_id) == (365, True, organisation.id)
    desk_identity = open_grant(grant, desk, identity)
    assert str(desk_identity.recipient) == desk.public_key
    # Another organisation's recovery key does not open it.
    with pytest.raises(crypto.CryptoError):
        open_grant(grant, desk, crypto.X25519Identity.generate())


def test_desk_settings_are_checked_and_the_form_is_kept(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    log_in_as(client, demo_accounts, "administrator")
    with Session(services.engine) as db:
        desk = db.exec(select(Desk).where(Desk.code == "nykvarn-socialtjanst")).one()
    page = f"/staff/admin/desks/{desk.id}"
    for bad in ("29", "3651", "two years", ""):
        refused = post_form(client, page, page, {"name": "Nytt namn", "retention_days": bad})
        assert refused.status_code == 400
        assert said(ERROR_NUMBER_RANGE, min=30, max=3650) in visible_text(refused)
        assert 'value="Nytt namn"' in refused.text
    refused = post_form(client, page, page, {"name": "   ", "retention_days": "100"})
    assert refused.status_code == 400 and said(ERROR_NAME) in visible_text(refused)
    with Session(services.engine) as db:
        unchanged = db.get(Desk, desk.id)
        assert unchanged is not None and (unchanged.name, unchanged.retention_days) == (
            desk.name,
            desk.retention_days,
        )
    saved = post_form(client, page, page, {"name": "Socialtjänsten Nykvarn", "retention_days": "3650"})
    assert saved.status_code == 200 and said(NOTICES["desk-saved"]) in visible_text(saved)
    with Session(services.engine) as db:
        changed = db.get(Desk, desk.id)
        assert changed is not None
        assert (changed.name, changed.retention_days, changed.auto_acknowledge) == (
            "Socialtjänsten Nykvarn",
            3650,
            False,
        )
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "admin.desk.updated")).one()
        assert entry.desk_id == desk.id and entry.detail["changed"] == ["name", "retention_days"]
    assert client.get("/staff/admin/desks/999999").status_code == 404


def test_every_kind_of_organisation_has_a_label() -> None:
    assert set(KIND_LABELS) == ORGANISATION_KINDS


def test_codes_are_unique_and_checked(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    log_in_as(client, demo_accounts, "administrator")
    taken = post_form(
        client,
        "/staff/admin/municipalities",
        "/staff/admin/municipalities",
        {"code": "nykvarn", "name": "Nykvarn 2"},
    )
    assert taken.status_code == 400 and said(ERROR_CODE_TAKEN) in visible_text(taken)
    malformed = _create_organisation(client, code="Not a code!", name="X", kind="agency")
    assert malformed.status_code == 400 and said(ERROR_CODE) in visible_text(malformed)
    no_kind = _create_organisation(client, code="x-org", name="X", kind="pirates")
    assert no_kind.status_code == 400 and said(ERROR_CHOOSE) in visible_text(no_kind)
    added = post_form(
        client,
        "/staff/admin/municipalities",
        "/staff/admin/municipalities",
        {"code": "trosa", "name": "Trosa", "finnish": "yes"},
    )
    assert added.status_code == 200 and said(NOTICES["municipality-created"]) in visible_text(added)
    with Session(services.engine) as db:
        trosa = db.exec(select(Municipality).where(Municipality.code == "trosa")).one()
        assert trosa.finnish_admin_area
        assert db.exec(select(Organisation).where(Organisation.code == "x-org")).first() is None


def _recipients_on_review(client: TestClient, municipality: str, category: str) -> Any:
    return review(client, "sv", {**ANSWERS, "municipality": municipality, "category": category})


def _desk(services: Services, code: str) -> Desk:
    with Session(services.engine) as db:
        return db.exec(select(Desk).where(Desk.code == code)).one()


def test_routing_edits_change_what_the_resident_sees(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    before = _recipients_on_review(client, "nykvarn", "tax")
    assert before.status_code == 200
    tax_desk = _desk(services, "skatteverket-kontroll")
    ivo = _desk(services, "ivo-tillsyn")
    assert tax_desk.name in visible_text(before) and ivo.name not in visible_text(before)

    log_in_as(client, demo_accounts, "administrator")
    grid = client.get("/staff/admin/routing?municipality=nykvarn&all=1")
    assert f'name="route:tax:{ivo.id}"' in grid.text
    preview = client.get("/staff/admin/routing?municipality=nykvarn&category=tax")
    assert tax_desk.name in visible_text(preview)

    saved = post_form(
        client,
        "/staff/admin/routing?municipality=nykvarn&all=1",
        "/staff/admin/routing",
        {
            "municipality": "nykvarn",
            "all": "1",
            f"route:tax:{ivo.id}": "primary",
            f"route:tax:{tax_desk.id}": "possible",
        },
    )
    assert saved.status_code == 200 and said(NOTICES["routing-saved"]) in visible_text(saved)
    after = _recipients_on_review(client, "nykvarn", "tax")
    assert ivo.name in visible_text(after) and tax_desk.name not in visible_text(after)
    preview = client.get("/staff/admin/routing?municipality=nykvarn&category=tax")
    listed = re.search(r'id="routing-preview">(.*?)</ul>', preview.text, re.S)
    assert listed
    assert ivo.name in html.unescape(listed.group(1)) and tax_desk.name not in html.unescape(listed.group(1))
    with Session(services.engine) as db:
        nykvarn = db.exec(select(Municipality).where(Municipality.code == "nykvarn")).one()
        demoted = db.exec(
            select(Route).where(
                Route.municipality_id == nykvarn.id, Route.category == "tax", Route.desk_id == tax_desk.id
            )
        ).one()
        assert not demoted.primary  # still a hand-over option

    # No primary desk left: the resident cannot send, and the admin page warns about the gap.
    post_form(
        client,
        "/staff/admin/routing?municipality=nykvarn",
        "/staff/admin/routing",
        {"municipality": "nykvarn", f"route:tax:{ivo.id}": "none"},
    )
    refused = _recipients_on_review(client, "nykvarn", "tax")
    assert refused.status_code == 400
    assert ivo.name not in visible_text(refused) and tax_desk.name not in visible_text(refused)
    warned = client.get("/staff/admin/routing?municipality=nykvarn&category=tax")
    gap = re.search(r'class="box warning" role="status">(.*?)</div>', warned.text, re.S)
    assert gap and said("Tax and company fraud") in html.unescape(gap.group(1))
    assert said("Tax and company fraud") in visible_text(client.get("/staff/admin/"))


def test_a_bad_routing_cell_changes_nothing(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    log_in_as(client, demo_accounts, "administrator")
    ivo = _desk(services, "ivo-tillsyn")
    with Session(services.engine) as db:
        before = sorted((r.municipality_id, r.category, r.desk_id, r.primary) for r in db.exec(select(Route)))
    for cell, value in (
        (f"route:tax:{ivo.id}", "always"),
        ("route:emergency:1", "primary"),
        ("route:tax:999999", "primary"),
        ("route:no-such-category:1", "primary"),
    ):
        refused = post_form(
            client,
            "/staff/admin/routing?municipality=nykvarn",
            "/staff/admin/routing",
            {"municipality": "nykvarn", f"route:drugs:{ivo.id}": "primary", cell: value},
        )
        assert refused.status_code == 400 and said(ERROR_FIELDS) in visible_text(refused)
    with Session(services.engine) as db:
        after = sorted((r.municipality_id, r.category, r.desk_id, r.primary) for r in db.exec(select(Route)))
    assert after == before
