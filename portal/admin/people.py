"""Staff accounts as administrators manage them: invite, disable, reset TOTP, role, desk memberships.

An administrator decides who belongs to a desk, but cannot give anyone the desk key: adding a member only
creates the membership, and the key must be granted by a member of the desk or from the organisation's
recovery key (issue 4, part 2). Until then the page says the person is waiting for a grant.

Ending a person's access ends their sessions at once: the session rows are deleted, so a cookie still in
their browser opens nothing (DESIGN 3).
"""

from __future__ import annotations

import dataclasses
import datetime
import re

from sqlalchemy import delete
from sqlmodel import Session, col, select

from portal.accounts import enrolment
from portal.accounts.models import ROLES, DeskMembership, StaffAccount, StaffInvite
from portal.admin.forms import ERROR_CHOOSE, AdminForm, FieldError, clean_id
from portal.admin.services import InvalidError, NotFoundError, is_enrolled
from portal.audit import log as audit
from portal.db import utcnow
from portal.i18n import N_
from portal.keyring import services as keyring
from portal.keyring.models import DeskKeyGrant
from portal.network.models import Desk, Organisation
from portal.sessions import SessionRow

# The kind of staff sessions (portal.triage.web.SESSION_KIND; a test pins that the two agree). Not imported:
# a service does not import the web layer.
STAFF_SESSION_KIND = "staff"
USERNAME_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?")

ERROR_USERNAME = N_("Use 1 to 100 lower-case letters a to z, digits, dots, hyphens and underscores.")
ERROR_USERNAME_TAKEN = N_("This username is already in use.")
ERROR_NOT_YOURSELF = N_("You cannot do this to your own account. Ask another administrator.")
ERROR_ALREADY_MEMBER = N_("The person is already a member of this desk.")

STATE_LABELS = {
    "enrolled": N_("enrolled"),
    "invited": N_("invited, not enrolled yet"),
    "invite-expired": N_("invitation expired"),
    "not-enrolled": N_("not enrolled"),
}


class NotYourselfError(Exception):
    """An administrator tried to disable, or change the role of, their own account."""


@dataclasses.dataclass(frozen=True)
class Membership:
    desk: Desk
    organisation: Organisation
    has_key: bool  # False: the person waits for a member of the desk (or the recovery key) to grant it


@dataclasses.dataclass(frozen=True)
class StaffRow:
    account: StaffAccount
    organisation: Organisation | None
    memberships: list[Membership]
    state: str  # a key of STATE_LABELS

    @property
    def id(self) -> int:
        assert self.account.id is not None  # loaded from the database
        return self.account.id


def _state(account: StaffAccount, pending_until: datetime.datetime | None, now: datetime.datetime) -> str:
    if is_enrolled(account):
        return "enrolled"
    if pending_until is None:
        return "not-enrolled"
    return "invited" if pending_until > now else "invite-expired"


