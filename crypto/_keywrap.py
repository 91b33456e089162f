"""Personal-key wrap: a staff member's X25519 secret under their passphrase (FORMAT.md section 3).

    blob = WRAP_MAGIC || u8 params id || u32_be opslimit || u32_be memlimit in KiB || salt (16)
           || nonce (24) || SecretBox(Argon2id(passphrase), nonce, secret)   (48)

Only the SecretBox is authenticated, yet no bit of the blob can change unnoticed: the salt and the
limits feed the key, the nonce feeds the tag, and the params id must be the one the limits imply
(`1` for the limits of KEYWRAP_PARAMS_V1, `0` for any other, "custom", set), so a header has exactly
one accepted spelling. The limits are checked against fixed bounds before any Argon2 work, so a
tampered blob cannot make the server allocate or compute without bound.
"""

from __future__ import annotations

import secrets
import struct
import unicodedata

from nacl.exceptions import CryptoError as _NaclCryptoError
from nacl.secret import SecretBox

from ._errors import UnwrapError
from ._kdf import ARGON2_MEMLIMIT_MIN, ARGON2_OPSLIMIT_MIN, ARGON2_SALT_SIZE, Argon2Params, argon2id

WRAP_MAGIC = b"lykta-keywrap/v1"
WRAPPED_SECRET_SIZE = 32

KEYWRAP_PARAMS_V1 = Argon2Params("keywrap-v1", opslimit=3, memlimit=256 * 1024 * 1024)
CUSTOM_PARAMS_ID = 0
# Params id -> pinned set. A new pinned set gets the next id; ids are never reused.
PINNED_KEYWRAP_PARAMS = {1: KEYWRAP_PARAMS_V1}

# Bounds a blob's limits must meet before any work is done (FORMAT.md section 3). The floor is
# libsodium's, so tests can wrap cheaply; the ceilings are far above KEYWRAP_PARAMS_V1 but bounded.
WRAP_OPSLIMIT_MIN = ARGON2_OPSLIMIT_MIN
WRAP_OPSLIMIT_MAX = 10
WRAP_MEMLIMIT_MIN = ARGON2_MEMLIMIT_MIN
WRAP_MEMLIMIT_MAX = 1024 * 1024 * 1024

_KIB = 1024
_HEADER = struct.Struct(f">{len(WRAP_MAGIC)}sBII")
_NONCE_SIZE = SecretBox.NONCE_SIZE
_BOX_SIZE = WRAPPED_SECRET_SIZE + SecretBox.MACBYTES
WRAPPED_BLOB_SIZE = _HEADER.size + ARGON2_SALT_SIZE + _NONCE_SIZE + _BOX_SIZE  # 113


def _params_id(opslimit: int, memlimit: int) -> int:
    for params_id, pinned in PINNED_KEYWRAP_PARAMS.items():
        if (pinned.opslimit, pinned.memlimit) == (opslimit, memlimit):
            return params_id
    return CUSTOM_PARAMS_ID


def _limits_in_bounds(opslimit: int, memlimit: int) -> bool:
    return (
        WRAP_OPSLIMIT_MIN <= opslimit <= WRAP_OPSLIMIT_MAX
        and WRAP_MEMLIMIT_MIN <= memlimit <= WRAP_MEMLIMIT_MAX
        and memlimit % _KIB == 0
    )


def _passphrase_bytes(passphrase: str) -> bytes:
    # NFC, so that the same passphrase typed on two keyboards (precomposed or combining accents)
    # gives the same key. A lone surrogate has no UTF-8 form and raises UnicodeEncodeError.
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _wrap_key(passphrase: bytes, *, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return argon2id(passphrase, salt=salt, params=Argon2Params("keywrap-stored", opslimit, memlimit))


def wrap_secret(secret: bytes, passphrase: str, *, params: Argon2Params = KEYWRAP_PARAMS_V1) -> bytes:
    """Wrap a 32-byte secret under `passphrase` with a fresh salt and nonce.

    `params` other than a pinned set are written with params id 0 ("custom"); tests use this for
    cheap blobs. Limits outside the bounds `unwrap_secret` accepts raise ValueError, since such a
    blob could never be opened.
    """
    if len(secret) != WRAPPED_SECRET_SIZE:
        raise ValueError(f"the wrapped secret must be {WRAPPED_SECRET_SIZE} bytes")
    if not _limits_in_bounds(params.opslimit, params.memlimit):
        raise ValueError("Argon2id limits outside the key-wrap bounds (FORMAT.md section 3)")
    salt = secrets.token_bytes(ARGON2_SALT_SIZE)
    nonce = secrets.token_bytes(_NONCE_SIZE)
    key = _wrap_key(
        _passphrase_bytes(passphrase), salt=salt, opslimit=params.opslimit, memlimit=params.memlimit
    )
    box = SecretBox(key).encrypt(bytes(secret), nonce).ciphertext
    header = _HEADER.pack(
        WRAP_MAGIC, _params_id(params.opslimit, params.memlimit), params.opslimit, params.memlimit // _KIB
    )
    return header + salt + nonce + box


def unwrap_secret(blob: bytes, passphrase: str) -> bytes:
    """Open a blob made by `wrap_secret`; UnwrapError on anything wrong, with no detail.

    Length, magic, limits and params id are checked before Argon2 runs.
    """
    blob = bytes(blob)
    if len(blob) != WRAPPED_BLOB_SIZE:
        raise UnwrapError()
    magic, params_id, opslimit, memlimit_kib = _HEADER.unpack_from(blob)
    memlimit = memlimit_kib * _KIB
    if magic != WRAP_MAGIC or not _limits_in_bounds(opslimit, memlimit):
        raise UnwrapError()
    if params_id != _params_id(opslimit, memlimit):
        raise UnwrapError()
    salt_end = _HEADER.size + ARGON2_SALT_SIZE
    salt = blob[_HEADER.size : salt_end]
    nonce = blob[salt_end : salt_end + _NONCE_SIZE]
    box = blob[salt_end + _NONCE_SIZE :]
    try:
        passphrase_bytes = _passphrase_bytes(passphrase)
    except UnicodeEncodeError:
        raise UnwrapError() from None
    key = _wrap_key(passphrase_bytes, salt=salt, opslimit=opslimit, memlimit=memlimit)
    try:
        secret: bytes = SecretBox(key).decrypt(box, nonce)
    except _NaclCryptoError:
        raise UnwrapError() from None
    return secret
