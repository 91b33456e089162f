"""Argon2id with pinned, named parameter sets (FORMAT.md sections 3 and 4).

Every caller passes an `Argon2Params`, so PyNaCl's defaults are never used by accident, and a parameter
set has a name that rows and blobs can record. Tests lower the cost through the `fast_argon2` fixture.
"""

from __future__ import annotations

from dataclasses import dataclass

from nacl.pwhash import argon2id as _argon2id

ARGON2_SALT_SIZE = _argon2id.SALTBYTES  # 16
ARGON2_OUTPUT_SIZE = 32
ARGON2_OPSLIMIT_MIN: int = _argon2id.OPSLIMIT_MIN
ARGON2_MEMLIMIT_MIN: int = _argon2id.MEMLIMIT_MIN  # 8 KiB, libsodium's floor


@dataclass(frozen=True)
class Argon2Params:
    """One Argon2id cost setting: passes (`opslimit`) over `memlimit` bytes, one lane (libsodium)."""

    name: str
    opslimit: int
    memlimit: int

    def __post_init__(self) -> None:
        if self.opslimit < ARGON2_OPSLIMIT_MIN:
            raise ValueError(f"opslimit below libsodium's minimum of {ARGON2_OPSLIMIT_MIN}")
        if self.memlimit < ARGON2_MEMLIMIT_MIN:
            raise ValueError(f"memlimit below libsodium's minimum of {ARGON2_MEMLIMIT_MIN} bytes")


def argon2id(password: bytes, *, salt: bytes, params: Argon2Params) -> bytes:
    """Derive 32 bytes from `password` and a 16-byte `salt` at the cost `params` names."""
    if len(salt) != ARGON2_SALT_SIZE:
        raise ValueError(f"Argon2id salt must be {ARGON2_SALT_SIZE} bytes")
    output: bytes = _argon2id.kdf(
        ARGON2_OUTPUT_SIZE, password, salt, opslimit=params.opslimit, memlimit=params.memlimit
    )
    return output