def staff(db: Session, *, desk_id: int | None = None, staff_id: int | None = None) -> list[StaffRow]:
    """Every account (or the members of one desk, or one account), with its desks and whether it holds
    each desk's key. Reads no key material besides which grants exist."""
    now = utcnow()
    query = select(StaffAccount).order_by(col(StaffAccount.username))
    if desk_id is not None:
        query = query.join(DeskMembership, col(DeskMembership.staff_id) == col(StaffAccount.id)).where(
            DeskMembership.desk_id == desk_id
        )
    if staff_id is not None:
        query = query.where(StaffAccount.id == staff_id)
    accounts = list(db.exec(query))
    ids = [a.id for a in accounts]
    organisations = {o.id: o for o in db.exec(select(Organisation))}
    memberships: dict[int, list[Membership]] = {}
    granted = set(
        db.exec(
            select(DeskKeyGrant.staff_id, DeskKeyGrant.desk_id).where(
                col(DeskKeyGrant.staff_id).in_(ids or [-1])
            )
        ).all()
    )
    for membership, desk in db.exec(
        select(DeskMembership, Desk)
        .join(Desk, col(Desk.id) == col(DeskMembership.desk_id))
        .where(col(DeskMembership.staff_id).in_(ids or [-1]))
        .order_by(col(Desk.name))
    ):
        memberships.setdefault(membership.staff_id, []).append(
            Membership(
                desk=desk,
                organisation=organisations[desk.organisation_id],
                has_key=(membership.staff_id, membership.desk_id) in granted,
            )
        )
    # The newest invitation of each account that was never used: its expiry tells invited from expired.
    pending: dict[int, datetime.datetime] = {}
    for invite in db.exec(
        select(StaffInvite).where(
            col(StaffInvite.staff_id).in_(ids or [-1]), col(StaffInvite.used_at).is_(None)
        )
    ):
        if invite.staff_id not in pending or invite.expires_at > pending[invite.staff_id]:
            pending[invite.staff_id] = invite.expires_at
    return [
        StaffRow(
            account=account,
            organisation=organisations.get(account.organisation_id),
            memberships=memberships.get(account.id or -1, []),
            state=_state(account, _aware(pending.get(account.id or -1)), now),
        )
        for account in accounts
    ]


def _aware(moment: datetime.datetime | None) -> datetime.datetime | None:
    # SQLite hands back naive datetimes even for values stored as UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment


def one(db: Session, staff_id: int) -> StaffRow:
    rows = staff(db, staff_id=staff_id)
    if not rows:
        raise NotFoundError()
    return rows[0]


def _account(db: Session, staff_id: int) -> StaffAccount:
    account = db.get(StaffAccount, staff_id)
    if account is None:
        raise NotFoundError()
    return account


def end_sessions(db: Session, staff_id: int) -> None:
    """Delete every session of the account: its cookies, wherever they are, open nothing from now on."""
    db.exec(
        delete(SessionRow).where(
            col(SessionRow.kind) == STAFF_SESSION_KIND, col(SessionRow.subject) == str(staff_id)
        )
    )


def invite(db: Session, form: AdminForm, *, created_by: int, actor: str) -> tuple[int, str]:
    """A new account, invited: returns its id and the one-time enrolment token (shown once, never stored)."""
    errors: dict[str, FieldError] = {}
    username = form.get("username").strip().lower()
    role = form.get("role")
    organisation_text = form.get("organisation")
    organisation_id = clean_id(organisation_text) if organisation_text else None
    desk_texts = form.get_all("desks")
    desk_ids = sorted({d for d in (clean_id(t) for t in desk_texts) if d is not None})
    if not USERNAME_PATTERN.fullmatch(username):
        errors["username"] = FieldError(ERROR_USERNAME)
    elif db.exec(select(StaffAccount).where(StaffAccount.username == username)).first() is not None:
        errors["username"] = FieldError(ERROR_USERNAME_TAKEN)
    if role not in ROLES:
        errors["role"] = FieldError(ERROR_CHOOSE)
    if organisation_text and (organisation_id is None or db.get(Organisation, organisation_id) is None):
        errors["organisation"] = FieldError(ERROR_CHOOSE)
    known_desks = set(db.exec(select(Desk.id).where(col(Desk.id).in_(desk_ids or [-1]))).all())
    if len(desk_ids) != len(desk_texts) or set(desk_ids) != known_desks:
        errors["desks"] = FieldError(ERROR_CHOOSE)
    if errors:
        raise InvalidError(errors)
    try:
        token = enrolment.invite(
            db,
            username=username,
            role=role,
            organisation_id=organisation_id,
            desk_ids=desk_ids,
            created_by=created_by,
        )
    except enrolment.InviteError:
        # Checked above already; this is a second administrator inviting the same name at the same moment.
        raise InvalidError({"username": FieldError(ERROR_USERNAME_TAKEN)}) from None
    account = db.exec(select(StaffAccount).where(StaffAccount.username == username)).one()
    assert account.id is not None
    audit.record(
        db,
        "admin.staff.invited",
        actor=actor,
        detail={
            "staff_id": account.id,
            "role": role,
            "organisation_id": organisation_id,
            "desk_ids": desk_ids,
        },
    )
    return account.id, token


