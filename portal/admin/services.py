"""Organisations, municipalities and desks, as administrators create and change them.

Nothing here reads a tip's content: the only thing this module learns about tips is how many there are per
desk and status (DESIGN 1, "without ever being able to read tips by default"). Every change is audited in
the same transaction, with codes and ids in the detail, never a name a person typed.

Administrators are network-wide: Lykta is run jointly by the municipalities and the police, and the demo
administrator belongs to no organisation. Scoping an administrator to one organisation would be a filter
on these functions, not a change of the key model: an administrator holds no desk key either way.
"""

from __future__ import annotations

import dataclasses
import datetime

import segno
from sqlalchemy import func
from sqlmodel import Session, col, select

import crypto
from portal.accounts.models import DeskMembership, StaffAccount, StaffInvite
from portal.admin.forms import (
    ERROR_CHOOSE,
    ERROR_CODE,
    ERROR_CODE_TAKEN,
    ERROR_NAME,
    ERROR_NUMBER_RANGE,
    AdminForm,
    FieldError,
    clean_code,
    clean_id,
    clean_int,
    clean_name,
)
from portal.audit import log as audit
from portal.db import id_of, utcnow
from portal.i18n import N_
from portal.keyring import services as keyring
from portal.keyring.models import DeskKeyGrant
from portal.network.catalogue import ORGANISATION_KINDS
from portal.network.models import Desk, Municipality, Organisation
from portal.retention import rules as retention_rules
from portal.retention import services as retention
from portal.submission.models import STATUSES, Tip, TipRecipient
from portal.triage.services import OUTCOMES

# Retention per desk (domain.md, "Retention"): at least a month, at most ten years.
RETENTION_MIN_DAYS = 30
RETENTION_MAX_DAYS = 3650
DEFAULT_RETENTION_DAYS = 730
# Per outcome, a desk may keep closed tips for another time than its default (portal.retention.rules).
OUTCOME_FIELD_PREFIX = "retention_"
OUTCOME_FIELDS = tuple(OUTCOME_FIELD_PREFIX + outcome for outcome in OUTCOMES)
# One label per kind of portal.network.catalogue.ORGANISATION_KINDS (a test keeps the two in step).
KIND_LABELS = {
    "municipality": N_("Municipality"),
    "police": N_("Police"),
    "agency": N_("Government agency"),
    "joint": N_("Joint cooperation"),
}


class InvalidError(Exception):
    """The form does not describe a valid change; `errors` maps field names to messages."""

    def __init__(self, errors: dict[str, FieldError]) -> None:
        super().__init__(sorted(errors))
        self.errors = errors


class NotFoundError(Exception):
    """No such organisation, desk, municipality or account."""


# ---------------------------------------------------------------------------------------------------------
# Organisations


@dataclasses.dataclass(frozen=True)
class OrganisationRow:
    organisation: Organisation
    desk_count: int
    staff_count: int


def organisations(db: Session) -> list[OrganisationRow]:
    desk_counts = dict(
        db.exec(select(Desk.organisation_id, func.count()).group_by(col(Desk.organisation_id))).all()
    )
    staff_counts = dict(
        db.exec(
            select(StaffAccount.organisation_id, func.count()).group_by(col(StaffAccount.organisation_id))
        ).all()
    )
    return [
        OrganisationRow(org, desk_counts.get(org.id or -1, 0), staff_counts.get(org.id, 0))
        for org in db.exec(select(Organisation).order_by(col(Organisation.name)))
    ]


def _unique_code(db: Session, model: type[Organisation] | type[Municipality] | type[Desk], code: str) -> bool:
    return db.exec(select(model).where(model.code == code)).first() is None


@dataclasses.dataclass(frozen=True)
class RecoverySheet:
    """The page to print once: the private recovery key as text and as a QR code. Never stored or logged."""

    identity_text: str = dataclasses.field(repr=False)
    qr_svg: str = dataclasses.field(repr=False)


