"""The public C2SP age conformance vectors (tests/crypto/vectors/age-cctv, copied from shared/).

Every vector whose identities are X25519 runs and must end in the expected class; vectors that need a
feature Lykta does not implement (armor, scrypt passphrases, ML-KEM hybrid keys) are skipped by rule, and
the session summary prints both counts.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import crypto
from crypto._header import read_header
from crypto._stream import StreamDecryptor, StreamEncryptor, payload_key

VECTORS = Path(__file__).parent / "vectors" / "age-cctv"
NOT_VECTORS = {"README.md", "SOURCE.md", "LICENSE-generator"}

EXPECTED_ERROR: dict[str, type[Exception] | None] = {
    "success": None,
    "header failure": crypto.MalformedHeaderError,
    "no match": crypto.NoIdentityMatchError,
    "HMAC failure": crypto.HeaderMACError,
    "payload failure": crypto.PayloadError,
}


@dataclass
class Vector:
    name: str
    expect: str
    payload_sha256: str | None
    identities: list[str] = field(default_factory=list)
    passphrases: list[str] = field(default_factory=list)
    armored: bool = False
    file_key: bytes | None = None
    body: bytes = b""

    def skip_reason(self) -> str | None:
        """The rule that puts this vector out of Lykta's scope, or None if it must run."""
        if self.armored:
            return "armor is not implemented"
        if any(i.startswith("AGE-SECRET-KEY-PQ-") for i in self.identities):
            return "ML-KEM hybrid recipients are not implemented"
        if self.passphrases and not self.identities:
            return "scrypt passphrases are not implemented"
        return None


def load(path: Path) -> Vector:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    vector = Vector(name=path.name, expect="", payload_sha256=None)
    compressed = False
    for line in head.decode().splitlines():
        key, _, value = line.partition(": ")
        if key == "expect":
            vector.expect = value
        elif key == "payload":
            vector.payload_sha256 = value
        elif key == "identity":
            vector.identities.append(value)
        elif key == "passphrase":
            vector.passphrases.append(value)
        elif key == "armored":
            vector.armored = value == "yes"
        elif key == "compressed":
            compressed = value == "zlib"
        elif key == "file key":
            vector.file_key = bytes.fromhex(value)
    vector.body = zlib.decompress(body) if compressed else body
    return vector


ALL_VECTORS = sorted((load(p) for p in VECTORS.iterdir() if p.name not in NOT_VECTORS), key=lambda v: v.name)
RUNNABLE = [v for v in ALL_VECTORS if v.skip_reason() is None]
SKIPPED = [v for v in ALL_VECTORS if v.skip_reason() is not None]


def test_vector_set_is_complete() -> None:
    # A copy that lost files would quietly test less; these counts are those of the 2026-06-05 snapshot.
    assert len(ALL_VECTORS) == 143
    assert len(RUNNABLE) == 68
    assert {v.skip_reason() for v in SKIPPED} == {
        "armor is not implemented",
        "ML-KEM hybrid recipients are not implemented",
        "scrypt passphrases are not implemented",
    }


@pytest.mark.parametrize("vector", RUNNABLE, ids=lambda v: v.name)
def test_vector_outcome(vector: Vector) -> None:
    identities = [crypto.X25519Identity.parse(i) for i in vector.identities]
    released = io.BytesIO()
    expected = EXPECTED_ERROR[vector.expect]
    if expected is None:
        crypto.decrypt_stream(io.BytesIO(vector.body), released, identities)
    else:
        with pytest.raises(crypto.DecryptError) as caught:
            crypto.decrypt_stream(io.BytesIO(vector.body), released, identities)
        # The exact class, not a parent: a parse error must not hide behind a later-stage error.
        assert type(caught.value) is expected
    if vector.payload_sha256 is not None:
        # Whatever plaintext was released before a failure must be exactly the authentic prefix.
        assert hashlib.sha256(released.getvalue()).hexdigest() == vector.payload_sha256


@pytest.mark.parametrize(
    "vector", [v for v in RUNNABLE if v.expect != "header failure"], ids=lambda v: v.name
)
def test_header_round_trip(vector: Vector) -> None:
    source = io.BytesIO(vector.body)
    header = read_header(source)
    assert header.encode() == vector.body[: source.tell()]


@pytest.mark.parametrize("vector", [v for v in RUNNABLE if v.expect == "success"], ids=lambda v: v.name)
def test_stream_round_trip(vector: Vector) -> None:
    # Re-encrypting the decrypted payload with the same file key and nonce must give the same bytes.
    assert vector.file_key is not None
    source = io.BytesIO(vector.body)
    read_header(source)
    nonce = source.read(16)
    payload = source.read()
    key = payload_key(vector.file_key, nonce=nonce)
    decryptor = StreamDecryptor(key)
    plaintext = decryptor.update(payload) + decryptor.finalize()
    encryptor = StreamEncryptor(key)
    assert encryptor.update(plaintext) + encryptor.finalize() == payload
