"""Creating desk keys and granting them. Desk private keys exist in the database only as grants."""

from __future__ import annotations

from sqlmodel import Session, col, select

import crypto
from portal.accounts.models import DeskMembership
from portal.keyring.models import DeskKeyGrant
from portal.network.models import Desk, Organisation

DESK_KEY_KIND = "desk-key"


def desk_key_subject(desk: Desk) -> str:
    return f"desk:{desk.code}"


def create_desk(db: Session, *, organisation: Organisation, code: str, name: str) -> Desk:
    """Create a desk with a new key pair, its private half granted at once to the recovery key (DESIGN 3)."""
    identity = crypto.X25519Identity.generate()
    assert organisation.id is not None  # an organisation from the database always has one
    desk = Desk(code=code, name=name, organisation_id=organisation.id, public_key=str(identity.recipient))
    db.add(desk)
    db.flush()
    recovery = crypto.X25519Recipient.parse(organisation.recovery_public_key)
    db.add(
        DeskKeyGrant(
            desk_id=desk.id,
            recovery_organisation_id=organisation.id,
            envelope=_seal_desk_key(identity, desk, recovery),
        )
    )
    return desk


def _seal_desk_key(identity: crypto.X25519Identity, desk: Desk, holder: crypto.X25519Recipient) -> bytes:
    return crypto.seal(
        identity.to_text().encode("ascii"),
        kind=DESK_KEY_KIND,
        subject=desk_key_subject(desk),
        recipients=[holder],
    )


def grant_to_staff(
    db: Session, *, desk: Desk, identity: crypto.X25519Identity, staff_id: int, staff_public_key: str
) -> DeskKeyGrant:
    """Seal the desk key (already unlocked by the granter) to a staff member's personal key."""
    grant = DeskKeyGrant(
        desk_id=desk.id,
        staff_id=staff_id,
        envelope=_seal_desk_key(identity, desk, crypto.X25519Recipient.parse(staff_public_key)),
    )
    db.add(grant)
    return grant


def open_grant(grant: DeskKeyGrant, desk: Desk, holder: crypto.X25519Identity) -> crypto.X25519Identity:
    """The desk's private key from a grant sealed to `holder`."""
    text = crypto.unseal(
        grant.envelope, kind=DESK_KEY_KIND, subject=desk_key_subject(desk), identities=[holder]
    )
    return crypto.X25519Identity.parse(text.decode("ascii"))


def unlock_desks(
    db: Session, *, staff_id: int, personal: crypto.X25519Identity
) -> dict[int, crypto.X25519Identity]:
    """Every desk key granted to this staff member, opened with their personal key: their reach."""
    rows = db.exec(
        select(DeskKeyGrant, Desk)
        .join(Desk, col(Desk.id) == col(DeskKeyGrant.desk_id))
        .join(
            DeskMembership,
            (col(DeskMembership.desk_id) == col(Desk.id)) & (col(DeskMembership.staff_id) == staff_id),
        )
        .where(DeskKeyGrant.staff_id == staff_id)
    )
    unlocked: dict[int, crypto.X25519Identity] = {}
    for grant, desk in rows:
        if desk.id is not None:
            unlocked[desk.id] = open_grant(grant, desk, personal)
    return unlocked
