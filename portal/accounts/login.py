"""Staff login: passphrase and TOTP, the same answer and about the same time whatever went wrong.

The passphrase unwraps the personal private key (Argon2id at KEYWRAP_PARAMS_V1); an unknown or disabled
user gets the same Argon2id work on a dummy blob, so timing does not tell which usernames exist. A TOTP
code is accepted once: the step it belongs to must be later than the last accepted one (no replay),
claimed by an atomic update so that it holds across processes too.
Throttling (per account and global) is the caller's, in the database, so it holds across processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import time

import pyotp
from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

import crypto
from portal.accounts.models import StaffAccount
from portal.accounts.services import open_totp_secret

TOTP_STEP_SECONDS = 30
# Accept the previous and next step as well: phones' clocks drift.
TOTP_WINDOW = 1
_DUMMY_BLOB: dict[str, bytes] = {}


@dataclasses.dataclass(frozen=True)
class StaffLogin:
    account: StaffAccount
    identity: crypto.X25519Identity = dataclasses.field(repr=False)


def _dummy_blob(params: crypto.Argon2Params) -> bytes:
    if params.name not in _DUMMY_BLOB:
        _DUMMY_BLOB[params.name] = crypto.wrap_secret(bytes(32), "not a passphrase of anyone", params=params)
    return _DUMMY_BLOB[params.name]


def totp_step(code: str, secret: str, *, now: float | None = None) -> int | None:
    """The time step `code` is valid for (within the window), or None."""
    totp = pyotp.TOTP(secret, interval=TOTP_STEP_SECONDS)
    current = int((time.time() if now is None else now) // TOTP_STEP_SECONDS)
    code = code.strip().replace(" ", "")
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP_SECONDS), code):
            return step
    return None


def authenticate(
    db: Session,
    *,
    username: str,
    passphrase: str,
    totp_code: str,
    signing_key: bytes,
    keywrap_params: crypto.Argon2Params = crypto.KEYWRAP_PARAMS_V1,
    now: float | None = None,
) -> StaffLogin | None:
    """The account and its unlocked personal key, or None for any failure (which one is not said)."""
    account = db.exec(select(StaffAccount).where(StaffAccount.username == username.strip())).first()
    usable = (
        account is not None
        and not account.disabled
        and account.wrapped_private_key is not None
        and account.totp_secret_sealed is not None
    )
    if not usable or account is None:
        with contextlib.suppress(crypto.UnwrapError):
            crypto.unwrap_secret(_dummy_blob(keywrap_params), passphrase)
        return None
    assert account.wrapped_private_key is not None and account.totp_secret_sealed is not None
    try:
        secret = crypto.unwrap_secret(account.wrapped_private_key, passphrase)
    except crypto.UnwrapError:
        return None
    step = totp_step(
        totp_code, open_totp_secret(account.totp_secret_sealed, signing_key=signing_key), now=now
    )
    if step is None or step <= account.totp_last_step:
        return None  # wrong, or already used: a code seen over a shoulder cannot be replayed
    # Claim the step with a compare-and-set, not a read-then-write: two processes checking the same code at
    # once both see the old step, and only one of them may win it (issue 5: processes share only the db).
    claimed = db.connection().execute(
        update(StaffAccount)
        .where(col(StaffAccount.id) == account.id, col(StaffAccount.totp_last_step) < step)
        .values(totp_last_step=step)
    )
    if claimed.rowcount != 1:
        return None
    set_committed_value(account, "totp_last_step", step)
    return StaffLogin(account=account, identity=crypto.X25519Identity(secret))