def recovery_sheet(identity: crypto.X25519Identity) -> RecoverySheet:
    # The QR code is drawn here as inline SVG, so the key never goes to a QR service (DESIGN 4). Level Q
    # still scans from a creased or stained printout.
    text = identity.to_text()
    code = segno.make(text, error="q")
    return RecoverySheet(
        identity_text=text,
        qr_svg=str(code.svg_inline(scale=4, border=4, dark="#000", light="#fff", svgclass="recovery-qr")),
    )


def create_organisation(db: Session, form: AdminForm, *, actor: str) -> tuple[Organisation, RecoverySheet]:
    """A new organisation with a new recovery key; only the public half is stored (DESIGN 3).

    The private half is returned once, to be printed; the caller must not keep it anywhere.
    """
    errors: dict[str, FieldError] = {}
    code = clean_code(form.get("code"))
    name = clean_name(form.get("name"))
    kind = form.get("kind")
    if code is None:
        errors["code"] = FieldError(ERROR_CODE)
    elif not _unique_code(db, Organisation, code):
        errors["code"] = FieldError(ERROR_CODE_TAKEN)
    if name is None:
        errors["name"] = FieldError(ERROR_NAME)
    if kind not in ORGANISATION_KINDS:
        errors["kind"] = FieldError(ERROR_CHOOSE)
    if errors or code is None or name is None:
        raise InvalidError(errors)
    identity = crypto.X25519Identity.generate()
    organisation = Organisation(code=code, name=name, kind=kind, recovery_public_key=str(identity.recipient))
    db.add(organisation)
    db.flush()
    audit.record(
        db,
        "admin.organisation.created",
        actor=actor,
        detail={"organisation_id": organisation.id, "code": code, "kind": kind},
    )
    return organisation, recovery_sheet(identity)


# ---------------------------------------------------------------------------------------------------------
# Municipalities


def municipalities(db: Session) -> list[Municipality]:
    return list(db.exec(select(Municipality).order_by(col(Municipality.name))))


def create_municipality(db: Session, form: AdminForm, *, actor: str) -> Municipality:
    errors: dict[str, FieldError] = {}
    code = clean_code(form.get("code"))
    name = clean_name(form.get("name"))
    if code is None:
        errors["code"] = FieldError(ERROR_CODE)
    elif not _unique_code(db, Municipality, code):
        errors["code"] = FieldError(ERROR_CODE_TAKEN)
    if name is None:
        errors["name"] = FieldError(ERROR_NAME)
    if errors or code is None or name is None:
        raise InvalidError(errors)
    municipality = Municipality(code=code, name=name, finnish_admin_area=form.get("finnish") == "yes")
    db.add(municipality)
    db.flush()
    audit.record(
        db,
        "admin.municipality.created",
        actor=actor,
        detail={"municipality_id": municipality.id, "code": code, "finnish": municipality.finnish_admin_area},
    )
    return municipality


# ---------------------------------------------------------------------------------------------------------
# Desks


@dataclasses.dataclass(frozen=True)
class DeskRow:
    """A desk as the administrator sees it: settings, people and key holders, and tip counts only."""

    desk: Desk
    organisation: Organisation
    members: int
    key_holders: int  # members holding a grant of the desk key (besides the recovery key)
    tips_per_status: dict[str, int]


def _tips_per_status(db: Session) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    # The recipient rows carry a copy of the tip's status (0003), so this is an index scan, not a join.
    rows = db.exec(
        select(TipRecipient.desk_id, TipRecipient.tip_status, func.count()).group_by(
            col(TipRecipient.desk_id), col(TipRecipient.tip_status)
        )
    ).all()
    for desk_id, status, count in rows:
        counts.setdefault(desk_id, {})[status] = count
    return counts


