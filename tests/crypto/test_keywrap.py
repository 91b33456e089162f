"""Personal-key wrap (FORMAT.md section 3): round trip, tamper, bounds checked before Argon2."""

from __future__ import annotations

import struct
import unicodedata
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.pwhash import argon2id as nacl_argon2id
from nacl.secret import SecretBox

import crypto._keywrap as keywrap_module
from crypto._errors import UnwrapError
from crypto._kdf import Argon2Params
from crypto._keywrap import (
    KEYWRAP_PARAMS_V1,
    WRAP_MAGIC,
    WRAPPED_BLOB_SIZE,
    unwrap_secret,
    wrap_secret,
)

SECRET = bytes(range(100, 132))
PASSPHRASE = "korrekt häst batteri häftklammer"

# FORMAT.md section 3, read independently of the module: offsets of each field.
MAGIC_END = 16
PARAMS_ID_AT = 16
OPSLIMIT_AT = 17
MEMLIMIT_KIB_AT = 21
SALT_AT = 25
NONCE_AT = 41
BOX_AT = 65
BLOB_SIZE = 113


class ArgonCalledError(Exception):
    pass


@pytest.fixture
def fast_blob(fast_argon2: Argon2Params) -> bytes:
    return wrap_secret(SECRET, PASSPHRASE, params=fast_argon2)


@pytest.fixture
def argon2_forbidden(monkeypatch: pytest.MonkeyPatch, fast_blob: bytes) -> Iterator[None]:
    """Make any Argon2id run fail loudly, wherever the module would reach it from.

    Depends on `fast_blob`, so that the blob the test tampers with is wrapped before the patch bites.
    """

    def forbidden(*args: object, **kwargs: object) -> bytes:
        raise ArgonCalledError

    monkeypatch.setattr(keywrap_module, "argon2id", forbidden)
    monkeypatch.setattr(nacl_argon2id, "kdf", forbidden)
    yield


def with_header(blob: bytes, *, params_id: int, opslimit: int, memlimit_kib: int) -> bytes:
    return blob[:PARAMS_ID_AT] + struct.pack(">BII", params_id, opslimit, memlimit_kib) + blob[SALT_AT:]


def test_round_trip(fast_argon2: Argon2Params) -> None:
    blob = wrap_secret(SECRET, PASSPHRASE, params=fast_argon2)
    assert unwrap_secret(blob, PASSPHRASE) == SECRET
    assert SECRET not in blob


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=st.binary(min_size=32, max_size=32), passphrase=st.text(max_size=40))
def test_round_trip_any_secret_and_passphrase(
    secret: bytes, passphrase: str, fast_argon2: Argon2Params
) -> None:
    blob = wrap_secret(secret, passphrase, params=fast_argon2)
    assert len(blob) == BLOB_SIZE
    assert unwrap_secret(blob, passphrase) == secret


def test_blob_layout_opens_by_format_md(fast_argon2: Argon2Params) -> None:
    # Decrypt by hand from the documented offsets, so the layout cannot drift from the spec unnoticed.
    blob = wrap_secret(SECRET, PASSPHRASE, params=fast_argon2)
    key = nacl_argon2id.kdf(
        32,
        PASSPHRASE.encode("utf-8"),
        blob[SALT_AT:NONCE_AT],
        opslimit=fast_argon2.opslimit,
        memlimit=fast_argon2.memlimit,
    )
    assert SecretBox(key).decrypt(blob[BOX_AT:], blob[NONCE_AT:BOX_AT]) == SECRET


def stored_fields(blob: bytes) -> tuple[int, int, int]:
    """(params id, opslimit, memlimit in KiB), read at the offsets FORMAT.md section 3 gives."""
    return (
        blob[PARAMS_ID_AT],
        int.from_bytes(blob[OPSLIMIT_AT:MEMLIMIT_KIB_AT], "big"),
        int.from_bytes(blob[MEMLIMIT_KIB_AT:SALT_AT], "big"),
    )


