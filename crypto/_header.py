"""The age v1 header: parse and serialise (FORMAT.md 1.1). This module never sees a key.

The parser is strict on purpose: age's MUSTs (canonical base64, 64-column body lines, LF only, the exact
MAC line) are what keep two implementations from reading one file differently.
"""

from __future__ import annotations

import dataclasses
from typing import BinaryIO

from ._b64 import b64decode_raw, b64encode_raw
from ._errors import MalformedHeaderError

VERSION_LINE = b"age-encryption.org/v1\n"
STANZA_PREFIX = b"-> "
MAC_PREFIX = b"---"
MAC_SIZE = 32
BODY_COLUMNS = 64
MAX_HEADER_SIZE = 1 << 20
_MAC_LINE_SIZE = len(MAC_PREFIX) + 1 + 43 + 1  # "--- " + b64 of 32 bytes + LF


@dataclasses.dataclass(frozen=True)
class Stanza:
    """One recipient stanza: its arguments (the first is the type) and its body."""

    args: tuple[str, ...]
    body: bytes

    @property
    def type(self) -> str:
        return self.args[0]

    def encode(self) -> bytes:
        lines = [STANZA_PREFIX + " ".join(self.args).encode("ascii") + b"\n"]
        encoded = b64encode_raw(self.body)
        # Every line but the last is full; the last is short, so a body that fills whole lines
        # (including the empty body) ends with an empty line.
        for start in range(0, len(encoded) + 1, BODY_COLUMNS):
            lines.append(encoded[start : start + BODY_COLUMNS] + b"\n")
        return b"".join(lines)


@dataclasses.dataclass(frozen=True)
class Header:
    """A parsed header. `mac` is None only while a header is being built."""

    stanzas: tuple[Stanza, ...]
    mac: bytes | None = None

    def mac_input(self) -> bytes:
        """The bytes the header MAC covers: everything up to and including "---"."""
        return VERSION_LINE + b"".join(s.encode() for s in self.stanzas) + MAC_PREFIX

    def encode(self) -> bytes:
        if self.mac is None:
            raise ValueError("header has no MAC yet")
        return self.mac_input() + b" " + b64encode_raw(self.mac) + b"\n"


def _is_argument(arg: bytes) -> bool:
    return bool(arg) and all(0x21 <= c <= 0x7E for c in arg)


class _LineReader:
    """Reads LF-terminated lines and refuses to buffer more than MAX_HEADER_SIZE in total."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.consumed = 0

    def line(self) -> bytes:
        line = self._source.readline(MAX_HEADER_SIZE - self.consumed + 1)
        self.consumed += len(line)
        if not line.endswith(b"\n") or self.consumed > MAX_HEADER_SIZE or b"\r" in line:
            raise MalformedHeaderError()
        return line


def _read_body(lines: _LineReader) -> bytes:
    encoded = bytearray()
    while True:
        line = lines.line()[:-1]
        if len(line) > BODY_COLUMNS:
            raise MalformedHeaderError()
        encoded += line
        if len(line) < BODY_COLUMNS:
            break
    try:
        return b64decode_raw(bytes(encoded))
    except ValueError:
        raise MalformedHeaderError() from None


def read_header(source: BinaryIO) -> Header:
    """Read one header from `source`, leaving it positioned at the payload nonce."""
    lines = _LineReader(source)
    if lines.line() != VERSION_LINE:
        raise MalformedHeaderError()
    stanzas: list[Stanza] = []
    while True:
        line = lines.line()
        if line.startswith(STANZA_PREFIX):
            args = line[len(STANZA_PREFIX) : -1].split(b" ")
            if not all(_is_argument(a) for a in args):
                raise MalformedHeaderError()
            stanzas.append(Stanza(tuple(a.decode("ascii") for a in args), _read_body(lines)))
        elif line.startswith(MAC_PREFIX + b" ") and len(line) == _MAC_LINE_SIZE:
            try:
                mac = b64decode_raw(line[len(MAC_PREFIX) + 1 : -1])
            except ValueError:
                raise MalformedHeaderError() from None
            return Header(tuple(stanzas), mac)
        else:
            raise MalformedHeaderError()