def _members_and_holders(db: Session) -> tuple[dict[int, int], dict[int, int]]:
    members = dict(
        db.exec(select(DeskMembership.desk_id, func.count()).group_by(col(DeskMembership.desk_id))).all()
    )
    holders = dict(
        db.exec(
            select(DeskKeyGrant.desk_id, func.count(func.distinct(DeskKeyGrant.staff_id)))
            .join(
                DeskMembership,
                (col(DeskMembership.desk_id) == col(DeskKeyGrant.desk_id))
                & (col(DeskMembership.staff_id) == col(DeskKeyGrant.staff_id)),
            )
            .group_by(col(DeskKeyGrant.desk_id))
        ).all()
    )
    return members, holders


def desks(db: Session, *, organisation_id: int | None = None) -> list[DeskRow]:
    query = select(Desk, Organisation).join(Organisation, col(Organisation.id) == col(Desk.organisation_id))
    if organisation_id is not None:
        query = query.where(Desk.organisation_id == organisation_id)
    per_status = _tips_per_status(db)
    members, holders = _members_and_holders(db)
    return [
        DeskRow(
            desk=desk,
            organisation=org,
            members=members.get(desk.id or -1, 0),
            key_holders=holders.get(desk.id or -1, 0),
            tips_per_status={s: per_status.get(desk.id or -1, {}).get(s, 0) for s in STATUSES},
        )
        for desk, org in db.exec(query.order_by(col(Organisation.name), col(Desk.name)))
    ]


def desk_row(db: Session, desk_id: int) -> DeskRow:
    rows = [row for row in desks(db) if row.desk.id == desk_id]
    if not rows:
        raise NotFoundError()
    return rows[0]


def _desk_settings(form: AdminForm, errors: dict[str, FieldError]) -> tuple[str | None, int | None]:
    name = clean_name(form.get("name"))
    retention = clean_int(form.get("retention_days"), minimum=RETENTION_MIN_DAYS, maximum=RETENTION_MAX_DAYS)
    if name is None:
        errors["name"] = FieldError(ERROR_NAME)
    if retention is None:
        errors["retention_days"] = FieldError(
            ERROR_NUMBER_RANGE, {"min": RETENTION_MIN_DAYS, "max": RETENTION_MAX_DAYS}
        )
    return name, retention


def _outcome_days(form: AdminForm, errors: dict[str, FieldError]) -> dict[str, int | None]:
    """The desk's own retention per outcome; a blank field leaves the outcome to the built-in default."""
    days, wrong = retention.parse_outcome_days(form.with_prefix(OUTCOME_FIELD_PREFIX), OUTCOMES)
    for outcome in wrong:
        errors[OUTCOME_FIELD_PREFIX + outcome] = FieldError(
            ERROR_NUMBER_RANGE, {"min": retention_rules.MIN_DAYS, "max": retention_rules.MAX_DAYS}
        )
    return days


def outcome_values(db: Session, desk_id: int) -> dict[str, str]:
    """The desk's rules per outcome as the settings form shows them (blank: no rule of its own)."""
    rules = retention.outcome_rules(db, desk_id)
    return {OUTCOME_FIELD_PREFIX + o: str(rules[o]) if o in rules else "" for o in OUTCOMES}


def create_desk(db: Session, form: AdminForm, *, actor: str) -> Desk:
    """A desk whose key pair exists at once, granted to its organisation's recovery key (DESIGN 3)."""
    errors: dict[str, FieldError] = {}
    organisation_id = clean_id(form.get("organisation"))
    organisation = db.get(Organisation, organisation_id) if organisation_id is not None else None
    code = clean_code(form.get("code"))
    if organisation is None:
        errors["organisation"] = FieldError(ERROR_CHOOSE)
    if code is None:
        errors["code"] = FieldError(ERROR_CODE)
    elif not _unique_code(db, Desk, code):
        errors["code"] = FieldError(ERROR_CODE_TAKEN)
    name, retention_days = _desk_settings(form, errors)
    outcome_days = _outcome_days(form, errors)
    if errors or organisation is None or code is None or name is None or retention_days is None:
        raise InvalidError(errors)
    desk = keyring.create_desk(db, organisation=organisation, code=code, name=name)
    desk.retention_days = retention_days
    desk.auto_acknowledge = form.get("auto_acknowledge") == "yes"
    db.add(desk)
    db.flush()
    retention.save_outcome_rules(db, id_of(desk), outcome_days)
    audit.record(
        db,
        "admin.desk.created",
        actor=actor,
        desk_id=desk.id,
        detail={
            "code": code,
            "organisation_id": organisation.id,
            "retention_days": retention_days,
            "outcome_days": {o: d for o, d in outcome_days.items() if d is not None},
            "auto_acknowledge": desk.auto_acknowledge,
        },
    )
    return desk


