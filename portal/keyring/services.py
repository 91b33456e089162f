"""Creating desk keys and granting them. Desk private keys exist in the database only as grants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlmodel import Session, col, select

import crypto
from portal.accounts.models import DeskMembership, StaffAccount
from portal.audit import log as audit
from portal.db import id_of
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
            desk_id=id_of(desk),
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
        desk_id=id_of(desk),
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
    """The current key of every desk granted to this staff member, opened with their personal key: their
    reach. A desk whose key was rotated has older keys too: unlock_desk_keyring gives all of them."""
    return {
        desk_id: keys[0]
        for desk_id, keys in unlock_desk_keyring(db, staff_id=staff_id, personal=personal).items()
        if keys
    }


# ---------------------------------------------------------------------------------------------------------
# Key rings, grants between people, removal and rotation (issue 4, part 2).
#
# A desk may have had several key pairs: rotating after removing a member makes a new one for new tips and
# keeps the old ones, because old tips stay sealed to them. A holder (a member, or the recovery key) has one
# grant per key. Invariant kept by every function here: a member holds either no grant of a desk (waiting)
# or a grant of every key the desk has had; so does the recovery key. Which grant holds which key is only
# known by opening it: `Desk.public_key` names the current one.


class KeyringError(Exception):
    """A grant, removal or rotation cannot be done as asked; the message says why (for the CLI)."""


class NotAMemberError(KeyringError):
    """The person is not a member of the desk (or not a usable account)."""


class NotEnrolledError(KeyringError):
    """The person has not enrolled yet: there is no personal key to seal the desk key to."""


class WrongKeyError(KeyringError):
    """The key given does not open, or is not, the desk's current key."""


def _open_keyring(
    desk: Desk, grants: list[DeskKeyGrant], holder: crypto.X25519Identity
) -> list[crypto.X25519Identity]:
    """Open `grants` (all sealed to `holder`): the current key first, then the older ones, newest first."""
    newest_first = sorted(grants, key=lambda g: g.id or 0, reverse=True)
    keys = [open_grant(grant, desk, holder) for grant in newest_first]
    # A stable sort keeps newest-first among the old keys and moves the current one to the front, whatever
    # order the grants were written in.
    return sorted(keys, key=lambda key: str(key.recipient) != desk.public_key)


def unlock_desk_keyring(
    db: Session, *, staff_id: int, personal: crypto.X25519Identity
) -> dict[int, list[crypto.X25519Identity]]:
    """Every key of every desk this member holds, opened with their personal key: current key first.

    Only desks they are still a member of count: a grant left behind by a removal opens nothing.
    """
    rows = db.exec(
        select(DeskKeyGrant, Desk)
        .join(Desk, col(Desk.id) == col(DeskKeyGrant.desk_id))
        .join(
            DeskMembership,
            (col(DeskMembership.desk_id) == col(Desk.id)) & (col(DeskMembership.staff_id) == staff_id),
        )
        .where(DeskKeyGrant.staff_id == staff_id)
    )
    grouped: dict[int, tuple[Desk, list[DeskKeyGrant]]] = {}
    for grant, desk in rows:
        if desk.id is not None:
            grouped.setdefault(desk.id, (desk, []))[1].append(grant)
    return {desk_id: _open_keyring(desk, grants, personal) for desk_id, (desk, grants) in grouped.items()}


# What a session holds after unlock_desk_keyring: per desk, its keys, current first.
DeskKeyrings = Mapping[int, Sequence[crypto.X25519Identity]]


def identities_for(desk_keys: DeskKeyrings, desk_ids: Iterable[int]) -> list[crypto.X25519Identity]:
    """Every key of these desks, the current ones first: what opens a tip's envelopes, old or new.

    A tip's answers may be sealed to a desk's old key and a later message to its new one (rotate_desk_key),
    so a reader tries them all; age tries each identity on each stanza.
    """
    rings = [list(desk_keys.get(desk_id, ())) for desk_id in desk_ids]
    current = [ring[0] for ring in rings if ring]
    return current + [key for ring in rings for key in ring[1:]]


def _desk(db: Session, desk_id: int) -> Desk:
    desk = db.get(Desk, desk_id)
    if desk is None:
        raise KeyringError("no such desk")
    return desk