def test_blob_stores_its_params(fast_argon2: Argon2Params) -> None:
    blob = wrap_secret(SECRET, PASSPHRASE, params=fast_argon2)
    assert blob[:MAGIC_END] == WRAP_MAGIC == b"lykta-keywrap/v1"
    assert stored_fields(blob) == (0, fast_argon2.opslimit, fast_argon2.memlimit // 1024)  # 0: custom

    other = Argon2Params("other", opslimit=2, memlimit=16 * 1024)
    blob = wrap_secret(SECRET, PASSPHRASE, params=other)
    assert stored_fields(blob) == (0, 2, 16)
    assert unwrap_secret(blob, PASSPHRASE) == SECRET


def test_v1_params_match_format_md_and_write_params_id_1() -> None:
    assert (KEYWRAP_PARAMS_V1.name, KEYWRAP_PARAMS_V1.opslimit, KEYWRAP_PARAMS_V1.memlimit) == (
        "keywrap-v1",
        3,
        256 * 1024 * 1024,
    )
    assert WRAPPED_BLOB_SIZE == BLOB_SIZE
    blob = wrap_secret(SECRET, PASSPHRASE)
    assert len(blob) == BLOB_SIZE
    assert stored_fields(blob) == (1, 3, 256 * 1024)
    assert unwrap_secret(blob, PASSPHRASE) == SECRET


def test_each_wrap_uses_a_fresh_salt_and_nonce(fast_argon2: Argon2Params) -> None:
    first = wrap_secret(SECRET, PASSPHRASE, params=fast_argon2)
    second = wrap_secret(SECRET, PASSPHRASE, params=fast_argon2)
    assert first[SALT_AT:NONCE_AT] != second[SALT_AT:NONCE_AT]
    assert first[NONCE_AT:BOX_AT] != second[NONCE_AT:BOX_AT]
    assert first[BOX_AT:] != second[BOX_AT:]


@pytest.mark.parametrize(
    "wrong", ["", "korrekt häst batteri häftklammer ", "Korrekt häst batteri häftklammer"]
)
def test_wrong_passphrase_is_an_unwrap_error(wrong: str, fast_argon2: Argon2Params) -> None:
    blob = wrap_secret(SECRET, PASSPHRASE, params=fast_argon2)
    with pytest.raises(UnwrapError) as raised:
        unwrap_secret(blob, wrong)
    assert str(raised.value) == "could not unwrap"


def test_passphrase_is_nfc_normalised(fast_argon2: Argon2Params) -> None:
    composed = unicodedata.normalize("NFC", "Åsa köper café")
    decomposed = unicodedata.normalize("NFD", "Åsa köper café")
    assert composed != decomposed
    assert unwrap_secret(wrap_secret(SECRET, composed, params=fast_argon2), decomposed) == SECRET
    assert unwrap_secret(wrap_secret(SECRET, decomposed, params=fast_argon2), composed) == SECRET
    with pytest.raises(UnwrapError):
        unwrap_secret(wrap_secret(SECRET, composed, params=fast_argon2), "Asa koper cafe")


def test_lone_surrogate_passphrase_is_an_unwrap_error(fast_argon2: Argon2Params) -> None:
    blob = wrap_secret(SECRET, PASSPHRASE, params=fast_argon2)
    with pytest.raises(UnwrapError):
        unwrap_secret(blob, "\ud800")


def test_every_single_bit_flip_is_an_unwrap_error(fast_argon2: Argon2Params) -> None:
    blob = wrap_secret(SECRET, PASSPHRASE, params=fast_argon2)
    for bit in range(len(blob) * 8):
        tampered = bytearray(blob)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(UnwrapError):
            unwrap_secret(bytes(tampered), PASSPHRASE)


def test_truncated_or_extended_blob_is_an_unwrap_error(fast_argon2: Argon2Params) -> None:
    blob = wrap_secret(SECRET, PASSPHRASE, params=fast_argon2)
    for length in range(len(blob)):
        with pytest.raises(UnwrapError):
            unwrap_secret(blob[:length], PASSPHRASE)
    for extra in (b"\x00", b"\x00" * 16, blob):
        with pytest.raises(UnwrapError):
            unwrap_secret(blob + extra, PASSPHRASE)


def test_forbidding_argon2_does_stop_an_unwrap(fast_blob: bytes, argon2_forbidden: None) -> None:
    # The guard for the tests below: a blob that passes every cheap check does reach Argon2.
    with pytest.raises(ArgonCalledError):
        unwrap_secret(fast_blob, PASSPHRASE)
    # The bounds are inclusive: the extreme accepted limits get as far as Argon2, too.
    for opslimit, memlimit_kib in [(10, 8), (1, 1024 * 1024), (10, 1024 * 1024)]:
        with pytest.raises(ArgonCalledError):
            unwrap_secret(
                with_header(fast_blob, params_id=0, opslimit=opslimit, memlimit_kib=memlimit_kib), ""
            )


@pytest.mark.parametrize(
    ("params_id", "opslimit", "memlimit_kib"),
    [
        (0, 1, 4 * 1024 * 1024),  # 4 GiB
        (0, 1, 0xFFFFFFFF),  # 4 TiB
        (0, 1, 1024 * 1024 + 1),  # one KiB over 1 GiB
        (0, 1, 7),  # below libsodium's 8 KiB
        (0, 1, 0),
        (0, 1000, 8),
        (0, 11, 8),
        (0, 0, 8),
        (0, 0xFFFFFFFF, 0xFFFFFFFF),
        (1, 1, 8),  # id 1 names KEYWRAP_PARAMS_V1 but the limits are others
        (0, 3, 256 * 1024),  # custom id with exactly the V1 limits: two spellings of one header
        (2, 1, 8),  # no such pinned set
        (255, 3, 256 * 1024),
    ],
)
def test_bad_header_is_rejected_before_argon2(
    params_id: int, opslimit: int, memlimit_kib: int, fast_blob: bytes, argon2_forbidden: None
) -> None:
    tampered = with_header(fast_blob, params_id=params_id, opslimit=opslimit, memlimit_kib=memlimit_kib)
    with pytest.raises(UnwrapError):
        unwrap_secret(tampered, PASSPHRASE)


def test_bad_magic_or_length_is_rejected_before_argon2(fast_blob: bytes, argon2_forbidden: None) -> None:
    for magic in (b"lykta-keywrap/v2", b"LYKTA-KEYWRAP/V1", bytes(16)):
        with pytest.raises(UnwrapError):
            unwrap_secret(magic + fast_blob[MAGIC_END:], PASSPHRASE)
    for wrong_length in (fast_blob[:-1], fast_blob + b"\x00", b""):
        with pytest.raises(UnwrapError):
            unwrap_secret(wrong_length, PASSPHRASE)


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_wrap_refuses_a_secret_that_is_not_32_bytes(size: int, fast_argon2: Argon2Params) -> None:
    with pytest.raises(ValueError):
        wrap_secret(bytes(size), PASSPHRASE, params=fast_argon2)


@pytest.mark.parametrize(
    ("opslimit", "memlimit"),
    [(11, 8 * 1024), (1, 2 * 1024 * 1024 * 1024), (1, 8 * 1024 + 1)],
)
def test_wrap_refuses_limits_unwrap_would_reject(opslimit: int, memlimit: int) -> None:
    with pytest.raises(ValueError):
        wrap_secret(SECRET, PASSPHRASE, params=Argon2Params("too-much", opslimit=opslimit, memlimit=memlimit))
