"""Interoperability with the reference `age` tool (FORMAT.md 1: "the standard `age` tool opens what Lykta
writes and the reverse"), in both directions, through the library and through `python -m crypto`.

These tests run Debian's `age` and `age-keygen`. If they are missing the tests fail, they do not skip:
CI installs `age` (.ci/run), and a missing tool must never turn into a silent pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import crypto

pytestmark = pytest.mark.interop

REPO_ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
# Empty, tiny, around the 64 KiB chunk boundary (65536 bytes is a single full chunk that must carry the
# last flag, since an empty last chunk may follow no other chunk), and many chunks.
SIZES = [0, 1, 65535, 65536, 65537, 10 * MIB]
SIZE_IDS = ["0", "1", "64KiB-1", "64KiB", "64KiB+1", "10MiB"]


def tool(name: str) -> str:
    """The path of a reference tool, or a test failure (never a skip) if it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: install Debian's `age` package (CI does, see .ci/run)")
    return path


def run(
    args: Sequence[str | Path], *, stdin: bytes = b"", check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        [str(a) for a in args], input=stdin, capture_output=True, cwd=REPO_ROOT, timeout=60, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"{args[0]} exited {result.returncode}: {result.stderr.decode(errors='replace')}")
    return result


def ours(*args: str | Path, stdin: bytes = b"", check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return run([sys.executable, "-m", "crypto", *args], stdin=stdin, check=check)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclasses.dataclass(frozen=True)
class Key:
    """One recipient's key as a user holds it: an identity file, and its public key as `age` prints it."""

    origin: str
    identity_file: Path
    recipient: str

    @property
    def identities(self) -> list[crypto.X25519Identity]:
        return crypto.parse_identities(self.identity_file.read_text(encoding="ascii"))


def age_public_key(identity_file: Path) -> str:
    return run([tool("age-keygen"), "-y", identity_file]).stdout.decode("ascii").strip()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> list[Key]:
    """Three recipients: one key from `age-keygen`, one from our keygen, and one identity file that mixes
    comments, blank lines and a second (unused) key from the other tool around the recipient's key."""
    directory = tmp_path_factory.mktemp("keys")
    from_age = directory / "age-keygen.txt"
    run([tool("age-keygen"), "-o", from_age])
    from_ours = directory / "ours.txt"
    ours("keygen", "-o", from_ours)

    mixed_key = run([tool("age-keygen")]).stdout.decode("ascii")
    decoy = ours("keygen").stdout.decode("ascii")
    mixed = directory / "mixed.txt"
    mixed.write_text(f"# officer's keys, as collected\n\n{decoy}\n# the one in use:\n{mixed_key}\n\n")
    mixed_recipient = next(
        line.removeprefix("# public key: ") for line in mixed_key.splitlines() if line.startswith("# public")
    )

    result = [
        Key("age-keygen", from_age, age_public_key(from_age)),
        Key("ours", from_ours, age_public_key(from_ours)),
        Key("mixed", mixed, mixed_recipient),
    ]
    # Both tools derive the same public key from each identity (Bech32 and X25519 agree).
    assert str(crypto.parse_identities(from_age.read_text())[0].recipient) == result[0].recipient
    assert f"# public key: {result[1].recipient}\n" in from_ours.read_text()
    assert str(result[2].identities[1].recipient) == mixed_recipient
    return result


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Key:
    """A key that no test envelope is encrypted to."""
    path = tmp_path_factory.mktemp("stranger") / "key.txt"
    run([tool("age-keygen"), "-o", path])
    return Key("stranger", path, age_public_key(path))


# --- ours encrypts, age decrypts ---------------------------------------------------------------------------


def encrypt_with_library(plaintext: bytes, keys: list[Key], directory: Path) -> bytes:
    return crypto.encrypt(plaintext, [crypto.X25519Recipient.parse(k.recipient) for k in keys])


def encrypt_with_library_stream(plaintext: bytes, keys: list[Key], directory: Path) -> bytes:
    sink = io.BytesIO()
    crypto.encrypt_stream(
        io.BytesIO(plaintext), sink, [crypto.X25519Recipient.parse(k.recipient) for k in keys]
    )
    return sink.getvalue()


def encrypt_with_cli(plaintext: bytes, keys: list[Key], directory: Path) -> bytes:
    # -r for the first recipients, -R (a recipients file with comments) for the last; input from a file.
    source = directory / "plain.bin"
    source.write_bytes(plaintext)
    recipients_file = directory / "recipients.txt"
    recipients_file.write_text(f"# desk\n\n{keys[-1].recipient}\n")
    output = directory / "cli.age"
    flags = [f for k in keys[:-1] for f in ("-r", k.recipient)]
    ours("encrypt", *flags, "-R", recipients_file, "-o", output, source)
    return output.read_bytes()


ENCRYPTERS: dict[str, Callable[[bytes, list[Key], Path], bytes]] = {
    "encrypt": encrypt_with_library,
    "encrypt_stream": encrypt_with_library_stream,
    "cli": encrypt_with_cli,
}


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("encrypter", ENCRYPTERS)
def test_age_decrypts_ours_with_each_recipient_key(
    encrypter: str, size: int, keys: list[Key], tmp_path: Path
) -> None:
    plaintext = os.urandom(size)
    envelope_path = tmp_path / "envelope.age"
    envelope_path.write_bytes(ENCRYPTERS[encrypter](plaintext, keys, tmp_path))
    for key in keys:
        # To stdout: `age -d -o FILE` creates FILE only on the first write, so an empty plaintext leaves none.
        decrypted = run([tool("age"), "-d", "-i", key.identity_file, envelope_path]).stdout
        assert len(decrypted) == size, key.origin
        assert sha256(decrypted) == sha256(plaintext), key.origin


def test_age_refuses_ours_with_a_key_it_was_not_encrypted_to(
    keys: list[Key], stranger: Key, tmp_path: Path
) -> None:
    secret = b"the red van at Storgatan 4"
    envelope = tmp_path / "envelope.age"
    envelope.write_bytes(crypto.encrypt(secret, [crypto.X25519Recipient.parse(keys[0].recipient)]))
    for wrong in (keys[1], stranger):
        result = run([tool("age"), "-d", "-i", wrong.identity_file, envelope], check=False)
        assert result.returncode != 0, wrong.origin
        assert secret not in result.stdout
        assert b"no identity matched" in result.stderr
    # The right key still opens it, so the failures above are about the key, not a broken file.
    assert run([tool("age"), "-d", "-i", keys[0].identity_file, envelope]).stdout == secret


# --- age encrypts, ours decrypts ---------------------------------------------------------------------------


def age_encrypt(plaintext: bytes, keys: list[Key], directory: Path) -> Path:
    """Encrypt with `age`: -r for the first recipients, -R (a recipients file with comments) for the last."""
    source = directory / "plain.bin"
    source.write_bytes(plaintext)
    recipients_file = directory / "recipients.txt"
    recipients_file.write_text(f"# desk\n\n{keys[-1].recipient}\n")
    output = directory / "age.age"
    flags = [f for k in keys[:-1] for f in ("-r", k.recipient)]
    run([tool("age"), *flags, "-R", recipients_file, "-o", output, source])
    return output


def decrypt_with_library(envelope: Path, key: Key, directory: Path) -> bytes:
    return crypto.decrypt(envelope.read_bytes(), key.identities)


def decrypt_with_library_stream(envelope: Path, key: Key, directory: Path) -> bytes:
    sink = io.BytesIO()
    with envelope.open("rb") as source:
        crypto.decrypt_stream(source, sink, key.identities)
    return sink.getvalue()


def decrypt_with_cli(envelope: Path, key: Key, directory: Path) -> bytes:
    output = directory / f"cli-{key.origin}.bin"
    ours("decrypt", "-i", key.identity_file, "-o", output, envelope)
    return output.read_bytes()


DECRYPTERS: dict[str, Callable[[Path, Key, Path], bytes]] = {
    "decrypt": decrypt_with_library,
    "decrypt_stream": decrypt_with_library_stream,
    "cli": decrypt_with_cli,
}


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("decrypter", DECRYPTERS)
def test_ours_decrypts_age_with_each_recipient_key(
    decrypter: str, size: int, keys: list[Key], tmp_path: Path
) -> None:
    plaintext = os.urandom(size)
    envelope = age_encrypt(plaintext, keys, tmp_path)
    for key in keys:
        decrypted = DECRYPTERS[decrypter](envelope, key, tmp_path)
        assert len(decrypted) == size, key.origin
        assert sha256(decrypted) == sha256(plaintext), key.origin


def test_ours_refuses_age_with_a_key_it_was_not_encrypted_to(
    keys: list[Key], stranger: Key, tmp_path: Path
) -> None:
    envelope = age_encrypt(b"the red van at Storgatan 4", keys, tmp_path).read_bytes()
    with pytest.raises(crypto.NoIdentityMatchError):
        crypto.decrypt(envelope, stranger.identities)


def test_cli_reads_age_from_stdin_and_writes_stdout(keys: list[Key], tmp_path: Path) -> None:
    plaintext = os.urandom(3 * crypto.CHUNK_SIZE + 5)
    envelope = age_encrypt(plaintext, keys, tmp_path).read_bytes()
    assert ours("decrypt", "-i", keys[1].identity_file, stdin=envelope).stdout == plaintext
    # ...and the reverse: our stdin-to-stdout envelope opens in age, read from age's stdin.
    ours_envelope = ours("encrypt", "-r", keys[0].recipient, stdin=plaintext).stdout
    assert run([tool("age"), "-d", "-i", keys[0].identity_file], stdin=ours_envelope).stdout == plaintext


# --- adding recipients to an envelope age made -------------------------------------------------------------


def payload_after_header(envelope: bytes) -> bytes:
    """The bytes after the header, found by the age grammar alone (not our parser): after the MAC line."""
    mac_line = envelope.index(b"\n--- ") + 1
    return envelope[envelope.index(b"\n", mac_line) + 1 :]


@pytest.mark.parametrize("new_key_origin", ["age-keygen", "ours"])
@pytest.mark.parametrize("header_only", [False, True], ids=["whole-envelope", "header-only"])
def test_add_recipients_to_an_age_envelope(
    new_key_origin: str, header_only: bool, keys: list[Key], stranger: Key, tmp_path: Path
) -> None:
    owner = keys[2]  # the mixed identity file
    new = next(k for k in keys if k.origin == new_key_origin)
    plaintext = os.urandom(2 * crypto.CHUNK_SIZE + 123)
    source = tmp_path / "plain.bin"
    source.write_bytes(plaintext)
    original = tmp_path / "original.age"
    run([tool("age"), "-r", owner.recipient, "-o", original, source])
    envelope = original.read_bytes()
    # Before: the new key cannot open it (so the success below is the added stanza's doing).
    assert run([tool("age"), "-d", "-i", new.identity_file, original], check=False).returncode != 0

    new_recipient = crypto.X25519Recipient.parse(new.recipient)
    if header_only:
        header, rest = crypto.split_header(envelope)
        reshared = (
            crypto.add_recipients(header, identities=owner.identities, recipients=[new_recipient]) + rest
        )
    else:
        reshared = crypto.add_recipients(envelope, identities=owner.identities, recipients=[new_recipient])

    assert payload_after_header(reshared) == payload_after_header(envelope)  # nonce and chunks untouched
    assert reshared.count(b"\n-> X25519 ") == 2
    path = tmp_path / "reshared.age"
    path.write_bytes(reshared)
    for key in (owner, new):  # age checks our new header MAC on both
        output = tmp_path / f"out-{key.origin}"
        run([tool("age"), "-d", "-i", key.identity_file, "-o", output, path])
        assert output.read_bytes() == plaintext, key.origin
    assert run([tool("age"), "-d", "-i", stranger.identity_file, path], check=False).returncode != 0