def update_desk(db: Session, desk_id: int, form: AdminForm, *, actor: str) -> Desk:
    """Change a desk's name, retention and automatic acknowledgement. The code never changes: the desk key
    is bound to it (keyring.desk_key_subject), so renaming the code would orphan every grant."""
    desk = db.get(Desk, desk_id)
    if desk is None:
        raise NotFoundError()
    errors: dict[str, FieldError] = {}
    name, retention_days = _desk_settings(form, errors)
    outcome_days = _outcome_days(form, errors)
    if errors or name is None or retention_days is None:
        raise InvalidError(errors)
    auto_acknowledge = form.get("auto_acknowledge") == "yes"
    changed = [
        field
        for field, old, new in (
            ("name", desk.name, name),
            ("retention_days", desk.retention_days, retention_days),
            ("auto_acknowledge", desk.auto_acknowledge, auto_acknowledge),
        )
        if old != new
    ]
    desk.name, desk.retention_days, desk.auto_acknowledge = name, retention_days, auto_acknowledge
    db.add(desk)
    db.flush()
    changed += [OUTCOME_FIELD_PREFIX + o for o in retention.save_outcome_rules(db, desk_id, outcome_days)]
    if any(field.startswith(OUTCOME_FIELD_PREFIX) for field in changed):
        # A new default (retention_days) or outcome rule applies to the tips the desk already closed.
        retention.recompute_desk(db, desk_id)
    audit.record(
        db,
        "admin.desk.updated",
        actor=actor,
        desk_id=desk.id,
        detail={
            "changed": changed,
            "retention_days": retention_days,
            "outcome_days": {o: d for o, d in outcome_days.items() if d is not None},
            "auto_acknowledge": auto_acknowledge,
        },
    )
    return desk


# ---------------------------------------------------------------------------------------------------------
# Overview


@dataclasses.dataclass(frozen=True)
class Overview:
    organisations: int
    municipalities: int
    desks: int
    desks_without_key_holder: int
    staff_enrolled: int
    staff_invited: int
    staff_disabled: int
    members_waiting_for_grant: int
    tips_per_status: dict[str, int]


def overview(db: Session, *, now: datetime.datetime | None = None) -> Overview:
    now = now or utcnow()
    rows = desks(db)
    accounts = list(db.exec(select(StaffAccount)))
    pending = set(
        db.exec(
            select(StaffInvite.staff_id).where(
                col(StaffInvite.used_at).is_(None), col(StaffInvite.expires_at) > now
            )
        )
    )
    return Overview(
        organisations=len(db.exec(select(Organisation.id)).all()),
        municipalities=len(db.exec(select(Municipality.id)).all()),
        desks=len(rows),
        desks_without_key_holder=sum(1 for row in rows if row.key_holders == 0),
        staff_enrolled=sum(1 for a in accounts if not a.disabled and is_enrolled(a)),
        staff_invited=sum(1 for a in accounts if not a.disabled and a.id in pending),
        staff_disabled=sum(1 for a in accounts if a.disabled),
        members_waiting_for_grant=sum(row.members - row.key_holders for row in rows),
        # Counted on the tips, not summed over desks: a tip sent to two desks is one tip.
        tips_per_status={
            status: count
            for status, count in db.exec(select(Tip.status, func.count()).group_by(col(Tip.status))).all()
        },
    )


def is_enrolled(account: StaffAccount) -> bool:
    """The account can log in: it has a personal key and a TOTP secret."""
    return account.wrapped_private_key is not None and account.totp_secret_sealed is not None
