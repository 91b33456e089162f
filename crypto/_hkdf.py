"""HKDF-SHA-256 (RFC 5869) from the standard library, for the age labels."""

from __future__ import annotations

import hashlib
import hmac


def hkdf_sha256(*, ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    output = b""
    block = b""
    counter = 1
    while len(output) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        output += block
        counter += 1
    return output[:length]
