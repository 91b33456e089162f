"""The staff passphrase policy: long enough, not a known favourite, not the username (issue 4).

Length is what makes a passphrase strong (NIST SP 800-63B): at least 14 characters, no composition rules.
The blocklist holds long phrases people pick anyway; short ones are already refused by length.
"""

from __future__ import annotations

import unicodedata

from portal.i18n import N_

MIN_LENGTH = 14
MAX_LENGTH = 256

ERROR_TOO_SHORT = N_("The passphrase must have at least %(limit)s characters. Several words are easiest.")
ERROR_TOO_LONG = N_("The passphrase may have at most %(limit)s characters.")
ERROR_COMMON = N_("This passphrase is too common. Please choose another.")
ERROR_CONTAINS_USERNAME = N_("The passphrase must not contain your username.")
ERROR_MISMATCH = N_("The two passphrases are not the same.")

BLOCKLIST = frozenset(
    [
        "correcthorsebatterystaple",
        "passwordpassword",
        "password12345678",
        "password123456789",
        "1234567890123456",
        "12345678901234",
        "123456789012345",
        "qwertyuiopasdfgh",
        "qwertyuiopasdfghjkl",
        "qwertyuiop123456",
        "iloveyouiloveyou",
        "abcdefghijklmnop",
        "abcdefghijklmn",
        "aaaaaaaaaaaaaa",
        "lösenordlösenord",
        "losenordlosenord",
        "sommarsommar2024",
        "sommarsommar2025",
        "sommarsommar2026",
        "vintervinter2025",
        "vintervinter2026",
        "välkommen123456",
        "valkommen123456",
        "lykta123456789",
        "lyktalyktalykta",
        "polisenpolisen",
        "polisen12345678",
        "kommunenkommunen",
        "salasanasalasana",
        "hasłohasłohasło",
        "haslohaslohaslo",
        "trustno1trustno1",
        "letmeinletmein1",
        "welcome1234567",
        "welcomewelcome",
        "changemechangeme",
        "changeme123456",
        "administrator1",
        "administrator123",
        "administratör1",
        "superman12345678",
        "mypasswordispassword",
        "thisismypassword",
        "thisisapassword",
        "ilovemyfamily123",
        "football12345678",
    ]
)


def _normalised(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if not c.isspace())


def passphrase_problems(
    passphrase: str, *, username: str, repeated: str | None = None
) -> list[tuple[str, int | None]]:
    """What is wrong with a new passphrase, as (msgid, limit) pairs; empty when it is acceptable."""
    problems: list[tuple[str, int | None]] = []
    if repeated is not None and repeated != passphrase:
        problems.append((ERROR_MISMATCH, None))
    length = len(unicodedata.normalize("NFC", passphrase))
    if length < MIN_LENGTH:
        problems.append((ERROR_TOO_SHORT, MIN_LENGTH))
    elif length > MAX_LENGTH:
        problems.append((ERROR_TOO_LONG, MAX_LENGTH))
    flat = _normalised(passphrase)
    if flat in BLOCKLIST or len(set(flat)) <= 3:
        problems.append((ERROR_COMMON, None))
    if username and _normalised(username) in flat:
        problems.append((ERROR_CONTAINS_USERNAME, None))
    return problems
