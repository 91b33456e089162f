"""What the database must hold after the kills: every confirmed tip and message whole, nothing half-written.

Tips are opened as the back office opens them: the desks' keys come from the organisations' recovery
identities (written by `lykta demo --accounts-json`), and the triage services decrypt the answers, the
conversation and every file, chunk by chunk with each chunk authenticated. Nothing here writes: no tip is
marked read and no audit entry is added, so the audit chain checked afterwards is the server's own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import NoResultFound
from sqlmodel import Session, select

import crypto
from portal.db import read_session
from portal.keyring.services import DeskKeyrings, identities_for, recovery_keyring
from portal.network.models import Desk, Organisation
from portal.submission import services as tips
from portal.submission.models import Tip
from portal.triage import services as triage
from tests.crash.workload import MessageAttempt, Outcomes, SentFile, TipAttempt

# Each query lists rows that a half-written tip, message or file would leave behind; all must be empty.
HALF_WRITTEN = {
    "a stored file without all its chunks, numbered 0 .. chunk_count - 1": """
        SELECT f.id FROM storedfile f LEFT JOIN filechunk c ON c.file_id = f.id
        GROUP BY f.id, f.chunk_count
        HAVING COUNT(c.id) <> f.chunk_count OR MIN(c.seq) <> 0 OR MAX(c.seq) <> f.chunk_count - 1""",
    "a chunk without its file": """
        SELECT c.id FROM filechunk c LEFT JOIN storedfile f ON f.id = c.file_id WHERE f.id IS NULL""",
    "a file without its tip": """
        SELECT f.id FROM storedfile f LEFT JOIN tip t ON t.id = f.tip_id WHERE t.id IS NULL""",
    "a file of a message that is missing or belongs to another tip": """
        SELECT f.id FROM storedfile f LEFT JOIN message m ON m.id = f.message_id
        WHERE f.message_id IS NOT NULL AND (m.id IS NULL OR m.tip_id <> f.tip_id)""",
    "a message without its tip": """
        SELECT m.id FROM message m LEFT JOIN tip t ON t.id = m.tip_id WHERE t.id IS NULL""",
    "a recipient row without its tip": """
        SELECT r.tip_id FROM tiprecipient r LEFT JOIN tip t ON t.id = r.tip_id WHERE t.id IS NULL""",
    "a tip without recipients": """
        SELECT t.id FROM tip t LEFT JOIN tiprecipient r ON r.tip_id = t.id WHERE r.tip_id IS NULL""",
    # What the same transactions write beside the tip: its audit entries, statistics facts, notifications.
    # No tip is deleted in this test, so none of them may point at a tip that is not there.
    "a tip without exactly one `tip.received` audit entry": """
        SELECT t.id FROM tip t LEFT JOIN auditentry a ON a.tip_id = t.id AND a.action = 'tip.received'
        GROUP BY t.id HAVING COUNT(a.seq) <> 1""",
    "a tip whose tipster messages and `tip.tipster-message` audit entries differ in number": """
        SELECT t.id FROM tip t
        WHERE (SELECT COUNT(*) FROM message m WHERE m.tip_id = t.id AND m.author = 'tipster')
           <> (SELECT COUNT(*) FROM auditentry a
               WHERE a.tip_id = t.id AND a.action = 'tip.tipster-message')""",
    "an audit entry about a tip that is not there": """
        SELECT a.seq FROM auditentry a LEFT JOIN tip t ON t.id = a.tip_id
        WHERE a.tip_id IS NOT NULL AND t.id IS NULL""",
    "a recipient desk without its statistics fact": """
        SELECT r.tip_id FROM tiprecipient r
        LEFT JOIN tipfact f ON f.tip_id = r.tip_id AND f.desk_id = r.desk_id
        WHERE f.id IS NULL""",
    "a statistics fact without its tip": """
        SELECT f.id FROM tipfact f LEFT JOIN tip t ON t.id = f.tip_id WHERE t.id IS NULL""",
    "a notification about a tip that is not there": """
        SELECT n.id FROM notification n LEFT JOIN tip t ON t.id = n.tip_id WHERE t.id IS NULL""",
}


def half_written_rows(engine: Engine) -> list[str]:
    problems = []
    with engine.connect() as conn:
        for what, query in HALF_WRITTEN.items():
            rows = conn.execute(text(query)).all()
            if rows:
                problems.append(f"{len(rows)} x {what}: {[r[0] for r in rows[:5]]}")
    return problems


def _desk_keys(db: Session, accounts: dict[str, Any]) -> DeskKeyrings:
    recovery = {
        o["code"]: crypto.parse_identities(o["recovery_identity"])[0] for o in accounts["organisations"]
    }
    keys: dict[int, list[crypto.X25519Identity]] = {}
    for desk in db.exec(select(Desk)):
        organisation = db.get(Organisation, desk.organisation_id)
        assert organisation is not None and desk.id is not None
        keys[desk.id] = recovery_keyring(db, desk, recovery[organisation.code])
    return keys


def _files_as_stored(
    db: Session, tip: Tip, entries: Iterable[tips.FileEntry], desk_keys: DeskKeyrings
) -> set[SentFile]:
    """Each file decrypted in full (every chunk authenticated on the way) and hashed."""
    found = set()
    for entry in entries:
        meta, chunks = triage.open_file(
            db, tip_id=tip.id, file_id=entry.file_id, actor=None, desk_keys=desk_keys
        )
        digest, size = hashlib.sha256(), 0
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
        found.add(SentFile(str(meta["name"]), digest.hexdigest(), size))
    return found


class Verdict:
    """The problems found, in words, and how many tips and messages were looked at."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.tips_stored = 0
        self.messages_stored = 0
        self.files_checked = 0