def set_disabled(db: Session, staff_id: int, *, disabled: bool, by_staff_id: int, actor: str) -> None:
    """Disable (and log out everywhere) or enable an account."""
    if staff_id == by_staff_id:
        raise NotYourselfError()
    account = _account(db, staff_id)
    account.disabled = disabled
    db.add(account)
    if disabled:
        end_sessions(db, staff_id)
    audit.record(
        db,
        "admin.staff.disabled" if disabled else "admin.staff.enabled",
        actor=actor,
        detail={"staff_id": staff_id},
    )


def reset_totp(db: Session, staff_id: int, *, by_staff_id: int, actor: str) -> str:
    """Clear the TOTP secret (the account cannot log in) and issue a new one-time enrolment link.

    The person's key pair stays: their desk grants are sealed to it. The enrolment flow sees an account
    that already has a key and lets the person set up a new authenticator after proving their passphrase.
    Older unused links of the account stop working, so only the newest one can be used.
    """
    account = _account(db, staff_id)
    account.totp_secret_sealed = None
    db.add(account)
    end_sessions(db, staff_id)
    now = utcnow()
    for old in db.exec(
        select(StaffInvite).where(StaffInvite.staff_id == staff_id, col(StaffInvite.used_at).is_(None))
    ):
        old.expires_at = now
        db.add(old)
    token = enrolment.reenrol(db, staff_id=staff_id, created_by=by_staff_id)
    audit.record(db, "admin.staff.totp-reset", actor=actor, detail={"staff_id": staff_id})
    return token


def change_role(db: Session, staff_id: int, form: AdminForm, *, by_staff_id: int, actor: str) -> None:
    role = form.get("role")
    if role not in ROLES:
        raise InvalidError({"role": FieldError(ERROR_CHOOSE)})
    if staff_id == by_staff_id:
        # Keeps at least one administrator: the one acting cannot demote themselves.
        raise NotYourselfError()
    account = _account(db, staff_id)
    previous = account.role
    account.role = role
    db.add(account)
    audit.record(
        db,
        "admin.staff.role-changed",
        actor=actor,
        detail={"staff_id": staff_id, "from": previous, "to": role},
    )


def add_membership(db: Session, staff_id: int, form: AdminForm, *, actor: str) -> None:
    """Make the person a member of a desk. No key is granted here: a desk member or the recovery key must."""
    _account(db, staff_id)
    desk_id = clean_id(form.get("desk"))
    desk = db.get(Desk, desk_id) if desk_id is not None else None
    if desk is None or desk_id is None:
        raise InvalidError({"desk": FieldError(ERROR_CHOOSE)})
    if db.get(DeskMembership, (desk_id, staff_id)) is not None:
        raise InvalidError({"desk": FieldError(ERROR_ALREADY_MEMBER)})
    db.add(DeskMembership(desk_id=desk_id, staff_id=staff_id))
    audit.record(db, "admin.staff.member-added", actor=actor, desk_id=desk_id, detail={"staff_id": staff_id})


def remove_membership(db: Session, staff_id: int, form: AdminForm, *, actor: str) -> None:
    """End a membership and delete the person's grants of the desk's keys (issue 4, part 2).

    The keyring does it (and audits it), so the rule "a member holds every key of the desk or none" lives
    in one place; rotating the desk key for new tips is offered on the keyring's desk page.
    """
    desk_id = clean_id(form.get("desk"))
    if desk_id is None:
        raise NotFoundError()
    try:
        keyring.revoke_member(db, desk_id=desk_id, staff_id=staff_id, actor=actor)
    except keyring.NotAMemberError:
        raise NotFoundError() from None
