"""Envelopes: whole age v1 files from header, recipients and STREAM (FORMAT.md 1).

Bytes in, bytes out for small plaintexts (`encrypt`, `decrypt`); push-based `Encryptor` and
`decrypt_chunks` for large ones in constant memory; `add_recipients` to share an envelope with more keys
by rewriting its header only.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from ._errors import HeaderMACError, MalformedHeaderError, NoIdentityMatchError
from ._header import Header, read_header
from ._hkdf import hkdf_sha256
from ._stream import (
    CHUNK_SIZE,
    ENCRYPTED_CHUNK_SIZE,
    NONCE_SIZE,
    StreamDecryptor,
    StreamEncryptor,
    payload_key,
)
from ._x25519 import FILE_KEY_SIZE, X25519Identity, X25519Recipient

HEADER_MAC_LABEL = b"header"
SCRYPT_STANZA_TYPE = "scrypt"


def _header_mac(file_key: bytes, header: Header) -> bytes:
    mac_key = hkdf_sha256(ikm=file_key, salt=b"", info=HEADER_MAC_LABEL)
    return hmac.new(mac_key, header.mac_input(), hashlib.sha256).digest()


def _build_header(
    file_key: bytes, recipients: Sequence[X25519Recipient], *, keep: Header | None = None
) -> bytes:
    if not recipients and keep is None:
        raise ValueError("an envelope needs at least one recipient")
    stanzas = (keep.stanzas if keep else ()) + tuple(r.wrap(file_key) for r in recipients)
    unsigned = Header(stanzas)
    return Header(stanzas, _header_mac(file_key, unsigned)).encode()


def unwrap_file_key(header: Header, identities: Sequence[X25519Identity]) -> bytes:
    """The file key of `header`, with its MAC checked. Raises a DecryptError subclass by stage."""
    if any(s.type == SCRYPT_STANZA_TYPE for s in header.stanzas) and len(header.stanzas) != 1:
        raise MalformedHeaderError()  # age spec: an scrypt stanza must be alone
    for identity in identities:
        file_key = identity.unwrap(header.stanzas)
        if file_key is not None:
            break
    else:
        raise NoIdentityMatchError()
    if header.mac is None or not hmac.compare_digest(_header_mac(file_key, header), header.mac):
        raise HeaderMACError()
    return file_key


class Encryptor:
    """Encrypt a payload pushed in pieces: `start()`, then `update()` as data comes, then `finalize()`.

    The concatenation of what the three return is one age file.
    """

    def __init__(self, recipients: Sequence[X25519Recipient]) -> None:
        file_key = os.urandom(FILE_KEY_SIZE)
        self._header = _build_header(file_key, recipients)
        self._nonce = os.urandom(NONCE_SIZE)
        self._stream = StreamEncryptor(payload_key(file_key, nonce=self._nonce))

    def start(self) -> bytes:
        """The header and payload nonce, to be written first."""
        return self._header + self._nonce

    def update(self, data: bytes) -> bytes:
        return self._stream.update(data)

    def finalize(self) -> bytes:
        return self._stream.finalize()


def encrypt(plaintext: bytes, recipients: Sequence[X25519Recipient]) -> bytes:
    encryptor = Encryptor(recipients)
    return encryptor.start() + encryptor.update(plaintext) + encryptor.finalize()


def encrypt_stream(source: BinaryIO, sink: BinaryIO, recipients: Sequence[X25519Recipient]) -> None:
    encryptor = Encryptor(recipients)
    sink.write(encryptor.start())
    while data := source.read(CHUNK_SIZE):
        sink.write(encryptor.update(data))
    sink.write(encryptor.finalize())


def _read_nonce(source: BinaryIO) -> bytes:
    nonce = source.read(NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise MalformedHeaderError()
    return nonce


def decrypt_chunks(source: BinaryIO, identities: Sequence[X25519Identity]) -> Iterator[bytes]:
    """Yield the plaintext of an age file read from `source`, chunk by verified chunk.

    A PayloadError may come after some chunks were yielded: those were authentic, but the whole is not
    until the iterator ends without error. Callers that must not act on a partial plaintext collect first.
    """
    header = read_header(source)
    file_key = unwrap_file_key(header, identities)
    decryptor = StreamDecryptor(payload_key(file_key, nonce=_read_nonce(source)))
    while data := source.read(ENCRYPTED_CHUNK_SIZE):
        if plaintext := decryptor.update(data):
            yield plaintext
    yield decryptor.finalize()


def decrypt(envelope: bytes, identities: Sequence[X25519Identity]) -> bytes:
    return b"".join(decrypt_chunks(io.BytesIO(envelope), identities))


def decrypt_stream(source: BinaryIO, sink: BinaryIO, identities: Sequence[X25519Identity]) -> None:
    for plaintext in decrypt_chunks(source, identities):
        sink.write(plaintext)


def add_recipients(
    envelope: bytes,
    *,
    identities: Sequence[X25519Identity],
    recipients: Sequence[X25519Recipient],
) -> bytes:
    """Return `envelope` with stanzas for `recipients` added; the bytes after the header are kept as is.

    `envelope` may be a whole age file or its header alone (as stored apart from the payload chunks).
    """
    source = io.BytesIO(envelope)
    header = read_header(source)
    file_key = unwrap_file_key(header, identities)
    return _build_header(file_key, recipients, keep=header) + envelope[source.tell() :]


def split_header(envelope: bytes) -> tuple[bytes, bytes]:
    """Split an age file into (header, nonce and payload) without any key."""
    source = io.BytesIO(envelope)
    read_header(source)
    return envelope[: source.tell()], envelope[source.tell() :]
