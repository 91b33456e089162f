"""The age STREAM payload (FORMAT.md 1.3). This module never sees a header.

Both directions are push-based (`update` then `finalize`), so the same code serves a file read from disk,
a multipart upload arriving in pieces, and chunks read back from database rows. Each holds at most one
chunk plus what the caller just pushed, whatever the total size.
"""

from __future__ import annotations

import contextlib

from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError as _NaclCryptoError

from ._errors import PayloadError
from ._hkdf import hkdf_sha256

PAYLOAD_LABEL = b"payload"
NONCE_SIZE = 16
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
_MAX_COUNTER = 1 << 88


def payload_key(file_key: bytes, *, nonce: bytes) -> bytes:
    return hkdf_sha256(ikm=file_key, salt=nonce, info=PAYLOAD_LABEL)


def _chunk_nonce(counter: int, *, last: bool) -> bytes:
    if counter >= _MAX_COUNTER:
        raise PayloadError()
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class StreamEncryptor:
    """Encrypts a payload pushed in pieces of any size into 64 KiB STREAM chunks."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        # Plaintext not sealed yet: 0 to CHUNK_SIZE bytes, the last chunk unless more data comes. Kept as
        # `bytes` slices of what the caller pushed, not in a bytearray: a bytearray that is appended to
        # after a delete from its front is reallocated and copied on every chunk, and at two chunks
        # (128 KiB) that churn crosses glibc's mmap/trim threshold and costs page faults on every chunk.
        self._pending = b""
        self._counter = 0
        self._finished = False

    def _seal(self, chunk: bytes, *, last: bool) -> bytes:
        nonce = _chunk_nonce(self._counter, last=last)
        self._counter += 1
        return crypto_aead_chacha20poly1305_ietf_encrypt(chunk, None, nonce, self._key)

    def update(self, data: bytes) -> bytes:
        if self._finished:
            raise ValueError("stream already finalized")
        data = bytes(data)  # the same object, no copy, when it is bytes already
        if not data:
            return b""
        out = []
        if self._pending:
            if len(self._pending) < CHUNK_SIZE:
                need = CHUNK_SIZE - len(self._pending)
                self._pending += data[:need]
                data = data[need:]
                if not data:
                    return b""
            out.append(self._seal(self._pending, last=False))  # more data came: not the last chunk
            self._pending = b""
        # Seal every whole chunk of `data` but the one that ends it, which may be the last.
        held = (len(data) - 1) // CHUNK_SIZE * CHUNK_SIZE
        for start in range(0, held, CHUNK_SIZE):
            out.append(self._seal(data[start : start + CHUNK_SIZE], last=False))
        self._pending = data[held:]  # `data` itself, uncopied, when one chunk was pushed
        return b"".join(out)

    def finalize(self) -> bytes:
        if self._finished:
            raise ValueError("stream already finalized")
        self._finished = True
        last = self._seal(self._pending, last=True)
        self._pending = b""
        return last


class StreamDecryptor:
    """Decrypts STREAM chunks pushed in pieces; releases a chunk's plaintext only after its tag verified.

    Chunk boundaries are found as the reference implementation finds them, so that the plaintext released
    before an error is the same (the conformance vectors check it): a full-size chunk is tried as a middle
    chunk and then as the last one; a shorter chunk can only be the last; nothing may follow the last.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._pending = b""  # less than one encrypted chunk, waiting for the rest
        self._counter = 0
        self._seen_last = False
        self._finished = False

    def _open(self, chunk: bytes, *, last: bool) -> bytes:
        nonce = _chunk_nonce(self._counter, last=last)
        plaintext: bytes = crypto_aead_chacha20poly1305_ietf_decrypt(chunk, None, nonce, self._key)
        return plaintext

    def _open_chunk(self, chunk: bytes, *, full: bool) -> bytes:
        if self._seen_last:
            raise PayloadError()  # data after the last chunk
        if not full and len(chunk) == TAG_SIZE and self._counter > 0:
            raise PayloadError()  # an empty last chunk is allowed only for an empty payload
        plaintext = None
        if full:
            with contextlib.suppress(_NaclCryptoError):
                plaintext = self._open(chunk, last=False)
        if plaintext is None:
            try:
                plaintext = self._open(chunk, last=True)
            except _NaclCryptoError:
                raise PayloadError() from None
            self._seen_last = True
        self._counter += 1
        return plaintext

    def update(self, data: bytes) -> bytes:
        if self._finished:
            raise PayloadError()
        if self._seen_last and data:
            raise PayloadError()
        data = bytes(data)
        out = []
        if self._pending:
            need = ENCRYPTED_CHUNK_SIZE - len(self._pending)
            self._pending += data[:need]
            data = data[need:]
            if len(self._pending) < ENCRYPTED_CHUNK_SIZE:
                return b""
            out.append(self._open_chunk(self._pending, full=True))
            self._pending = b""
        start = 0
        while len(data) - start >= ENCRYPTED_CHUNK_SIZE:
            out.append(self._open_chunk(data[start : start + ENCRYPTED_CHUNK_SIZE], full=True))
            start += ENCRYPTED_CHUNK_SIZE
        self._pending = data[start:]
        return b"".join(out)

    def finalize(self) -> bytes:
        """Open what is left; raises PayloadError if the stream was cut short or the last chunk is wrong."""
        if self._finished:
            raise PayloadError()
        self._finished = True
        if not self._pending:
            if not self._seen_last:
                raise PayloadError()  # ended without a last chunk
            return b""
        if len(self._pending) < TAG_SIZE:
            raise PayloadError()
        plaintext = self._open_chunk(self._pending, full=False)
        self._pending = b""
        return plaintext
