"""X25519 recipients and identities (FORMAT.md 1.2), with age's text encodings.

Key types follow PyNaCl's manner: fixed SIZE checked in `__init__`, constant-time equality, and an
identity whose `repr` does not show the secret. The secret's text form is only produced on request
(`to_text`), for key files.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Sequence

from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
    crypto_scalarmult,
    crypto_scalarmult_base,
)
from nacl.exceptions import CryptoError as _NaclCryptoError
from nacl.exceptions import RuntimeError as _NaclRuntimeError

from ._b64 import b64decode_raw, b64encode_raw
from ._bech32 import bech32_decode, bech32_encode
from ._errors import KeyFormatError, MalformedHeaderError
from ._header import Stanza
from ._hkdf import hkdf_sha256

X25519_LABEL = b"age-encryption.org/v1/X25519"
X25519_STANZA_TYPE = "X25519"
RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"
FILE_KEY_SIZE = 16
_ZERO_NONCE = bytes(12)


def _scalarmult(scalar: bytes, point: bytes) -> bytes:
    try:
        shared: bytes = crypto_scalarmult(scalar, point)
    except _NaclRuntimeError:
        shared = bytes(32)  # libsodium refuses an all-zero result; treat it as the zero secret it is
    return shared


class X25519Recipient:
    """A public key: what a tip is encrypted to. Text form `age1...`."""

    SIZE = 32

    def __init__(self, public_key: bytes) -> None:
        if len(public_key) != self.SIZE:
            raise KeyFormatError("X25519 public key must be 32 bytes")
        self._public_key = bytes(public_key)

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        try:
            hrp, data = bech32_decode(text.strip())
        except KeyFormatError as error:
            raise KeyFormatError(f"not an age X25519 recipient ({error})") from None
        if hrp != RECIPIENT_HRP or text.strip() != text.strip().lower():
            raise KeyFormatError("not an age X25519 recipient")
        return cls(data)

    def __bytes__(self) -> bytes:
        return self._public_key

    def __str__(self) -> str:
        return bech32_encode(RECIPIENT_HRP, self._public_key)

    def __repr__(self) -> str:
        return f"X25519Recipient({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, X25519Recipient):
            return NotImplemented
        return hmac.compare_digest(self._public_key, other._public_key)

    def __hash__(self) -> int:
        return hash(self._public_key)

    def wrap(self, file_key: bytes) -> Stanza:
        ephemeral = os.urandom(32)
        share: bytes = crypto_scalarmult_base(ephemeral)
        shared = _scalarmult(ephemeral, self._public_key)
        if not any(shared):
            raise KeyFormatError("X25519 recipient is a low-order point")
        wrap_key = hkdf_sha256(ikm=shared, salt=share + self._public_key, info=X25519_LABEL)
        body: bytes = crypto_aead_chacha20poly1305_ietf_encrypt(file_key, None, _ZERO_NONCE, wrap_key)
        return Stanza((X25519_STANZA_TYPE, b64encode_raw(share).decode("ascii")), body)


class X25519Identity:
    """A private key: opens envelopes encrypted to its recipient. Text form `AGE-SECRET-KEY-1...`."""

    SIZE = 32

    def __init__(self, secret: bytes) -> None:
        if len(secret) != self.SIZE:
            raise KeyFormatError("X25519 secret key must be 32 bytes")
        self._secret = bytes(secret)
        self._recipient = X25519Recipient(crypto_scalarmult_base(self._secret))

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(os.urandom(cls.SIZE))

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        try:
            hrp, data = bech32_decode(text.strip())
        except KeyFormatError as error:
            raise KeyFormatError(f"not an age X25519 identity ({error})") from None
        if hrp != IDENTITY_HRP or text.strip() != text.strip().upper():
            raise KeyFormatError("not an age X25519 identity")
        return cls(data)

    @property
    def recipient(self) -> X25519Recipient:
        return self._recipient

    def secret_bytes(self) -> bytes:
        return self._secret

    def to_text(self) -> str:
        return bech32_encode(IDENTITY_HRP, self._secret).upper()

    def __repr__(self) -> str:
        return f"X25519Identity(recipient={str(self._recipient)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, X25519Identity):
            return NotImplemented
        return hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(bytes(self._recipient))

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """The file key from the first stanza that opens, or None. Malformed X25519 stanzas raise."""
        for stanza in stanzas:
            if stanza.type != X25519_STANZA_TYPE:
                continue
            if len(stanza.args) != 2 or len(stanza.body) != FILE_KEY_SIZE + 16:
                raise MalformedHeaderError()
            try:
                share = b64decode_raw(stanza.args[1].encode("ascii"))
            except ValueError:
                raise MalformedHeaderError() from None
            if len(share) != 32:
                raise MalformedHeaderError()
            shared = _scalarmult(self._secret, share)
            if not any(shared):
                raise MalformedHeaderError()
            wrap_key = hkdf_sha256(ikm=shared, salt=share + bytes(self._recipient), info=X25519_LABEL)
            try:
                file_key: bytes = crypto_aead_chacha20poly1305_ietf_decrypt(
                    stanza.body, None, _ZERO_NONCE, wrap_key
                )
            except _NaclCryptoError:
                continue  # not for this identity
            return file_key
        return None


def _key_lines(text: str) -> Iterable[str]:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def parse_identities(text: str) -> list[X25519Identity]:
    """Parse an identity file in age's format: one key a line, `#` comments and blank lines ignored."""
    identities = [X25519Identity.parse(line) for line in _key_lines(text)]
    if not identities:
        raise KeyFormatError("no identity found")
    return identities


def parse_recipients(text: str) -> list[X25519Recipient]:
    """Parse a recipients file in age's format."""
    recipients = [X25519Recipient.parse(line) for line in _key_lines(text)]
    if not recipients:
        raise KeyFormatError("no recipient found")
    return recipients