def _member(db: Session, desk_id: int, staff_id: int) -> StaffAccount:
    """The member's account, their membership row locked until the transaction ends: two grants of the same
    person at once (a double click) then run one after the other, and the second finds the first's."""
    membership = db.exec(
        select(DeskMembership)
        .where(DeskMembership.desk_id == desk_id, DeskMembership.staff_id == staff_id)
        .with_for_update()
    ).first()
    account = db.get(StaffAccount, staff_id)
    if account is None or membership is None:
        raise NotAMemberError("the person is not a member of this desk")
    return account


def _staff_grants(db: Session, desk_id: int, staff_id: int) -> list[DeskKeyGrant]:
    return list(
        db.exec(
            select(DeskKeyGrant).where(DeskKeyGrant.desk_id == desk_id, DeskKeyGrant.staff_id == staff_id)
        )
    )


def _as_keyring(
    granter: crypto.X25519Identity | Sequence[crypto.X25519Identity],
) -> list[crypto.X25519Identity]:
    return [granter] if isinstance(granter, crypto.X25519Identity) else list(granter)


def grant_desk(
    db: Session,
    *,
    desk_id: int,
    granter: crypto.X25519Identity | Sequence[crypto.X25519Identity],
    member_staff_id: int,
    actor: str,
    source: str = "member",
) -> bool:
    """Seal the desk's keys to an enrolled member's personal key; False if they hold them already.

    `granter` is the granter's unlocked key ring of this desk (unlock_desk_keyring; one key for a desk never
    rotated). It must contain the current key. Every key in it is granted, so the new member reads the tips
    sealed to older keys too. A member holding fewer grants than the ring (left over from before this
    invariant) has them replaced by the full set. `source` ("member" or "recovery") goes into the audit.
    """
    desk = _desk(db, desk_id)
    keys = _as_keyring(granter)
    if not any(str(key.recipient) == desk.public_key for key in keys):
        raise WrongKeyError("the key given is not this desk's current key")
    account = _member(db, desk_id, member_staff_id)
    if account.disabled:
        raise NotAMemberError("the account is disabled")
    if account.public_key is None:
        raise NotEnrolledError("the person has not enrolled yet")
    existing = _staff_grants(db, desk_id, member_staff_id)
    if len(existing) >= len(keys):
        return False
    for old in existing:
        db.delete(old)
    db.flush()
    # The ring comes newest first; written oldest first, the grant ids keep that order for _open_keyring,
    # with the current key last (newest).
    ordered = sorted(reversed(keys), key=lambda key: str(key.recipient) == desk.public_key)
    for key in ordered:
        grant_to_staff(
            db, desk=desk, identity=key, staff_id=member_staff_id, staff_public_key=account.public_key
        )
    audit.record(
        db,
        "desk.granted",
        actor=actor,
        desk_id=desk_id,
        detail={"staff_id": member_staff_id, "keys": len(keys), "source": source},
    )
    return True


def revoke_member(db: Session, *, desk_id: int, staff_id: int, actor: str) -> int:
    """End a membership and delete the person's grants of the desk's keys; return how many were deleted.

    Their access ends with their next request (sessions unlock desk keys anew each time). Tips they could
    read stay sealed to keys they once opened: rotate_desk_key keeps them out of new ones.
    """
    membership = db.get(DeskMembership, (desk_id, staff_id))
    if membership is None:
        raise NotAMemberError("the person is not a member of this desk")
    db.delete(membership)
    grants = _staff_grants(db, desk_id, staff_id)
    for grant in grants:
        db.delete(grant)
    db.flush()
    audit.record(
        db,
        "desk.member-removed",
        actor=actor,
        desk_id=desk_id,
        detail={"staff_id": staff_id, "grants_deleted": len(grants)},
    )
    return len(grants)


def members_waiting(db: Session, desk_id: int) -> list[StaffAccount]:
    """Members of the desk who hold no grant of its key (enrolled or not), by username."""
    holders = select(DeskKeyGrant.staff_id).where(
        DeskKeyGrant.desk_id == desk_id, col(DeskKeyGrant.staff_id).is_not(None)
    )
    return list(
        db.exec(
            select(StaffAccount)
            .join(DeskMembership, col(DeskMembership.staff_id) == col(StaffAccount.id))
            .where(DeskMembership.desk_id == desk_id, col(StaffAccount.id).not_in(holders))
            .order_by(col(StaffAccount.username))
        )
    )


