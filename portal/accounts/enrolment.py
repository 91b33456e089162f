"""Invitations and enrolment: a one-time link, then a passphrase, a personal key pair and TOTP (issue 4).

An administrator (or `lykta user invite`) creates the account without keys and a StaffInvite whose token
is shown once; only its SHA-256 is stored, so the table cannot be used to enrol. Opening the link shows a
fresh TOTP secret (QR code and text). The secret travels back in a hidden field signed with the instance
signing key and bound to the invite, so the server keeps no half-finished enrolment. The POST sets the
passphrase, proves the authenticator with a first code (whose step is then spent: it cannot log in),
creates the personal key pair wrapped under the passphrase, and uses up the invite, all in one transaction.

An account that already has a key pair (its TOTP was reset, portal.admin.people.reset_totp) re-enrols only
its authenticator: it proves its current passphrase instead of choosing one, and keeps its key pair, to
which its desk grants are sealed.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
import secrets
from collections.abc import Sequence

import pyotp
import segno
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlmodel import Session, col, select

import crypto
from portal.accounts.login import totp_step
from portal.accounts.models import ROLES, DeskMembership, StaffAccount, StaffInvite
from portal.accounts.passphrases import ERROR_MISMATCH, passphrase_problems
from portal.accounts.services import seal_totp_secret
from portal.audit import log as audit
from portal.db import utcnow
from portal.i18n import N_
from portal.network.models import Desk

INVITE_VALID_FOR = datetime.timedelta(hours=72)
TOKEN_BYTES = 32  # 256 bits: guessing a link is hopeless, so enrolment needs no throttle against that
TOTP_FIELD_SALT = "lykta.enrol.totp.v1"
TOTP_FIELD_MAX_AGE_SECONDS = 30 * 60
TOTP_ISSUER = "Lykta"
# The same rule as the administration's invite form: lower-case, so "Anna" and "anna" are one person.
USERNAME_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?")

ERROR_TOTP_CODE = N_("The code is not right. Type the 6 digits your authenticator app shows now.")
ERROR_TOTP_EXPIRED = N_("The set-up took too long. Add the new code below to your authenticator app.")
ERROR_WRONG_PASSPHRASE = N_("This is not your current passphrase.")


class InviteError(ValueError):
    """An invitation cannot be made as asked (the message says why; for the CLI and for programmers)."""


class InvalidInviteError(Exception):
    """The link is unknown, used or expired: the three look the same to the visitor."""


Problem = tuple[str, int | None]  # (msgid, limit) as portal.accounts.passphrases returns them


class EnrolmentError(Exception):
    """What the person must correct, per form field; nothing was written."""

    def __init__(self, problems: dict[str, list[Problem]], *, new_secret: bool = False) -> None:
        super().__init__("enrolment refused")
        self.problems = problems
        self.new_secret = new_secret  # the signed TOTP secret expired: show a fresh one


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _new_invite(db: Session, *, staff_id: int, created_by: int | None) -> str:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    db.add(
        StaffInvite(
            token_hash=token_hash(token),
            staff_id=staff_id,
            created_by=created_by,
            expires_at=utcnow() + INVITE_VALID_FOR,
        )
    )
    db.flush()
    return token


def invite(
    db: Session,
    *,
    username: str,
    role: str,
    organisation_id: int | None,
    desk_ids: Sequence[int],
    created_by: int | None,
) -> str:
    """Create an account without keys, its desk memberships and a one-time invitation; return its token.

    The token is the last path segment of `/staff/enrol/{token}`; only its hash is kept, so it must be
    shown now. Not audited here: the caller knows who acts and records it. Memberships give no key: a desk
    member (or the recovery key) grants it once the person has enrolled (portal.keyring.services).
    """
    username = username.strip()
    if not USERNAME_PATTERN.fullmatch(username):
        raise InviteError("usernames are 1 to 100 of a-z, 0-9, '.', '_' and '-'")
    if role not in ROLES:
        raise InviteError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if db.exec(select(StaffAccount.id).where(StaffAccount.username == username)).first() is not None:
        raise InviteError(f"the username {username!r} is already in use")
    wanted = sorted(set(desk_ids))
    known = set(db.exec(select(Desk.id).where(col(Desk.id).in_(wanted or [-1]))).all())
    if known != set(wanted):
        raise InviteError("unknown desk")
    account = StaffAccount(username=username, role=role, organisation_id=organisation_id)
    db.add(account)
    db.flush()
    assert account.id is not None  # flushed
    for desk_id in wanted:
        db.add(DeskMembership(desk_id=desk_id, staff_id=account.id))
    return _new_invite(db, staff_id=account.id, created_by=created_by)


def reenrol(db: Session, *, staff_id: int, created_by: int | None) -> str:
    """A new one-time link for an existing account (after a TOTP reset); return its token."""
    if db.get(StaffAccount, staff_id) is None:
        raise InviteError("no such account")
    return _new_invite(db, staff_id=staff_id, created_by=created_by)


@dataclasses.dataclass(frozen=True)
class PendingEnrolment:
    invite: StaffInvite
    account: StaffAccount

    @property
    def renewing(self) -> bool:
        """The account keeps its key pair and only sets up a new authenticator."""
        return self.account.wrapped_private_key is not None


def find_invite(db: Session, token: str, *, lock: bool = False) -> PendingEnrolment:
    """The unused, unexpired invitation of `token` and its account; InvalidInviteError otherwise.

    With `lock`, the invitation row is locked until the transaction ends, so two browsers posting the same
    link at once cannot both enrol (SQLite already serialises writers: BEGIN IMMEDIATE, portal.db).
    """
    if not token or len(token) > 100:
        raise InvalidInviteError()
    query = select(StaffInvite).where(StaffInvite.token_hash == token_hash(token))
    found = db.exec(query.with_for_update() if lock else query).first()
    if found is None or found.used_at is not None or found.expires_at <= utcnow():
        raise InvalidInviteError()
    account = db.get(StaffAccount, found.staff_id)
    if account is None or account.disabled:
        raise InvalidInviteError()
    return PendingEnrolment(invite=found, account=account)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, *, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code as an inline SVG element: no image request, nothing leaves the page (DESIGN 4)."""
    # A white quiet zone, so that a phone reads it on a dark page too.
    return str(segno.make(uri, error="m").svg_inline(scale=4, light="#fff"))


