"""Lykta's cryptography: age v1 envelopes, key types, key wrapping, reply codes.

A pure library: the standard library and PyNaCl only, no I/O besides what it is given. FORMAT.md beside
this file is the specification; the private modules follow its sections one to one.
"""

from __future__ import annotations

from ._binding import BINDING_MAGIC, binding_line, seal, strip_binding, unseal
from ._envelope import (
    Encryptor,
    add_recipients,
    decrypt,
    decrypt_chunks,
    decrypt_stream,
    encrypt,
    encrypt_stream,
    split_header,
    unwrap_file_key,
)
from ._errors import (
    BindingError,
    CryptoError,
    DecryptError,
    HeaderMACError,
    KeyFormatError,
    MalformedHeaderError,
    NoIdentityMatchError,
    PayloadError,
    ReplyCodeError,
    ReplyCodeFormatError,
    ReplyCodeTypoError,
    UnwrapError,
)
from ._kdf import Argon2Params
from ._keywrap import KEYWRAP_PARAMS_V1, unwrap_secret, wrap_secret
from ._replycode import REPLY_CODE_PARAMS_V1, MailboxKeys, ReplyCode, derive_mailbox, parse_reply_code
from ._stream import CHUNK_SIZE, StreamDecryptor, StreamEncryptor
from ._x25519 import X25519Identity, X25519Recipient, parse_identities, parse_recipients

__all__ = [
    "BINDING_MAGIC",
    "CHUNK_SIZE",
    "KEYWRAP_PARAMS_V1",
    "REPLY_CODE_PARAMS_V1",
    "Argon2Params",
    "BindingError",
    "CryptoError",
    "DecryptError",
    "Encryptor",
    "HeaderMACError",
    "KeyFormatError",
    "MailboxKeys",
    "MalformedHeaderError",
    "NoIdentityMatchError",
    "PayloadError",
    "ReplyCode",
    "ReplyCodeError",
    "ReplyCodeFormatError",
    "ReplyCodeTypoError",
    "StreamDecryptor",
    "StreamEncryptor",
    "UnwrapError",
    "X25519Identity",
    "X25519Recipient",
    "add_recipients",
    "binding_line",
    "decrypt",
    "decrypt_chunks",
    "decrypt_stream",
    "derive_mailbox",
    "encrypt",
    "encrypt_stream",
    "parse_identities",
    "parse_recipients",
    "parse_reply_code",
    "seal",
    "split_header",
    "strip_binding",
    "unseal",
    "unwrap_file_key",
    "unwrap_secret",
    "wrap_secret",
]
