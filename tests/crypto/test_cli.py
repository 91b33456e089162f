"""`python -m crypto` speaks like `age`: keygen, encrypt and decrypt with age's flags and key formats, and
on failure a one-line error that names the stage only and leaves no file half-written (STYLE rule 12).

The CLI runs in a subprocess, as an officer runs it. These tests need no `age` (test_interop.py does that).
"""

from __future__ import annotations

import datetime
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import crypto

REPO_ROOT = Path(__file__).resolve().parents[2]
PROG = "python -m crypto"
ERROR_PREFIX = f"{PROG}: error: "
# Recognisable plaintext, so that a leak into stderr or a stray file is found by a substring search.
SECRET_TEXT = b"the red van at Storgatan 4 is the one from the break-in; plate ABC 123. "


def cli(
    *args: str | Path, stdin: bytes = b"", umask: int = -1, cwd: Path = REPO_ROOT
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "crypto", *map(str, args)],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        umask=umask,
        timeout=60,
        check=False,
    )


def ok(*args: str | Path, stdin: bytes = b"") -> bytes:
    result = cli(*args, stdin=stdin)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[bytes]) -> str:
    """The CLI failed with exactly one short `python -m crypto: error: ...` line and no traceback."""
    assert result.returncode != 0
    stderr = result.stderr.decode("utf-8", errors="replace")
    assert "Traceback" not in stderr
    assert stderr.startswith(ERROR_PREFIX), stderr
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), stderr
    assert len(stderr) < 200, stderr
    return stderr[len(ERROR_PREFIX) : -1]


def write_identity(path: Path) -> crypto.X25519Identity:
    identity = crypto.X25519Identity.generate()
    path.write_text(f"# public key: {identity.recipient}\n{identity.to_text()}\n")
    return identity


@pytest.fixture
def alice(tmp_path: Path) -> tuple[crypto.X25519Identity, Path]:
    path = tmp_path / "alice.txt"
    return write_identity(path), path


@pytest.fixture
def bob(tmp_path: Path) -> tuple[crypto.X25519Identity, Path]:
    path = tmp_path / "bob.txt"
    return write_identity(path), path


# --- keygen ------------------------------------------------------------------------------------------------

KEY_FILE = re.compile(
    r"# created: (?P<created>\S+)\n"
    r"# public key: (?P<public>age1[a-z0-9]+)\n"
    r"(?P<secret>AGE-SECRET-KEY-1[A-Z0-9]+)\n"
)


def parse_key_file(text: str) -> tuple[datetime.datetime, str, crypto.X25519Identity]:
    match = KEY_FILE.fullmatch(text)
    assert match, text
    identity = crypto.X25519Identity.parse(match["secret"])
    return datetime.datetime.fromisoformat(match["created"]), match["public"], identity


def test_keygen_prints_an_age_key_file() -> None:
    result = cli("keygen")
    assert result.returncode == 0
    created, public, identity = parse_key_file(result.stdout.decode("ascii"))
    assert public == str(identity.recipient)  # the comment names this key's recipient, not another
    assert created.tzinfo is not None
    now = datetime.datetime.now(datetime.UTC)
    assert abs((now - created).total_seconds()) < 300
    # Like age-keygen: with stdout not a terminal, the public key also goes to stderr.
    assert result.stderr.decode("ascii") == f"Public key: {public}\n"


def test_keygen_makes_a_new_key_each_time() -> None:
    first = parse_key_file(ok("keygen").decode("ascii"))[2]
    second = parse_key_file(ok("keygen").decode("ascii"))[2]
    assert first != second


def test_keygen_to_a_file_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    result = cli("keygen", "-o", path, umask=0)
    assert result.returncode == 0
    assert result.stdout == b""  # the secret went to the file only
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    _, public, identity = parse_key_file(path.read_text(encoding="ascii"))
    assert result.stderr.decode("ascii") == f"Public key: {public}\n"
    envelope = crypto.encrypt(b"x", [crypto.X25519Recipient.parse(public)])
    assert ok("decrypt", "-i", path, stdin=envelope) == b"x"
    assert identity.to_text().encode() not in result.stderr


