"""Canonical unpadded base64, as the age header requires (age spec, "Encoding")."""

from __future__ import annotations

import base64
import binascii

_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def b64encode_raw(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def b64decode_raw(text: bytes) -> bytes:
    """Decode unpadded base64; ValueError on padding, stray characters or non-canonical bits."""
    if not _ALPHABET.issuperset(text) or len(text) % 4 == 1:
        raise ValueError("not canonical unpadded base64")
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise ValueError("not canonical unpadded base64") from None
    # Non-zero unused bits in the last character decode fine but re-encode differently.
    if b64encode_raw(data) != text:
        raise ValueError("not canonical unpadded base64")
    return data
