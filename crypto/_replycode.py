"""Reply codes: what a tipster keeps to come back to their mailbox (FORMAT.md section 4).

A code is 24 digits, the last a Damm check digit, so that a mistyped code is reported at once instead
of after an Argon2id run and a failed lookup. `parse_reply_code` accepts what people actually type or
paste: any script's decimal digits, spaces, dashes and the invisible marks that right-to-left text and
copy-paste leave behind. `derive_mailbox` turns a code into the stored mailbox id and the tipster's
X25519 identity; neither the code nor the identity's secret is ever stored.
"""

from __future__ import annotations

import hmac
import secrets
import unicodedata
from dataclasses import dataclass

from nacl.encoding import RawEncoder
from nacl.hash import blake2b

from ._errors import ReplyCodeFormatError, ReplyCodeTypoError
from ._kdf import Argon2Params, argon2id
from ._x25519 import X25519Identity

REPLY_CODE_LENGTH = 24
REPLY_CODE_GROUP_SIZE = 4
INSTANCE_SALT_SIZE = 16
PEPPER_SIZE = 32
MAILBOX_ID_SIZE = 32

# Typed input longer than this is refused before it is looked at: 24 digits with generous separators
# fit easily, and a hostile megabyte of text costs one len() call.
MAX_REPLY_CODE_INPUT = 200

REPLY_CODE_PARAMS_V1 = Argon2Params("replycode-v1", opslimit=2, memlimit=64 * 1024 * 1024)

MAILBOX_PERSON = b"lykta/mailbox/v1"
TIPSTER_PERSON = b"lykta/tipster/v1"

# Damm's weakly totally anti-symmetric quasigroup of order 10 (H. M. Damm, "Total anti-symmetrische
# Quasigruppen", 2004, the table Wikipedia reproduces). Its diagonal is zero, so the check digit of a
# body is the interim digit the body leaves, and a valid code leaves zero.
_DAMM_TABLE = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)
_ASCII_DIGITS = frozenset("0123456789")

# Separator noise dropped during normalisation, besides white space (FORMAT.md section 4).
_DASHES = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d")
_INVISIBLE_MARKS = frozenset(
    "\u200b\u200c\u200d\u200e\u200f"  # zero-width space and (non-)joiner, LRM, RLM
    "\u061c"  # Arabic letter mark
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings and overrides
    "\u2066\u2067\u2068\u2069"  # isolates
    "\ufeff"  # zero-width no-break space (BOM)
)
_DROPPED = _DASHES | _INVISIBLE_MARKS


def _damm_interim(digits: str) -> int:
    interim = 0
    for digit in digits:
        interim = _DAMM_TABLE[interim][ord(digit) - ord("0")]
    return interim


def _is_ascii_digits(text: str) -> bool:
    return bool(text) and _ASCII_DIGITS.issuperset(text)


def damm_check_digit(digits: str) -> str:
    """The Damm check digit to append to the ASCII digits `digits`."""
    if not _is_ascii_digits(digits):
        raise ValueError("expected ASCII digits")
    return str(_damm_interim(digits))


def damm_is_valid(digits: str) -> bool:
    """Whether the ASCII digits `digits` end in their correct Damm check digit."""
    return _is_ascii_digits(digits) and _damm_interim(digits) == 0


class ReplyCode:
    """A well-formed reply code: 24 ASCII digits with a correct check digit.

    The digits are a secret: `repr` and `str` hide them, so a code that reaches a log or a traceback
    shows nothing. Ask for `.grouped()` (to show the tipster) or `.digits` (to derive) explicitly.
    Equality is constant-time; codes are deliberately unhashable (they are not meant to be dict keys).
    """

    __slots__ = ("_digits",)

    def __init__(self, digits: str) -> None:
        if len(digits) != REPLY_CODE_LENGTH or not _is_ascii_digits(digits):
            raise ReplyCodeFormatError()
        if _damm_interim(digits) != 0:
            raise ReplyCodeTypoError()
        self._digits = digits

    @classmethod
    def generate(cls) -> ReplyCode:
        """A fresh code: 23 digits from `secrets` (76.4 bits) and their check digit."""
        body = "".join(secrets.choice("0123456789") for _ in range(REPLY_CODE_LENGTH - 1))
        return cls(body + damm_check_digit(body))

    @property
    def digits(self) -> str:
        return self._digits

    def grouped(self) -> str:
        """The display form: six groups of four digits separated by spaces."""
        step = REPLY_CODE_GROUP_SIZE
        return " ".join(self._digits[i : i + step] for i in range(0, REPLY_CODE_LENGTH, step))

    def __repr__(self) -> str:
        return "ReplyCode(<hidden>)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReplyCode):
            return NotImplemented
        return hmac.compare_digest(self._digits.encode("ascii"), other._digits.encode("ascii"))

    __hash__ = None  # type: ignore[assignment]


def parse_reply_code(text: str) -> ReplyCode:
    """Normalise a typed or pasted reply code (FORMAT.md section 4) and check it.

    Raises ReplyCodeFormatError for a character that is neither a decimal digit nor separator noise, or
    for other than 24 digits; ReplyCodeTypoError when the check digit does not match. Both are cheap.
    """
    if len(text) > MAX_REPLY_CODE_INPUT:
        raise ReplyCodeFormatError()
    digits: list[str] = []
    for char in text:
        if char in _DROPPED or char.isspace():
            continue
        # Category Nd is exactly the set of characters with a decimal digit value (Unicode's
        # Numeric_Type=Decimal); superscripts and circled digits are "No" and are refused.
        if unicodedata.category(char) != "Nd":
            raise ReplyCodeFormatError()
        digits.append(str(unicodedata.decimal(char)))
    return ReplyCode("".join(digits))


@dataclass(frozen=True, repr=False, eq=False)
class MailboxKeys:
    """What a reply code opens: the mailbox lookup id (stored) and the tipster identity (never stored)."""

    mailbox_id: bytes
    tipster_identity: X25519Identity

    def __post_init__(self) -> None:
        if len(self.mailbox_id) != MAILBOX_ID_SIZE:
            raise ValueError(f"mailbox id must be {MAILBOX_ID_SIZE} bytes")

    def __repr__(self) -> str:
        return "MailboxKeys(<hidden>)"


def _keyed_blake2b(master: bytes, *, pepper: bytes, person: bytes) -> bytes:
    digest: bytes = blake2b(master, digest_size=32, key=pepper, person=person, encoder=RawEncoder)
    return digest


def derive_mailbox(
    code: ReplyCode,
    *,
    instance_salt: bytes,
    pepper: bytes,
    params: Argon2Params = REPLY_CODE_PARAMS_V1,
) -> MailboxKeys:
    """Derive the mailbox id and the tipster identity from a code (FORMAT.md section 4, "Derivation").

    One Argon2id run: callers serve it under a concurrency limit (DESIGN.md section 3). A wrong salt
    or pepper size is a programming or configuration error and raises ValueError.
    """
    if len(instance_salt) != INSTANCE_SALT_SIZE:
        raise ValueError(f"instance salt must be {INSTANCE_SALT_SIZE} bytes")
    if len(pepper) != PEPPER_SIZE:
        raise ValueError(f"pepper must be {PEPPER_SIZE} bytes")
    master = argon2id(code.digits.encode("ascii"), salt=instance_salt, params=params)
    mailbox_id = _keyed_blake2b(master, pepper=pepper, person=MAILBOX_PERSON)
    seed = _keyed_blake2b(master, pepper=pepper, person=TIPSTER_PERSON)
    return MailboxKeys(mailbox_id=mailbox_id, tipster_identity=X25519Identity(seed))