def test_keygen_refuses_to_overwrite_a_file(tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    path.write_text("an officer's only copy of their key\n")
    os.chmod(path, 0o640)
    result = cli("keygen", "-o", path)
    message = one_line_error(result)
    assert "exists" in message
    assert result.stdout == b""
    assert path.read_text() == "an officer's only copy of their key\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# --- encrypt -----------------------------------------------------------------------------------------------


def test_encrypt_stdin_to_stdout_by_default(alice: tuple[crypto.X25519Identity, Path]) -> None:
    identity, _ = alice
    envelope = ok("encrypt", "-r", str(identity.recipient), stdin=SECRET_TEXT)
    assert envelope.startswith(b"age-encryption.org/v1\n-> X25519 ")
    assert SECRET_TEXT not in envelope
    assert crypto.decrypt(envelope, [identity]) == SECRET_TEXT


def test_encrypt_to_several_recipients_file_to_file(
    alice: tuple[crypto.X25519Identity, Path], bob: tuple[crypto.X25519Identity, Path], tmp_path: Path
) -> None:
    source = tmp_path / "tip.txt"
    source.write_bytes(SECRET_TEXT * 2000)  # several chunks
    output = tmp_path / "tip.age"
    stdout = ok("encrypt", "-r", str(alice[0].recipient), "-r", str(bob[0].recipient), "-o", output, source)
    assert stdout == b""
    envelope = output.read_bytes()
    for identity in (alice[0], bob[0]):
        assert crypto.decrypt(envelope, [identity]) == SECRET_TEXT * 2000
    with pytest.raises(crypto.NoIdentityMatchError):
        crypto.decrypt(envelope, [crypto.X25519Identity.generate()])


def test_encrypt_with_a_recipients_file_and_dash_for_stdin(
    alice: tuple[crypto.X25519Identity, Path], bob: tuple[crypto.X25519Identity, Path], tmp_path: Path
) -> None:
    recipients = tmp_path / "desk.txt"
    recipients.write_text(f"# the night desk\n\n{alice[0].recipient}\n# and its lead\n{bob[0].recipient}\n")
    carol = crypto.X25519Identity.generate()
    envelope = ok("encrypt", "-R", recipients, "-r", str(carol.recipient), "-", stdin=SECRET_TEXT)
    assert envelope.count(b"\n-> X25519 ") == 3
    for identity in (alice[0], bob[0], carol):
        assert crypto.decrypt(envelope, [identity]) == SECRET_TEXT


def test_encrypt_without_recipients_fails() -> None:
    result = cli("encrypt", stdin=SECRET_TEXT)
    assert "recipient" in one_line_error(result)
    assert result.stdout == b""


BAD_RECIPIENTS = {
    "wrong-length": "age1bogus",
    "bad-checksum": str(crypto.X25519Identity.generate().recipient)[:-1] + "q",
    "upper-case": str(crypto.X25519Identity.generate().recipient).upper(),
    "secret-key-by-mistake": crypto.X25519Identity.generate().to_text(),
    "ssh-key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN",
    "empty": "",
}


@pytest.mark.parametrize(
    "recipient",
    [pytest.param(value, id=name) for name, value in BAD_RECIPIENTS.items()],
)
def test_a_bad_recipient_is_a_clear_error(recipient: str, tmp_path: Path) -> None:
    output = tmp_path / "out.age"
    result = cli("encrypt", "-r", recipient, "-o", output, stdin=SECRET_TEXT)
    message = one_line_error(result)
    assert result.stdout == b""
    assert not output.exists()
    # A secret key pasted where a recipient belongs must not be echoed back into a terminal or a log.
    assert "AGE-SECRET-KEY-" not in message.upper()
    assert "recipient" in message


def test_a_bad_line_in_a_recipients_file_is_an_error(
    alice: tuple[crypto.X25519Identity, Path], tmp_path: Path
) -> None:
    recipients = tmp_path / "desk.txt"
    recipients.write_text(f"{alice[0].recipient}\nnot-a-key\n")
    result = cli("encrypt", "-R", recipients, stdin=SECRET_TEXT)
    one_line_error(result)
    assert result.stdout == b""


# --- decrypt -----------------------------------------------------------------------------------------------


def test_decrypt_stdin_to_stdout_by_default(alice: tuple[crypto.X25519Identity, Path]) -> None:
    identity, path = alice
    envelope = crypto.encrypt(SECRET_TEXT, [identity.recipient])
    assert ok("decrypt", "-i", path, stdin=envelope) == SECRET_TEXT


def test_decrypt_file_to_file_with_several_identity_files(
    alice: tuple[crypto.X25519Identity, Path], bob: tuple[crypto.X25519Identity, Path], tmp_path: Path
) -> None:
    plaintext = os.urandom(3 * crypto.CHUNK_SIZE + 1)
    source = tmp_path / "tip.age"
    source.write_bytes(crypto.encrypt(plaintext, [bob[0].recipient]))
    output = tmp_path / "tip.bin"
    # Alice's file does not match; like age, unused identities are ignored.
    assert ok("decrypt", "-i", alice[1], "--identity", bob[1], "-o", output, source) == b""
    assert output.read_bytes() == plaintext


def test_decrypt_with_an_identity_file_of_several_keys_and_comments(tmp_path: Path) -> None:
    keys = [crypto.X25519Identity.generate() for _ in range(3)]
    path = tmp_path / "keys.txt"
    path.write_text(
        "".join(f"# created: today\n# public key: {k.recipient}\n{k.to_text()}\n\n" for k in keys)
    )
    for key in keys:
        assert ok("decrypt", "-i", path, stdin=crypto.encrypt(SECRET_TEXT, [key.recipient])) == SECRET_TEXT


def test_decrypt_needs_an_identity(alice: tuple[crypto.X25519Identity, Path]) -> None:
    envelope = crypto.encrypt(SECRET_TEXT, [alice[0].recipient])
    result = cli("decrypt", stdin=envelope)
    assert result.returncode != 0
    assert SECRET_TEXT not in result.stdout


def test_a_missing_identity_file_is_a_one_line_error(tmp_path: Path) -> None:
    result = cli("decrypt", "-i", tmp_path / "nowhere.txt", stdin=b"")
    assert "nowhere.txt" in one_line_error(result)


def cut_mid_second_chunk(envelope: bytes) -> bytes:
    return envelope[: len(crypto.split_header(envelope)[0]) + 16 + crypto.CHUNK_SIZE + 16 + 1000]


def drop_last_chunk(envelope: bytes) -> bytes:
    # The plaintext is an exact number of full chunks, so this leaves a stream whose last chunk is a
    # middle chunk: it must not pass for a shorter file.
    return envelope[: -(crypto.CHUNK_SIZE + 16)]


def flip_last_byte(envelope: bytes) -> bytes:
    return envelope[:-1] + bytes([envelope[-1] ^ 1])


def flip_header_mac(envelope: bytes) -> bytes:
    header_length = len(crypto.split_header(envelope)[0])
    # The MAC line's first b64 character, swapped for another valid one so the header still parses.
    position = envelope.rindex(b"\n--- ", 0, header_length) + 5
    replacement = b"B" if envelope[position : position + 1] != b"B" else b"C"
    return envelope[:position] + replacement + envelope[position + 1 :]


def flip_first_chunk(envelope: bytes) -> bytes:
    position = len(crypto.split_header(envelope)[0]) + 16 + 100
    return envelope[:position] + bytes([envelope[position] ^ 0x80]) + envelope[position + 1 :]


def append_garbage(envelope: bytes) -> bytes:
    return envelope + b"\x00"


DEFECTS = {
    "cut-mid-chunk": (cut_mid_second_chunk, "bad payload"),
    "last-chunk-dropped": (drop_last_chunk, "bad payload"),
    "last-tag-flipped": (flip_last_byte, "bad payload"),
    "first-chunk-flipped": (flip_first_chunk, "bad payload"),
    "trailing-byte": (append_garbage, "bad payload"),
    "header-mac-flipped": (flip_header_mac, "bad header MAC"),
    "header-only": (lambda envelope: crypto.split_header(envelope)[0], "malformed header"),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_a_damaged_envelope_leaves_no_output_and_says_only_its_class(
    defect: str, alice: tuple[crypto.X25519Identity, Path], tmp_path: Path
) -> None:
    identity, identity_path = alice
    # Four full chunks: most defects come after whole verified chunks were already written to the file.
    plaintext = (SECRET_TEXT * (4 * crypto.CHUNK_SIZE // len(SECRET_TEXT) + 1))[: 4 * crypto.CHUNK_SIZE]
    damage, expected_class = DEFECTS[defect]
    source = tmp_path / "tip.age"
    source.write_bytes(damage(crypto.encrypt(plaintext, [identity.recipient])))
    output = tmp_path / "tip.txt"
    before = set(tmp_path.iterdir())

    result = cli("decrypt", "-i", identity_path, "-o", output, source)

    assert one_line_error(result) == f"could not decrypt: {expected_class}"
    assert result.stdout == b""
    assert SECRET_TEXT[:16] not in result.stderr
    assert identity.to_text().encode() not in result.stderr.upper()
    assert not output.exists()
    assert set(tmp_path.iterdir()) == before  # no partial or temporary file left anywhere beside it


def test_the_wrong_key_leaves_no_output(
    alice: tuple[crypto.X25519Identity, Path], bob: tuple[crypto.X25519Identity, Path], tmp_path: Path
) -> None:
    source = tmp_path / "tip.age"
    source.write_bytes(crypto.encrypt(SECRET_TEXT, [alice[0].recipient]))
    output = tmp_path / "tip.txt"
    result = cli("decrypt", "-i", bob[1], "-o", output, source)
    assert one_line_error(result) == "could not decrypt: no matching identity"
    assert not output.exists()


def test_a_failed_decrypt_keeps_an_existing_output_file(
    alice: tuple[crypto.X25519Identity, Path], bob: tuple[crypto.X25519Identity, Path], tmp_path: Path
) -> None:
    source = tmp_path / "tip.age"
    source.write_bytes(crypto.encrypt(SECRET_TEXT, [alice[0].recipient]))
    output = tmp_path / "report.txt"
    output.write_bytes(b"yesterday's report, the only copy\n")
    result = cli("decrypt", "-i", bob[1], "-o", output, source)
    assert result.returncode != 0
    assert output.read_bytes() == b"yesterday's report, the only copy\n"


@pytest.mark.parametrize("kind", ["identity", "recipients"])
def test_key_files_may_have_non_ascii_comments(kind: str, alice: tuple[crypto.X25519Identity, Path]) -> None:
    identity, path = alice
    path.write_text(f"# nyckel för Åsa Öberg, utredare\n{identity.to_text()}\n", encoding="utf-8")
    recipients = path.with_name("recipients.txt")
    recipients.write_text(f"# Åsa Öberg\n{identity.recipient}\n", encoding="utf-8")
    if kind == "identity":
        envelope = crypto.encrypt(SECRET_TEXT, [identity.recipient])
        assert ok("decrypt", "-i", path, stdin=envelope) == SECRET_TEXT
    else:
        assert crypto.decrypt(ok("encrypt", "-R", recipients, stdin=SECRET_TEXT), [identity]) == SECRET_TEXT


@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
def test_output_onto_the_input_file_never_destroys_it(
    command: str, alice: tuple[crypto.X25519Identity, Path], tmp_path: Path
) -> None:
    identity, identity_path = alice
    path = tmp_path / "tip.bin"
    original = SECRET_TEXT if command == "encrypt" else crypto.encrypt(SECRET_TEXT, [identity.recipient])
    path.write_bytes(original)
    if command == "encrypt":
        result = cli("encrypt", "-r", str(identity.recipient), "-o", path, path)
    else:
        result = cli("decrypt", "-i", identity_path, "-o", path, path)
    # Either refuse and keep the file, or do the job in full; never report success over a lost input.
    if result.returncode != 0:
        assert path.read_bytes() == original
    else:
        done = path.read_bytes()
        assert (crypto.decrypt(done, [identity]) if command == "encrypt" else done) == SECRET_TEXT


# --- help --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        ("keygen", ["-o"]),
        ("encrypt", ["-r", "-R", "-o", "INPUT"]),
        ("decrypt", ["-i", "-o", "INPUT"]),
    ],
)
def test_help_on_each_subcommand(command: str, flags: list[str]) -> None:
    result = cli(command, "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert text.startswith(f"usage: {PROG} {command}")
    for flag in flags:
        assert flag in text, flag
    assert result.stderr == b""


def test_help_lists_the_subcommands() -> None:
    text = ok("--help").decode()
    for command in ("keygen", "encrypt", "decrypt"):
        assert command in text
