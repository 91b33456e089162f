"""Creating staff accounts with their personal key pair, and sealing their TOTP secret."""

from __future__ import annotations

import hashlib

import nacl.secret
import pyotp
from sqlmodel import Session

import crypto
from portal.accounts.models import StaffAccount

TOTP_PERSON = b"lykta/totp/v1"


def _totp_box(signing_key: bytes) -> nacl.secret.SecretBox:
    # A key of its own, derived from the instance signing key: the database alone holds no working factor.
    key = hashlib.blake2b(signing_key, digest_size=32, person=TOTP_PERSON).digest()
    return nacl.secret.SecretBox(key)


def seal_totp_secret(secret: str, *, signing_key: bytes) -> bytes:
    return bytes(_totp_box(signing_key).encrypt(secret.encode("ascii")))


def open_totp_secret(sealed: bytes, *, signing_key: bytes) -> str:
    return bytes(_totp_box(signing_key).decrypt(sealed)).decode("ascii")


def create_account(
    db: Session,
    *,
    username: str,
    role: str,
    passphrase: str,
    signing_key: bytes,
    organisation_id: int | None = None,
    keywrap_params: crypto.Argon2Params = crypto.KEYWRAP_PARAMS_V1,
) -> tuple[StaffAccount, crypto.X25519Identity, str]:
    """An enrolled account: its key pair (private half wrapped under the passphrase) and a TOTP secret.

    Returns the account, its unlocked identity (for granting desk keys now) and the TOTP secret.
    """
    identity = crypto.X25519Identity.generate()
    totp_secret = pyotp.random_base32()
    account = StaffAccount(
        username=username,
        role=role,
        organisation_id=organisation_id,
        public_key=str(identity.recipient),
        wrapped_private_key=crypto.wrap_secret(identity.secret_bytes(), passphrase, params=keywrap_params),
        totp_secret_sealed=seal_totp_secret(totp_secret, signing_key=signing_key),
    )
    db.add(account)
    db.flush()
    return account, identity, totp_secret