def key_holders(db: Session, desk_id: int) -> list[StaffAccount]:
    """Members of the desk who hold its key, by username."""
    holders = select(DeskKeyGrant.staff_id).where(DeskKeyGrant.desk_id == desk_id)
    return list(
        db.exec(
            select(StaffAccount)
            .join(DeskMembership, col(DeskMembership.staff_id) == col(StaffAccount.id))
            .where(DeskMembership.desk_id == desk_id, col(StaffAccount.id).in_(holders))
            .order_by(col(StaffAccount.username))
        )
    )


def recovery_keyring(
    db: Session, desk: Desk, recovery_identity: crypto.X25519Identity
) -> list[crypto.X25519Identity]:
    """The desk's keys, opened with its organisation's recovery identity (current first)."""
    grants = list(
        db.exec(
            select(DeskKeyGrant).where(
                DeskKeyGrant.desk_id == desk.id, DeskKeyGrant.recovery_organisation_id == desk.organisation_id
            )
        )
    )
    if not grants:
        raise WrongKeyError("the desk has no grant to its organisation's recovery key")
    try:
        return _open_keyring(desk, grants, recovery_identity)
    except crypto.CryptoError:
        raise WrongKeyError("this is not the recovery identity of the desk's organisation") from None


def grant_from_recovery(
    db: Session,
    *,
    desk_code: str,
    recovery_identity: crypto.X25519Identity,
    staff_username: str,
    actor: str = "cli",
) -> bool:
    """Grant a desk's keys to a member from the organisation's recovery key (when no member is left).

    False if the member holds them already. Raises KeyringError subclasses with a message for the CLI.
    """
    desk = db.exec(select(Desk).where(Desk.code == desk_code)).first()
    if desk is None or desk.id is None:
        raise KeyringError(f"no desk with the code {desk_code!r}")
    account = db.exec(select(StaffAccount).where(StaffAccount.username == staff_username.strip())).first()
    if account is None or account.id is None:
        raise NotAMemberError(f"no account with the username {staff_username!r}")
    keys = recovery_keyring(db, desk, recovery_identity)
    return grant_desk(
        db, desk_id=desk.id, granter=keys, member_staff_id=account.id, actor=actor, source="recovery"
    )


def rotate_desk_key(
    db: Session, *, desk_id: int, granter_identity: crypto.X25519Identity, actor: str
) -> crypto.X25519Recipient:
    """Give the desk a new key pair for new tips; return its public key.

    `granter_identity` must be the desk's current key: only someone who holds it may rotate. The new key
    is granted to the recovery key and to every member who holds the desk's key now; members waiting for
    a grant keep waiting (a desk member decides who gets the key, issue 4). Old grants are kept, so old
    tips, sealed to the old keys, stay readable; a person removed before the rotation never gets the new
    key, so new tips are closed to them.
    """
    desk = _desk(db, desk_id)
    if str(granter_identity.recipient) != desk.public_key:
        raise WrongKeyError("the key given is not this desk's current key")
    organisation = db.get(Organisation, desk.organisation_id)
    assert organisation is not None  # a foreign key
    # Disabled holders too: if they are enabled again, they must not come back with only the old keys.
    holders = [a for a in key_holders(db, desk_id) if a.public_key is not None]
    new = crypto.X25519Identity.generate()
    desk.public_key = str(new.recipient)
    db.add(desk)
    db.add(
        DeskKeyGrant(
            desk_id=desk_id,
            recovery_organisation_id=organisation.id,
            envelope=_seal_desk_key(
                new, desk, crypto.X25519Recipient.parse(organisation.recovery_public_key)
            ),
        )
    )
    for holder in holders:
        assert holder.id is not None and holder.public_key is not None
        grant_to_staff(db, desk=desk, identity=new, staff_id=holder.id, staff_public_key=holder.public_key)
    db.flush()
    audit.record(db, "desk.key-rotated", actor=actor, desk_id=desk_id, detail={"holders": len(holders)})
    return new.recipient
