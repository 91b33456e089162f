"""Seeding the demo network of domain.md: organisations with recovery keys, desks with real key pairs,
the routing table, and staff accounts with passphrases, TOTP secrets and desk grants.

Everything a person needs to try Lykta (recovery identities, passphrases, TOTP secrets) is returned for
`lykta demo --accounts-json`; none of it is kept in the database except as public keys and wrapped keys.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import Session, select

import crypto
from portal import i18n
from portal.accounts.models import DeskMembership
from portal.accounts.services import create_account
from portal.db import id_of
from portal.i18n import N_
from portal.keyring.models import DeskKeyGrant
from portal.keyring.services import create_desk, grant_to_staff, open_grant
from portal.network import catalogue
from portal.network.models import Desk, Municipality, Organisation, Route
from portal.triage.models import CannedReply

_WORDS = (
    "lantern",
    "harbour",
    "meadow",
    "granite",
    "willow",
    "beacon",
    "juniper",
    "falcon",
    "river",
    "birch",
    "orchard",
    "compass",
    "ember",
    "glacier",
    "heron",
    "island",
    "kestrel",
    "lichen",
    "marble",
    "nettle",
    "osprey",
    "pebble",
    "quarry",
    "rowan",
    "saffron",
    "thistle",
    "tundra",
    "valley",
    "walnut",
    "yarrow",
    "aurora",
    "basalt",
    "cedar",
    "dune",
    "fjord",
    "grove",
)


# Prepared answers every demo desk gets, in every launch language. The bodies are resident-domain msgids, so
# the tipster reads them in the catalog's translation; the titles stay English for the officers.
CANNED_REPLIES = (
    (
        "read",
        "Thank you: read",
        N_("Thank you for your tip. We have read it and are looking into it. We will write here if we have "
           "questions."),
    ),
    (
        "more-details",
        "Ask for details",
        N_("Thank you for your tip. Can you tell us more about when and where this happens, and who is "
           "involved? Do not write anything that identifies you."),
    ),
    (
        "closed",
        "Closing",
        N_("Thank you for your help. We have finished looking into your tip. Because of secrecy rules we "
           "cannot tell you what was done."),
    ),
)  # fmt: skip


def demo_passphrase() -> str:
    """Five random words: long, as the staff passphrase policy asks, and easy to type in a demo."""
    return "-".join(secrets.choice(_WORDS) for _ in range(5))


def is_seeded(db: Session) -> bool:
    return db.exec(select(Organisation)).first() is not None


def seed(
    db: Session, *, signing_key: bytes, keywrap_params: crypto.Argon2Params = crypto.KEYWRAP_PARAMS_V1
) -> dict[str, Any]:
    """Create the demo network in the caller's transaction; return what --accounts-json writes."""
    recovery: dict[str, crypto.X25519Identity] = {}
    organisations: dict[str, Organisation] = {}
    for spec in catalogue.ORGANISATIONS:
        identity = crypto.X25519Identity.generate()
        recovery[spec.code] = identity
        organisation = Organisation(
            code=spec.code, name=spec.name, kind=spec.kind, recovery_public_key=str(identity.recipient)
        )
        db.add(organisation)
        organisations[spec.code] = organisation
    municipalities: dict[str, Municipality] = {}
    for m in catalogue.MUNICIPALITIES:
        municipality = Municipality(code=m.code, name=m.name, finnish_admin_area=m.finnish_admin_area)
        db.add(municipality)
        municipalities[m.code] = municipality
    db.flush()
    desks: dict[str, Desk] = {}
    for d in catalogue.DESKS:
        desks[d.code] = create_desk(db, organisation=organisations[d.organisation], code=d.code, name=d.name)
        # The joint desk takes the "not sure" tips and answers each one at once (domain.md: an automatic
        # acknowledgement is fine); the others acknowledge by hand.
        desks[d.code].auto_acknowledge = organisations[d.organisation].kind == "joint"
    db.flush()
    catalogs = i18n.load_all()
    for desk in desks.values():
        for key, title, body in CANNED_REPLIES:
            for locale in i18n.LOCALES:
                db.add(
                    CannedReply(
                        desk_id=id_of(desk), key=key, language=locale.code, title=title,
                        body=catalogs[locale.code].gettext(body),
                    )
                )  # fmt: skip
    for route in catalogue.demo_routes():
        db.add(
            Route(
                municipality_id=id_of(municipalities[route.municipality]),
                category=route.category,
                desk_id=id_of(desks[route.desk]),
                primary=route.primary,
            )
        )
    accounts = []
    for account_spec in catalogue.DEMO_ACCOUNTS:
        passphrase = demo_passphrase()
        first_desk = desks[account_spec.desks[0]] if account_spec.desks else None
        account, _personal, totp_secret = create_account(
            db,
            username=account_spec.username,
            role=account_spec.role,
            passphrase=passphrase,
            signing_key=signing_key,
            organisation_id=first_desk.organisation_id if first_desk else None,
            keywrap_params=keywrap_params,
        )
        for desk_code in account_spec.desks:
            desk = desks[desk_code]
            organisation_code = next(o for o, org in organisations.items() if org.id == desk.organisation_id)
            recovery_grant = db.exec(
                select(DeskKeyGrant).where(
                    DeskKeyGrant.desk_id == desk.id,
                    DeskKeyGrant.recovery_organisation_id == desk.organisation_id,
                )
            ).one()
            desk_identity = open_grant(recovery_grant, desk, recovery[organisation_code])
            assert account.id is not None and account.public_key is not None
            db.add(DeskMembership(desk_id=id_of(desk), staff_id=account.id))
            grant_to_staff(
                db,
                desk=desk,
                identity=desk_identity,
                staff_id=account.id,
                staff_public_key=account.public_key,
            )
        accounts.append(
            {
                "username": account_spec.username,
                "password": passphrase,
                "totp_secret": totp_secret,
                "role": account_spec.role,
                "desks": list(account_spec.desks),
            }
        )
    db.flush()
    return {
        "organisations": [
            {"code": code, "name": organisations[code].name, "recovery_identity": identity.to_text()}
            for code, identity in recovery.items()
        ],
        "accounts": accounts,
    }
