"""Looking at grants, keys and tips from the database side, for the keyring tests."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

import crypto
from portal.accounts.models import DeskMembership, StaffAccount
from portal.db import session_scope
from portal.keyring.models import DeskKeyGrant
from portal.network.models import Desk
from portal.submission import services as tips
from portal.submission.models import Tip
from portal.web import Services


def staff_id(services: Services, username: str) -> int:
    with session_scope(services.engine) as db:
        found = db.exec(select(StaffAccount.id).where(StaffAccount.username == username)).one()
        assert found is not None
        return found


def personal_key(services: Services, person: dict[str, Any]) -> crypto.X25519Identity:
    """The person's personal private key, unwrapped with their passphrase (as login does)."""
    with session_scope(services.engine) as db:
        account = db.exec(select(StaffAccount).where(StaffAccount.username == person["username"])).one()
        assert account.wrapped_private_key is not None
        return crypto.X25519Identity(crypto.unwrap_secret(account.wrapped_private_key, person["password"]))


def grants_of(services: Services, desk_id: int, username: str) -> list[bytes]:
    """The envelopes of the person's grants of the desk's keys."""
    member = staff_id(services, username)
    with session_scope(services.engine) as db:
        return [
            g.envelope
            for g in db.exec(
                select(DeskKeyGrant).where(DeskKeyGrant.desk_id == desk_id, DeskKeyGrant.staff_id == member)
            )
        ]


def is_member(services: Services, desk_id: int, username: str) -> bool:
    member = staff_id(services, username)
    with session_scope(services.engine) as db:
        return db.get(DeskMembership, (desk_id, member)) is not None


def desk_public_key(services: Services, desk_id: int) -> str:
    with session_scope(services.engine) as db:
        desk = db.get(Desk, desk_id)
        assert desk is not None
        return desk.public_key


def tip_of(services: Services, case_number: str) -> Tip:
    with session_scope(services.engine) as db:
        return db.exec(select(Tip).where(Tip.case_number == case_number)).one()


def can_read(tip: Tip, keys: list[crypto.X25519Identity], what: str) -> bool:
    """Whether one of `keys` opens the tip's answers (and they say `what`)."""
    for key in keys:
        try:
            return tips.read_answers(tip, key)["what"] == what
        except crypto.CryptoError:
            continue
    return False
