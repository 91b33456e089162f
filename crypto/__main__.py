"""`python -m crypto`: keygen, encrypt and decrypt, with the flags and key formats of the `age` tool.

Officers use it to open exports offline; tests outside the code use it too. Decrypting to `-o FILE` removes
the file again if decryption fails, so a cut or forged envelope never leaves a partial plaintext behind.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from ._envelope import decrypt_stream, encrypt_stream
from ._errors import CryptoError, KeyFormatError
from ._x25519 import X25519Identity, X25519Recipient, parse_identities, parse_recipients

PROG = "python -m crypto"


@contextlib.contextmanager
def _input(path: str | None) -> Iterator[BinaryIO]:
    if path is None or path == "-":
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as f:
            yield f


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[BinaryIO]:
    """Write to `path` (or stdout) through a temporary file beside it, renamed over `path` on success.

    On any error the temporary file is removed and `path` is untouched: an existing file survives a failed
    decrypt, partial plaintext never appears under the final name, and `-o` may name the input file.
    """
    if path is None or path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    if os.path.exists(path) and not os.path.isfile(path):  # a device or FIFO: write to it directly
        with open(path, "wb") as f:
            yield f
        return
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".crypto-")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _read_key_file(path: str) -> str:
    # Key files are UTF-8 like age's: comments may hold any text; a key line that is not ASCII fails in
    # the Bech32 decoder with a KeyFormatError.
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFormatError(f"{path}: not a UTF-8 text file") from None


def _keygen(args: argparse.Namespace) -> None:
    identity = X25519Identity.generate()
    created = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    text = f"# created: {created}\n# public key: {identity.recipient}\n{identity.to_text()}\n"
    if args.output is None:
        sys.stdout.buffer.write(text.encode("ascii"))
        sys.stdout.buffer.flush()
    else:
        try:
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CryptoError(f"output file {args.output!r} exists; not overwriting a key") from None
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("ascii"))
    if args.output is not None or not sys.stdout.isatty():
        print(f"Public key: {identity.recipient}", file=sys.stderr)


def _encrypt(args: argparse.Namespace) -> None:
    recipients = [X25519Recipient.parse(r) for r in args.recipient]
    for path in args.recipients_file:
        recipients += parse_recipients(_read_key_file(path))
    if not recipients:
        raise CryptoError("give at least one recipient with -r or -R")
    with _input(args.input) as source, _output(args.output) as sink:
        encrypt_stream(source, sink, recipients)


def _decrypt(args: argparse.Namespace) -> None:
    identities: list[X25519Identity] = []
    for path in args.identity:
        identities += parse_identities(_read_key_file(path))
    with _input(args.input) as source, _output(args.output) as sink:
        decrypt_stream(source, sink, identities)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="age v1 (X25519) encryption, as Lykta uses it.")
    commands = parser.add_subparsers(dest="command", required=True)

    keygen = commands.add_parser("keygen", help="generate an identity (like age-keygen)")
    keygen.add_argument("-o", "--output", metavar="OUTPUT", help="write the identity to a new file")
    keygen.set_defaults(run=_keygen)

    encrypt = commands.add_parser("encrypt", help="encrypt to one or more recipients (like age -e)")
    encrypt.add_argument("-r", "--recipient", action="append", default=[], metavar="RECIPIENT")
    encrypt.add_argument("-R", "--recipients-file", action="append", default=[], metavar="PATH")
    encrypt.add_argument("-o", "--output", metavar="OUTPUT")
    encrypt.add_argument("input", nargs="?", metavar="INPUT")
    encrypt.set_defaults(run=_encrypt)

    decrypt = commands.add_parser("decrypt", help="decrypt with identity files (like age -d)")
    decrypt.add_argument("-i", "--identity", action="append", required=True, metavar="PATH")
    decrypt.add_argument("-o", "--output", metavar="OUTPUT")
    decrypt.add_argument("input", nargs="?", metavar="INPUT")
    decrypt.set_defaults(run=_decrypt)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except (CryptoError, OSError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
