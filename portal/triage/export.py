"""Exporting a tip: as an age file to a key the officer chooses, or as a page to print.

The age export is a tar archive (tip.txt with the answers, contact details, conversation and notes, and
files/ with every file) encrypted to the officer's recipient, so it opens offline with `age -d` or
`python -m crypto decrypt`. It is built in a temporary file that only ever holds ciphertext: the archive
is written through the encryptor as it is made.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from typing import BinaryIO

from sqlmodel import Session

import crypto
from portal.audit import log as audit
from portal.keyring.services import DeskKeyrings
from portal.triage import services as triage

ANSWER_LABELS = (
    ("what", "What happened"),
    ("when", "When"),
    ("where", "Where"),
    ("how_known", "How known"),
    ("who", "Who is involved"),
)


class _EncryptingWriter(io.RawIOBase):
    """A write-only file whose bytes are encrypted on the way to `sink` (ciphertext only)."""

    def __init__(self, recipient: crypto.X25519Recipient, sink: BinaryIO) -> None:
        self._encryptor = crypto.Encryptor([recipient])
        self._sink = sink
        self._sink.write(self._encryptor.start())

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._sink.write(self._encryptor.update(bytes(data)))
        return len(data)

    def finish(self) -> None:
        self._sink.write(self._encryptor.finalize())


def tip_text(opened: triage.OpenedTip) -> str:
    """The tip as plain text for the archive: field names in English, the tipster's words as written."""
    tip = opened.tip
    lines = [
        f"Case number: {tip.case_number}",
        f"Received: {tip.created_at.isoformat(timespec='minutes')}",
        f"Category: {tip.category}",
        f"Municipality: {opened.municipality_name}",
        f"Language of the form: {tip.language}",
        f"Taken by phone: {'yes' if tip.taken_by_phone else 'no'}",
        f"Desks: {', '.join(d.name for d in opened.desks)}",
        f"Status: {tip.status}" + (f" ({tip.outcome})" if tip.outcome else ""),
        "",
    ]
    for key, label in ANSWER_LABELS:
        lines += [f"{label}:", opened.answers.get(key, ""), ""]
    lines += ["Contact details:", opened.contact or "(none given)", "", "Conversation:"]
    for entry in opened.conversation:
        author = entry.organisation_name if entry.author == "desk" else "Tipster"
        lines += [f"--- {author}, {entry.created_at.isoformat(timespec='minutes')}", entry.text, ""]
    lines += ["Internal notes:"]
    for note in opened.notes:
        lines += [f"--- {note.author}, {note.created_at.isoformat(timespec='minutes')}", note.text, ""]
    lines += ["Files:"] + [f"files/{f.file_id}-{f.name} ({f.size} bytes)" for f in opened.files]
    return "\n".join(lines) + "\n"


# What file systems take for one name (ext4, NTFS in UTF-16 units, APFS): longer ones cannot be unpacked.
MAX_NAME_BYTES = 255


def archive_name(file_id: str, name: str) -> str:
    """`files/<id>-<name>`: one path component of at most 255 bytes, with no separator of any system.

    Upload names are cleaned already (portal.formdata.safe_file_name), but 255 characters can be 1020 bytes,
    which `tar -x` cannot create, and a backslash is a separator to Windows tools (found by
    tests/attacks/test_hostile_names_and_markup.py). A long name keeps its extension.
    """
    name = name.replace("/", "_").replace("\\", "_")
    budget = MAX_NAME_BYTES - len(file_id.encode()) - 1
    if len(name.encode()) > budget:
        stem, dot, extension = name.rpartition(".")
        suffix = dot + extension if dot and stem and len((dot + extension).encode()) <= 16 else ""
        stem = name[: len(name) - len(suffix)]
        name = stem.encode()[: budget - len(suffix.encode())].decode("utf-8", "ignore") + suffix
    return f"files/{file_id}-{name}"


def export_to_age(
    db: Session, *, tip_id: str, recipient: crypto.X25519Recipient, staff_id: int, actor: str,
    desk_keys: DeskKeyrings,
) -> tuple[str, BinaryIO]:  # fmt: skip
    """The case number, and an age file (an anonymous temporary file, rewound) of the tip and its files."""
    opened = triage.open_tip(db, tip_id=tip_id, staff_id=staff_id, actor=actor, desk_keys=desk_keys)
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who streams and closes it
    writer = _EncryptingWriter(recipient, spool)
    with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        text = tip_text(opened).encode("utf-8")
        info = tarfile.TarInfo("tip.txt")
        info.size = len(text)
        archive.addfile(info, io.BytesIO(text))
        for entry in opened.files:
            meta, chunks = triage.open_file(
                db, tip_id=tip_id, file_id=entry.file_id, actor=None, desk_keys=desk_keys
            )
            info = tarfile.TarInfo(archive_name(entry.file_id, entry.name))
            info.size = int(str(meta["size"]))
            archive.addfile(info, io.BufferedReader(_ChunkReader(chunks)))
    writer.finish()
    audit.record(db, "tip.exported", actor=actor, tip_id=opened.tip.id, detail={"to": str(recipient)})
    spool.seek(0)
    return opened.tip.case_number, spool


class _ChunkReader(io.RawIOBase):
    """Reads an iterator of verified plaintext chunks as a file (for tarfile.addfile)."""

    def __init__(self, chunks: object) -> None:
        self._chunks = iter(chunks)  # type: ignore[call-overload]
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