def check_tips(engine: Engine, accounts: dict[str, Any], outcomes: list[Outcomes]) -> Verdict:
    """Open every tip in the database and hold it against what the residents tried and were told."""
    verdict = Verdict()
    tried = {t.marker: t for o in outcomes for t in o.tips}
    messages_tried = {m.marker: m for o in outcomes for m in o.messages}
    seen_tips: set[str] = set()
    seen_messages: set[str] = set()
    with read_session(engine) as db:
        desk_keys = _desk_keys(db, accounts)
        for tip in db.exec(select(Tip)).all():
            verdict.tips_stored += 1
            try:
                tip, mine = triage.reachable_tip(db, tip.id, desk_keys)
                identities = identities_for(desk_keys, mine)
                marker = tips.read_answers(tip, identities)["what"]
                attempt: TipAttempt | None = tried.get(marker)
                if attempt is None:
                    verdict.problems.append(f"tip {tip.case_number}: no resident sent {marker!r}")
                    continue
                seen_tips.add(marker)
                if attempt.confirmed and attempt.case_number != tip.case_number:
                    verdict.problems.append(
                        f"{marker}: case number {tip.case_number}, not {attempt.case_number}"
                    )
                files = _files_as_stored(db, tip, tips.tip_files(db, tip, identities), desk_keys)
                verdict.files_checked += len(files)
                if files != set(attempt.files):
                    verdict.problems.append(f"{marker}: files {sorted(files)} instead of {attempt.files}")
                for entry in tips.conversation(db, tip, identities):
                    if entry.author != "tipster":
                        continue  # the desk's automatic acknowledgement
                    verdict.messages_stored += 1
                    message: MessageAttempt | None = messages_tried.get(entry.text)
                    if message is None or message.tip_marker != marker:
                        verdict.problems.append(f"{marker}: a message nobody sent to it: {entry.text!r}")
                        continue
                    seen_messages.add(entry.text)
                    stored = _files_as_stored(db, tip, entry.files, desk_keys)
                    verdict.files_checked += len(stored)
                    if stored != set(message.files):
                        verdict.problems.append(
                            f"{entry.text}: files {sorted(stored)} instead of {message.files}"
                        )
            except (triage.NotAllowedError, crypto.CryptoError, NoResultFound, KeyError, ValueError) as error:
                verdict.problems.append(
                    f"tip {tip.case_number} does not open: {type(error).__name__} {error}"
                )
    for marker, attempt in tried.items():
        if attempt.confirmed and marker not in seen_tips:
            verdict.problems.append(f"confirmed tip {attempt.case_number} ({marker}) is missing")
    for marker, message in messages_tried.items():
        if message.confirmed and marker not in seen_messages:
            verdict.problems.append(f"confirmed message {marker} is missing")
    return verdict
