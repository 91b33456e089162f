"""The canary test (DESIGN 4, issue 3): nothing a resident sends reaches a disk or a log in the clear.

Unique random strings go into every form field, the mailbox message, every file body and every file name;
a tip and a mailbox reply are sent through the app; then every byte the app could have written is searched
for them, in UTF-8, UTF-16 and base64 (at every alignment) and hex: the database (the SQLite file with its
-wal and -shm, or every row of every PostgreSQL table), the data directory, the temporary directory, every
file the process holds open while a large upload is half-way through its parse (anonymous temporary files
included), and every log record at every level. The reply code must not be found either. Finally the desk
decrypts the tip with its key and finds every canary, so a tip that was silently not stored fails too.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

import crypto
from portal.keyring.models import DeskKeyGrant
from portal.keyring.services import open_grant
from portal.network.models import Desk, Organisation
from portal.submission import services as tips
from portal.submission.models import FileChunk, StoredFile, Tip, TipRecipient
from portal.submission.uploads import FILE_KIND, FILE_META_KIND, file_subject
from portal.web import Services
from tests.portal.submission.browser import (
    ANSWERS,
    element_text,
    form_token,
    log_in,
    post_in_pieces,
    review,
)

# Set to DEBUG for the test: the root logger ("") and the loggers of the code a request runs through.
LOGGERS = ("", "lykta", "portal", "uvicorn", "uvicorn.error", "sqlalchemy", "python_multipart")
PIECE = 64 * 1024  # how the streaming upload is cut: the parse is searched between pieces
LARGE_FILE_BYTES = 1_200_000  # over 200 KiB, and long enough for many searches half-way through


# --- what to look for ---------------------------------------------------------------------------------------


def encoded_forms(value: str) -> dict[str, bytes]:
    """`value` as it could appear in bytes: UTF-8, UTF-16 either way, hex, and base64 at each alignment.

    A base64 string holds `value` at one of three alignments; for each, the characters that depend only on
    `value` (not on the bytes before it or on padding) are the needle, in both base64 alphabets.
    """
    raw = value.encode("utf-8")
    forms = {
        "utf-8": raw,
        "utf-16-le": value.encode("utf-16-le"),
        "utf-16-be": value.encode("utf-16-be"),
        "hex": raw.hex().encode("ascii"),
    }
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        middle = encoded[4 if offset else 0 : (offset + len(raw)) // 3 * 4]
        forms[f"base64@{offset}"] = middle
        forms[f"base64url@{offset}"] = middle.replace(b"+", b"-").replace(b"/", b"_")
    return forms


@dataclass
class Needles:
    """Named byte strings that must not be found; `search` says where they were."""

    forms: dict[str, bytes] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        for encoding, needle in encoded_forms(value).items():
            self.forms[f"{name} ({encoding})"] = needle

    def search(self, data: bytes, where: str) -> list[str]:
        found = []
        for name, needle in self.forms.items():
            at = data.find(needle)
            if at >= 0:
                found.append(f"{name} in {where} at {at}: {data[max(0, at - 40) : at + 80]!r}")
        return found


@dataclass(frozen=True)
class Canaries:
    """One random prefix shared by every canary (so one search finds any of them), a label each."""

    prefix: str
    fields: dict[str, str]
    message: str
    file_names: dict[str, str]
    bodies: dict[str, bytes]

    def label(self, name: str) -> str:
        return f"{self.prefix}{name}"


def png_with_text(canary: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", canary)
    info.add_text("Author", canary + "author")
    out = io.BytesIO()
    Image.linear_gradient("L").resize((40, 30)).convert("RGB").save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def jpeg_with_exif(canary: str) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = canary + "make"  # Make
    exif[0x0110] = canary + "model"  # Model
    exif[0x013B] = canary + "artist"  # Artist
    out = io.BytesIO()
    Image.linear_gradient("L").resize((40, 30)).convert("RGB").save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def large_body(canary: str) -> bytes:
    """Random bytes with the canary every 100 kB, some straddling the parser's and STREAM's 64 KiB pieces."""
    out = bytearray()
    while len(out) < LARGE_FILE_BYTES:
        out += os.urandom(100_000 - len(canary) // 2) + canary.encode()
    return bytes(out[: LARGE_FILE_BYTES - len(canary)]) + canary.encode()


def make_canaries() -> Canaries:
    prefix = f"Kanarie{secrets.token_hex(8)}"

    def c(name: str) -> str:
        return f"{prefix}{name}"

    return Canaries(
        prefix=prefix,
        fields={name: c(name) for name in ("what", "when", "where", "who", "contact")},
        message=c("message"),
        file_names={key: c(f"name{key}") + suffix for key, suffix in _FILE_SUFFIXES.items()},
        bodies={
            "text": f"Anteckningar {c('bodytext')} slut".encode(),
            "large": large_body(c("bodylarge")),
            "png": png_with_text(c("bodypng")),
            "jpeg": jpeg_with_exif(c("bodyjpeg")),
            "reply": f"Svar {c('bodyreply')}".encode(),
        },
    )


_FILE_SUFFIXES = {"text": ".txt", "large": ".bin", "png": ".png", "jpeg": ".jpg", "reply": ".txt"}
TIP_FILES = ("text", "large", "png", "jpeg")
PHOTOS = ("png", "jpeg")


# --- where to look ------------------------------------------------------------------------------------------


def files_under(directory: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            yield str(path), path.read_bytes()


def open_files() -> Iterator[tuple[str, bytes]]:
    """Every regular file this process holds open, read through /proc (anonymous temporary files too)."""
    for fd in os.listdir("/proc/self/fd"):
        proc_path = f"/proc/self/fd/{fd}"
        try:
            if not stat.S_ISREG(os.stat(proc_path).st_mode):
                continue
            target = os.readlink(proc_path)
            with open(proc_path, "rb") as f:
                yield f"fd {fd} -> {target}", f.read()
        except OSError:
            continue  # closed since the listing


def log_lines(records: list[logging.LogRecord]) -> Iterator[tuple[str, bytes]]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in records:
        line = formatter.format(record) + " " + repr(record.__dict__)
        yield f"log record {record.name}:{record.levelname}", line.encode("utf-8", "backslashreplace")


def database_rows(engine: Engine) -> Iterator[tuple[str, bytes]]:
    """Every row of every table, as a dump would hold it (bytea/BLOB as its bytes)."""
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                values = [bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row]
                yield f"table {table}", b"\x1f".join(values)


def search_all(needles: Needles, sources: Iterator[tuple[str, bytes]]) -> list[str]:
    found: list[str] = []
    for where, data in sources:
        found += needles.search(data, where)
    return found


# --- the desk's view ----------------------------------------------------------------------------------------


def desk_identities(db: Session, tip: Tip, demo_accounts: dict[str, Any]) -> list[crypto.X25519Identity]:
    """The keys of the tip's desks, opened from their recovery grants with the organisations' recovery keys.

    Found by the grant, not by a staff login, so that the check depends on nothing but the tip's routing.
    """
    recovery = {
        o["code"]: crypto.X25519Identity.parse(o["recovery_identity"]) for o in demo_accounts["organisations"]
    }
    identities = []
    for recipient in db.exec(select(TipRecipient).where(TipRecipient.tip_id == tip.id)):
        desk = db.get(Desk, recipient.desk_id)
        assert desk is not None
        organisation = db.get(Organisation, desk.organisation_id)
        assert organisation is not None
        grant = db.exec(
            select(DeskKeyGrant).where(
                DeskKeyGrant.desk_id == desk.id, DeskKeyGrant.recovery_organisation_id == organisation.id
            )
        ).one()
        identities.append(open_grant(grant, desk, recovery[organisation.code]))
    assert identities, "the tip has no desk"
    return identities


def decrypt_file(db: Session, stored: StoredFile, identity: crypto.X25519Identity) -> tuple[str, bytes]:
    chunks = db.exec(
        select(FileChunk).where(FileChunk.file_id == stored.id).order_by(col(FileChunk.seq))
    ).all()
    assert len(chunks) == stored.chunk_count
    envelope = stored.header + b"".join(chunk.data for chunk in chunks)
    subject = file_subject(stored.tip_id, stored.id)
    content = b"".join(
        crypto.strip_binding([crypto.decrypt(envelope, [identity])], kind=FILE_KIND, subject=subject)
    )
    meta = json.loads(crypto.unseal(stored.meta, kind=FILE_META_KIND, subject=subject, identities=[identity]))
    return str(meta["name"]), content


# --- the tests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-16-be", "hex", "base64", "base64url"])
def test_the_search_finds_each_encoding(encoding: str) -> None:
    """The needles would find a canary written in any of the forms searched for (else the test is blind)."""
    canary = f"Kanarie{secrets.token_hex(8)}what"
    needles = Needles()
    needles.add("what", canary)
    for before in (b"", b"x", b"xy", b"xyz"):
        written = {
            "utf-8": canary.encode(),
            "utf-16-le": canary.encode("utf-16-le"),
            "utf-16-be": canary.encode("utf-16-be"),
            "hex": canary.encode().hex().encode(),
            "base64": base64.b64encode(before + canary.encode() + b"!"),
            "base64url": base64.urlsafe_b64encode(before + canary.encode()),
        }[encoding]
        assert needles.search(b"\0 log: " + written + b" \n", "sample"), (encoding, before)


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory for the temporary files Python's `tempfile` creates during the test. (SQLite reads
    its temporary directory once per process; its temporary files, like every file held open, are searched
    through /proc wherever they are.)"""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def test_no_plaintext_or_reply_code_reaches_disk_or_log(
    temp_dir: Path,
    tmp_path: Path,
    client: TestClient,
    services: Services,
    demo_accounts: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    canaries = make_canaries()
    for key in PHOTOS:  # the photos carry their canaries in metadata, to be removed before encryption
        assert canaries.label(f"body{key}").encode() in canaries.bodies[key]
    needles = Needles()
    needles.add("canary", canaries.prefix)

    # The mid-upload search must see anonymous temporary files: plant one and find it.
    with tempfile.TemporaryFile() as planted:
        planted.write(canaries.label("planted").encode())
        planted.flush()
        assert any("planted" in hit for hit in search_all(needles, open_files()))

    lang = "sv"
    answers = {**ANSWERS, **canaries.fields}
    answers["what"] = f"Försäljning vid torget. {canaries.fields['what']} Det händer varje kväll."

    # A refused attempt with the same canaries goes through the error paths; they log nothing either.
    refused = review(client, lang, {**answers, "municipality": "stockholm"})
    assert refused.status_code == 400

    reviewed = review(client, lang, answers)
    assert reviewed.status_code == 200, reviewed.text
    mid_upload_hits: list[str] = []
    searches = 0

    def search_mid_upload() -> None:
        nonlocal searches
        searches += 1
        mid_upload_hits.extend(search_all(needles, open_files()))
        mid_upload_hits.extend(search_all(needles, files_under(temp_dir)))

    sent = post_in_pieces(
        client,
        f"/{lang}/tip/send",
        data={**answers, "csrf": form_token(reviewed.text, f"/{lang}/tip/send"), "confirm": "yes"},
        files=[
            ("files", (canaries.file_names[key], canaries.bodies[key], "application/octet-stream"))
            for key in TIP_FILES
        ],
        between_pieces=search_mid_upload,
        piece=PIECE,
    )
    assert sent.status_code == 200, sent.text
    assert searches >= LARGE_FILE_BYTES // PIECE, "the upload was not searched half-way through"
    assert not mid_upload_hits, "\n".join(mid_upload_hits)
    code = element_text(sent.text, "reply-code")
    case_number = element_text(sent.text, "case-number")
    digits = code.replace(" ", "")
    needles.add("reply code", digits)
    needles.add("grouped reply code", code)
    needles.add("form-encoded reply code", code.replace(" ", "+"))

    done = client.post(
        f"/{lang}/tip/done",
        data={
            "csrf": form_token(sent.text, f"/{lang}/tip/done"),
            "reply_code": code,
            "case_number": case_number,
            "saved": "yes",
        },
    )
    assert done.status_code == 200

    mailbox = log_in(client, lang, code)
    assert mailbox.status_code == 200 and case_number in mailbox.text
    replied = post_in_pieces(
        client,
        f"/{lang}/mailbox/reply",
        data={"csrf": form_token(mailbox.text, f"/{lang}/mailbox/reply"), "message": canaries.message},
        files=[("files", (canaries.file_names["reply"], canaries.bodies["reply"], "text/plain"))],
        between_pieces=search_mid_upload,
        piece=PIECE,
    )
    assert replied.status_code == 303, replied.text
    shown = client.get(f"/{lang}/mailbox")
    assert canaries.message in shown.text and canaries.file_names["reply"] in shown.text
    assert not mid_upload_hits, "\n".join(mid_upload_hits)

    # Every byte written: files (the database, its -wal and -shm, the data and temp directories), files
    # still open, every table row, every log record.
    engine = services.engine
    if services.settings.database_url.startswith("sqlite"):
        written = {Path(path).name for path, _data in files_under(tmp_path)}
        assert {"lykta.sqlite3", "lykta.sqlite3-wal", "lykta.sqlite3-shm"} <= written
    found = search_all(needles, files_under(tmp_path))
    found += search_all(needles, open_files())
    found += search_all(needles, database_rows(engine))
    assert caplog.records, "no log record was captured: the log search would be blind"
    assert any(r.name == "lykta.access" for r in caplog.records)
    found += search_all(needles, log_lines(caplog.records))
    engine.dispose()  # SQLite checkpoints the WAL into the main file: search that too
    found += search_all(needles, files_under(tmp_path))
    assert not found, "\n".join(found)

    # And the tip is there: its desks decrypt every canary, and the photos' metadata is gone.
    with Session(engine) as db:
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
        identities = desk_identities(db, tip, demo_accounts)
        for identity in identities:
            stored_answers = tips.read_answers(tip, identity)
            for name in ("what", "when", "where", "who"):
                assert canaries.fields[name] in stored_answers[name]
            assert tip.contact is not None
            contact = crypto.unseal(
                tip.contact, kind=tips.CONTACT_KIND, subject=tip.id, identities=[identity]
            )
            assert contact.decode() == canaries.fields["contact"]
            conversation = tips.conversation(db, tip, identity)
            assert [e.text for e in conversation if e.author == "tipster"] == [canaries.message]
            stored_files = db.exec(select(StoredFile).where(StoredFile.tip_id == tip.id)).all()
            contents = dict(decrypt_file(db, stored, identity) for stored in stored_files)
            assert set(contents) == set(canaries.file_names.values())
            for key in ("text", "large", "reply"):
                assert contents[canaries.file_names[key]] == canaries.bodies[key]
            for key in PHOTOS:
                cleaned = contents[canaries.file_names[key]]
                assert canaries.prefix.encode() not in cleaned
                with Image.open(io.BytesIO(cleaned)) as image:
                    assert image.size == (40, 30)
