"""Removing a member with a new desk key for new tips: the removed person's old grant opens the old tips
they could read anyway, never a new one; the remaining members and the recovery key read both (issue 4).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

import crypto
from portal.db import session_scope
from portal.keyring import services as keyring
from portal.keyring.models import DeskKeyGrant
from portal.network.models import Desk
from portal.submission import services as tips
from portal.web import Services
from tests.portal.accounts.people import PAX_DESK, desk_id, enrolled_person, invite
from tests.portal.keyring.keys import can_read, desk_public_key, grants_of, personal_key, staff_id, tip_of
from tests.portal.keyring.test_desk_page import OTHER_TIP, karin, sara
from tests.portal.submission.browser import form_token, send_tip
from tests.portal.triage.test_staff_flow import staff_login


def recovery_identity(
    demo_accounts: dict[str, Any], organisation: str = "pax-ragnhild"
) -> crypto.X25519Identity:
    text = next(o["recovery_identity"] for o in demo_accounts["organisations"] if o["code"] == organisation)
    return crypto.X25519Identity.parse(text)


def keyring_of(services: Services, person: dict[str, Any], desk: int) -> list[crypto.X25519Identity]:
    with session_scope(services.engine) as db:
        ring = keyring.unlock_desk_keyring(
            db, staff_id=staff_id(services, person["username"]), personal=personal_key(services, person)
        )
    return ring.get(desk, [])


def remove_with_rotation(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], username: str
) -> None:
    pax = desk_id(services, PAX_DESK)
    client.cookies.clear()
    staff_login(client, karin(demo_accounts))
    page = client.get(f"/staff/desks/{pax}")
    removed = client.post(
        f"/staff/desks/{pax}/remove",
        data={"csrf": form_token(page.text, f"/staff/desks/{pax}/remove"),
              "staff_id": staff_id(services, username), "rotate": "yes"},
    )  # fmt: skip
    assert removed.status_code == 200 and removed.url.query == b"done=rotated"


def test_rotation_closes_new_tips_to_the_removed_member(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    pax = desk_id(services, PAX_DESK)
    old_public = desk_public_key(services, pax)
    _code, old_case = send_tip(client, "sv", {**OTHER_TIP, "what": "Den gamla tipsen"}, [])
    removed = sara(demo_accounts)
    [kept_envelope] = grants_of(services, pax, removed["username"])  # what Sara could have copied
    sara_personal = personal_key(services, removed)

    remove_with_rotation(client, services, demo_accounts, removed["username"])
    new_public = desk_public_key(services, pax)
    assert new_public != old_public
    _code, new_case = send_tip(client, "sv", {**OTHER_TIP, "what": "Den nya tipsen"}, [])
    old_tip, new_tip = tip_of(services, old_case), tip_of(services, new_case)

    # The new tip is sealed to the new key, and the remaining member reads it in the back office.
    ring = keyring_of(services, karin(demo_accounts), pax)
    assert [str(k.recipient) for k in ring] == [new_public, old_public]  # current key first
    assert can_read(new_tip, ring[:1], "Den nya tipsen") and not can_read(new_tip, ring[1:], "Den nya tipsen")
    staff_login(client, karin(demo_accounts))
    new_page = client.get(f"/staff/tips/{new_tip.id}")
    assert new_page.status_code == 200 and "Den nya tipsen" in new_page.text
    # Old tips stay readable with the old key, which remaining members keep.
    assert can_read(old_tip, ring, "Den gamla tipsen")

    # Sara's copied grant still opens the old desk key, and with it the old tip: never the new one.
    with session_scope(services.engine) as db:
        desk = db.get(Desk, pax)
        assert desk is not None
        sara_old_key = crypto.X25519Identity.parse(
            crypto.unseal(
                kept_envelope, kind=keyring.DESK_KEY_KIND, subject=keyring.desk_key_subject(desk),
                identities=[sara_personal],
            ).decode("ascii")
        )  # fmt: skip
    assert str(sara_old_key.recipient) == old_public
    assert can_read(old_tip, [sara_old_key], "Den gamla tipsen")
    assert not can_read(new_tip, [sara_old_key], "Den nya tipsen")
    with pytest.raises(crypto.NoIdentityMatchError):
        crypto.unseal(
            new_tip.answers, kind=tips.TIP_KIND, subject=new_tip.id, identities=[sara_old_key, sara_personal]
        )
    assert keyring_of(services, removed, pax) == []

    # The recovery key holds both keys, so nothing is lost if every member forgets their passphrase.
    with session_scope(services.engine) as db:
        desk = db.get(Desk, pax)
        assert desk is not None
        recovered = keyring.recovery_keyring(db, desk, recovery_identity(demo_accounts))
    assert [str(k.recipient) for k in recovered] == [new_public, old_public]


def test_a_member_granted_after_a_rotation_gets_every_key(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    pax = desk_id(services, PAX_DESK)
    _code, old_case = send_tip(client, "sv", {**OTHER_TIP, "what": "Före bytet"}, [])
    nora = enrolled_person(client, services, "nora.officer")
    remove_with_rotation(client, services, demo_accounts, "sara.officer.pax-ragnhild")
    _code, new_case = send_tip(client, "sv", {**OTHER_TIP, "what": "Efter bytet"}, [])
    # Nora was waiting during the rotation: she gets nothing until a member grants her the key...
    assert grants_of(services, pax, "nora.officer") == []

    staff_login(client, karin(demo_accounts))
    page = client.get(f"/staff/desks/{pax}")
    client.post(
        f"/staff/desks/{pax}/grant",
        data={
            "csrf": form_token(page.text, f"/staff/desks/{pax}/grant"),
            "staff_id": staff_id(services, "nora.officer"),
        },
    )
    # ... and then every key the desk has had, the current one first.
    ring = keyring_of(services, nora, pax)
    assert str(ring[0].recipient) == desk_public_key(services, pax)
    assert len(ring) == 2
    assert can_read(tip_of(services, old_case), ring, "Före bytet")
    assert can_read(tip_of(services, new_case), ring, "Efter bytet")
    with session_scope(services.engine) as db:
        current = keyring.unlock_desks(
            db, staff_id=staff_id(services, "nora.officer"), personal=personal_key(services, nora)
        )
    assert str(current[pax].recipient) == desk_public_key(services, pax)


def test_keyring_services_refuse_what_they_must(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    pax = desk_id(services, PAX_DESK)
    invite(services, "olof.officer")  # a member who has not enrolled
    erik_id = staff_id(services, "erik.officer.polisen-sodertalje")
    olof_id = staff_id(services, "olof.officer")
    with session_scope(services.engine) as db:
        desk = db.get(Desk, pax)
        assert desk is not None
        ring = keyring.recovery_keyring(db, desk, recovery_identity(demo_accounts))
        other_desk_key = crypto.X25519Identity.generate()
        with pytest.raises(keyring.NotAMemberError):
            keyring.grant_desk(db, desk_id=pax, granter=ring, member_staff_id=erik_id, actor="test")
        with pytest.raises(keyring.NotEnrolledError):
            keyring.grant_desk(
                db,
                desk_id=pax,
                granter=ring,
                member_staff_id=olof_id,
                actor="test",
            )
        with pytest.raises(keyring.WrongKeyError):
            keyring.grant_desk(db, desk_id=pax, granter=other_desk_key, member_staff_id=erik_id, actor="test")
        with pytest.raises(keyring.WrongKeyError):
            keyring.rotate_desk_key(db, desk_id=pax, granter_identity=other_desk_key, actor="test")
        with pytest.raises(keyring.WrongKeyError):
            keyring.recovery_keyring(db, desk, recovery_identity(demo_accounts, "skatteverket"))
        with pytest.raises(keyring.NotAMemberError):
            keyring.revoke_member(db, desk_id=pax, staff_id=erik_id, actor="test")
        waiting = [a.username for a in keyring.members_waiting(db, pax)]
        assert waiting == ["olof.officer"]
        assert [str(k.recipient) for k in ring] == [desk.public_key]
    assert grants_of(services, pax, "olof.officer") == []


def test_rotation_grants_the_new_key_to_holders_only(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    pax = desk_id(services, PAX_DESK)
    enrolled_person(client, services, "nora.officer")  # waiting for a grant
    with session_scope(services.engine) as db:
        karin_ring = keyring.unlock_desk_keyring(
            db,
            staff_id=staff_id(services, "karin.lead.pax-ragnhild"),
            personal=personal_key(services, karin(demo_accounts)),
        )[pax]
        keyring.rotate_desk_key(db, desk_id=pax, granter_identity=karin_ring[0], actor="test")
        recovery_grants = db.exec(
            select(DeskKeyGrant).where(
                DeskKeyGrant.desk_id == pax, DeskKeyGrant.recovery_organisation_id.is_not(None)
            )  # type: ignore[union-attr]
        ).all()
    assert len(recovery_grants) == 2
    assert len(grants_of(services, pax, "karin.lead.pax-ragnhild")) == 2
    assert len(grants_of(services, pax, "sara.officer.pax-ragnhild")) == 2
    assert grants_of(services, pax, "nora.officer") == []
