"""The error tree of `crypto` (FORMAT.md section 5).

    CryptoError
     ├── KeyFormatError            a recipient, identity or key file is not well formed
     ├── DecryptError              what opening an envelope can report, and nothing more
     │    ├── MalformedHeaderError     the header (or payload nonce) does not parse
     │    ├── NoIdentityMatchError     no stanza opens with the identities given
     │    ├── HeaderMACError           a stanza opened but the header MAC is wrong
     │    ├── PayloadError             the STREAM payload fails (tag, truncation, trailing data)
     │    └── BindingError             the plaintext is for another kind or subject
     ├── UnwrapError               a key-wrap blob does not open (wrong passphrase or tampered)
     └── ReplyCodeError            a reply code as typed is not a reply code
          ├── ReplyCodeFormatError     wrong characters or length
          └── ReplyCodeTypoError       the check digit does not match

Decryption errors carry a fixed message naming their class only: callers may log them, and
nothing an attacker supplied (bytes, lengths, offsets) or any secret can ride along.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every error raised by `crypto`."""


class KeyFormatError(CryptoError):
    """A recipient, identity or key file is not well formed."""


class DecryptError(CryptoError):
    """An envelope could not be opened. Subclasses say at which stage, and nothing more."""

    message = "could not decrypt"

    def __init__(self) -> None:
        super().__init__(self.message)


class MalformedHeaderError(DecryptError):
    message = "could not decrypt: malformed header"


class NoIdentityMatchError(DecryptError):
    message = "could not decrypt: no matching identity"


class HeaderMACError(DecryptError):
    message = "could not decrypt: bad header MAC"


class PayloadError(DecryptError):
    message = "could not decrypt: bad payload"


class BindingError(DecryptError):
    message = "could not decrypt: binding mismatch"


class UnwrapError(CryptoError):
    """A key-wrap blob did not open: wrong passphrase, or tampered. Deliberately no more detail."""

    def __init__(self) -> None:
        super().__init__("could not unwrap")


class ReplyCodeError(CryptoError):
    """A typed reply code is not a reply code (the message never repeats the code)."""


class ReplyCodeFormatError(ReplyCodeError):
    def __init__(self) -> None:
        super().__init__("not a reply code: expected 24 digits")


class ReplyCodeTypoError(ReplyCodeError):
    def __init__(self) -> None:
        super().__init__("not a reply code: check digit does not match")
