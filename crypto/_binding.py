"""The binding line every Lykta plaintext starts with (FORMAT.md 2), and sealing with it.

Encrypting a tip's answers to the right keys is not enough: a ciphertext copied into another tip's row
would open fine with the same desk key. The binding line names what the plaintext is and whose it is,
and opening checks it, so a moved ciphertext is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from ._envelope import decrypt, encrypt
from ._errors import BindingError
from ._x25519 import X25519Identity, X25519Recipient

BINDING_MAGIC = b"lykta-binding/v1"
MAX_BINDING_LINE = 200
_KIND = re.compile(r"[a-z0-9-]{1,32}")
_SUBJECT = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def binding_line(kind: str, subject: str) -> bytes:
    if not _KIND.fullmatch(kind) or not _SUBJECT.fullmatch(subject):
        raise ValueError("binding kind or subject out of grammar")
    return b"%s %s %s\n" % (BINDING_MAGIC, kind.encode("ascii"), subject.encode("ascii"))


def strip_binding(chunks: Iterable[bytes], *, kind: str, subject: str) -> Iterator[bytes]:
    """Check the binding line at the start of a plaintext arriving in chunks, then yield the rest."""
    expected = binding_line(kind, subject)
    head = b""
    iterator = iter(chunks)
    for chunk in iterator:
        head += chunk
        if len(head) >= len(expected) or b"\n" in head or len(head) > MAX_BINDING_LINE:
            break
    if not head.startswith(expected):
        raise BindingError()
    if rest := head[len(expected) :]:
        yield rest
    yield from iterator


def seal(plaintext: bytes, *, kind: str, subject: str, recipients: Sequence[X25519Recipient]) -> bytes:
    """Encrypt `plaintext` to `recipients`, bound to (kind, subject)."""
    return encrypt(binding_line(kind, subject) + plaintext, recipients)


def unseal(envelope: bytes, *, kind: str, subject: str, identities: Sequence[X25519Identity]) -> bytes:
    """Decrypt an envelope made by `seal` and check it is bound to (kind, subject)."""
    return b"".join(strip_binding([decrypt(envelope, identities)], kind=kind, subject=subject))