def _serializer(signing_key: bytes) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(signing_key, salt=TOTP_FIELD_SALT)


def sign_totp_secret(secret: str, *, token: str, signing_key: bytes) -> str:
    """The hidden form field carrying the secret shown on the page, bound to this invitation."""
    return str(_serializer(signing_key).dumps({"invite": token_hash(token).hex(), "secret": secret}))


def read_totp_secret(
    signed: str, *, token: str, signing_key: bytes, max_age: int = TOTP_FIELD_MAX_AGE_SECONDS
) -> str | None:
    """The secret signed for this invitation within `max_age` seconds, or None."""
    try:
        value = _serializer(signing_key).loads(signed[:500], max_age=max_age)
    except BadData:
        return None
    if not isinstance(value, dict) or value.get("invite") != token_hash(token).hex():
        return None
    secret = value.get("secret")
    return secret if isinstance(secret, str) else None


def enrol(
    db: Session,
    *,
    token: str,
    passphrase: str,
    repeated: str,
    signed_totp_secret: str,
    totp_code: str,
    signing_key: bytes,
    language: str | None = None,
    keywrap_params: crypto.Argon2Params = crypto.KEYWRAP_PARAMS_V1,
    now: float | None = None,
) -> StaffAccount:
    """Finish an enrolment in the caller's transaction: all of it is written, or (on an error) nothing.

    Raises InvalidInviteError for a bad link and EnrolmentError with the problems per field ("passphrase",
    "repeat", "code") for anything the person can correct. `language` becomes the account's language: the
    one the person enrolled in.
    """
    pending = find_invite(db, token, lock=True)
    account = pending.account
    renewing = pending.renewing  # read now: creating the key pair below changes the answer
    problems: dict[str, list[Problem]] = {}
    if not renewing:
        for problem in passphrase_problems(passphrase, username=account.username, repeated=repeated):
            # "Not the same" belongs to the second field; everything else to the first.
            field = "repeat" if problem[0] == ERROR_MISMATCH else "passphrase"
            problems.setdefault(field, []).append(problem)
    secret = read_totp_secret(signed_totp_secret, token=token, signing_key=signing_key)
    step = totp_step(totp_code[:12], secret, now=now) if secret is not None else None
    if secret is None:
        problems["code"] = [(ERROR_TOTP_EXPIRED, None)]
    elif step is None:
        problems["code"] = [(ERROR_TOTP_CODE, None)]
    if problems:
        raise EnrolmentError(problems, new_secret=secret is None)
    assert secret is not None and step is not None
    if renewing:
        assert account.wrapped_private_key is not None
        try:
            crypto.unwrap_secret(account.wrapped_private_key, passphrase)
        except crypto.UnwrapError:
            raise EnrolmentError({"passphrase": [(ERROR_WRONG_PASSPHRASE, None)]}) from None
    else:
        identity = crypto.X25519Identity.generate()
        account.public_key = str(identity.recipient)
        account.wrapped_private_key = crypto.wrap_secret(
            identity.secret_bytes(), passphrase, params=keywrap_params
        )
    account.totp_secret_sealed = seal_totp_secret(secret, signing_key=signing_key)
    # The code that proved the app is spent: the same code cannot log in (portal.accounts.login).
    account.totp_last_step = max(account.totp_last_step, step)
    if language:
        account.language = language
    moment = utcnow()
    account.enrolled_at = account.enrolled_at or moment
    pending.invite.used_at = moment
    db.add(account)
    db.add(pending.invite)
    audit.record(
        db,
        "staff.totp-renewed" if renewing else "staff.enrolled",
        actor=f"staff:{account.id}",
        detail={"invite_id": pending.invite.id},
    )
    return account
