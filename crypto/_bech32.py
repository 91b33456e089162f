"""Bech32 (BIP 173) as age uses it for `age1...` recipients and `AGE-SECRET-KEY-1...` identities.

age uses the original Bech32 checksum (not Bech32m) and lifts BIP 173's 90-character limit, since a
recipient with a long HRP would not fit. Mixed case is rejected, as BIP 173 requires.
"""

from __future__ import annotations

from ._errors import KeyFormatError

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            checksum ^= _GENERATOR[i] if (top >> i) & 1 else 0
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int]:
    accumulator = 0
    bits = 0
    out: list[int] = []
    max_value = (1 << to_bits) - 1
    for value in data:
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((accumulator >> bits) & max_value)
    if pad:
        if bits:
            out.append((accumulator << (to_bits - bits)) & max_value)
    elif bits >= from_bits or (accumulator << (to_bits - bits)) & max_value:
        raise KeyFormatError("bech32: non-zero padding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    """Encode `data` under the lower-case human-readable part `hrp`; the result is lower case."""
    hrp = hrp.lower()
    values = _convert_bits(data, 8, 5, pad=True)
    polymod = _polymod(_hrp_expand(hrp) + values + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Return (lower-case hrp, data). Raises KeyFormatError on any defect."""
    if text.lower() != text and text.upper() != text:
        raise KeyFormatError("bech32: mixed case")
    if any(not 33 <= ord(c) <= 126 for c in text):
        raise KeyFormatError("bech32: invalid character")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1 or separator + 7 > len(text):
        raise KeyFormatError("bech32: bad separator position")
    hrp = text[:separator]
    try:
        values = [_CHARSET.index(c) for c in text[separator + 1 :]]
    except ValueError:
        raise KeyFormatError("bech32: invalid character") from None
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise KeyFormatError("bech32: bad checksum")
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, pad=False))
