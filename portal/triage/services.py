"""The back office's work on tips: the inbox, opening a tip, replies, notes, status and assignment.

Reach is decided by keys, not by flags: a staff member sees the tips of the desks whose key they hold
(a grant they can open, plus membership). An administrator without a grant therefore has no tip to
list and no key to open one with. Every action is written to the audit log in the same transaction.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_
from sqlalchemy.orm import InstrumentedAttribute
from sqlmodel import Session, col, select

import crypto
from portal.accounts.models import StaffAccount
from portal.audit import log as audit
from portal.db import utcnow
from portal.i18n import N_
from portal.keyring.services import DeskKeyrings, identities_for
from portal.network.models import Desk, Municipality
from portal.retention import services as retention
from portal.stats.facts import record_tip
from portal.submission import services as tips
from portal.submission.models import FileChunk, StoredFile, Tip, TipRecipient
from portal.submission.uploads import FILE_KIND, FILE_META_KIND, file_subject
from portal.triage.models import CannedReply, TipLabel, TipNote, TipRead

PAGE_SIZE = 50
NOTE_KIND = "note"
STATUS_LABELS = {
    "new": N_("New"),
    "acknowledged": N_("Acknowledged"),
    "in-progress": N_("In progress"),
    "closed": N_("Closed"),
}
OUTCOME_LABELS = {
    "passed-to-investigation": N_("Passed on to an investigation"),
    "action-taken": N_("Action taken (supervision, repayment, other)"),
    "no-action": N_("No action possible"),
    "unfounded": N_("Unfounded"),
    "duplicate": N_("Duplicate of another tip"),
}
HANDOVER_LABELS = {
    "requested": N_("waiting for the tipster"),
    "approved": N_("approved by the tipster"),
    "declined": N_("declined by the tipster"),
    "done": N_("handed over"),
}
# Labels come from a fixed list, not free text: they are stored in clear, and free text in clear is where
# a name or an address would end up.
TIP_LABELS = {
    "urgent": N_("urgent"),
    "needs-translation": N_("needs translation"),
    "linked": N_("linked to another case"),
    "waiting-external": N_("waiting for another authority"),
    "repeat": N_("repeat tip"),
}
STATUSES = tuple(STATUS_LABELS)
OUTCOMES = tuple(OUTCOME_LABELS)
# Not closed, spelled as a list: `status IN (...)` lets the status index seek where `!=` would scan.
OPEN_STATUSES = tuple(status for status in STATUSES if status != "closed")
# sort name -> (the TipRecipient copy sorted on, descending). The tip id breaks ties in the same direction,
# so that one index (desk, key, tip id) gives the order, read forwards or backwards.
SORTS: dict[str, tuple[InstrumentedAttribute[Any], bool]] = {
    "newest": (TipRecipient.tip_created_at, True),  # type: ignore[dict-item]
    "oldest": (TipRecipient.tip_created_at, False),  # type: ignore[dict-item]
    "acknowledge-by": (TipRecipient.acknowledge_by, False),  # type: ignore[dict-item]
    "feedback-by": (TipRecipient.feedback_by, False),  # type: ignore[dict-item]
}


class NotAllowedError(Exception):
    """The staff member holds no key for this tip (or it does not exist: the two look the same)."""


@dataclasses.dataclass(frozen=True)
class InboxFilter:
    status: str = ""
    category: str = ""
    municipality: str = ""
    assignee: str = ""  # "", "me", "none"
    deadline: str = ""  # "", "acknowledge-overdue", "feedback-overdue", "due-soon"
    desk: int | None = None
    sort: str = "newest"
    page: int = 1

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> InboxFilter:
        def choice(name: str, allowed: Sequence[str]) -> str:
            value = query.get(name, "")
            return value if value in allowed else ""

        try:
            page = max(1, min(10_000, int(query.get("page", "1"))))
        except ValueError:
            page = 1
        try:
            desk = int(query["desk"]) if query.get("desk") else None
        except ValueError:
            desk = None
        return cls(
            status=choice("status", STATUSES),
            category=query.get("category", "")[:64],
            municipality=query.get("municipality", "")[:64],
            assignee=choice("assignee", ("me", "none")),
            deadline=choice("deadline", ("acknowledge-overdue", "feedback-overdue", "due-soon")),
            desk=desk,
            sort=query.get("sort", "newest") if query.get("sort", "newest") in SORTS else "newest",
            page=page,
        )


@dataclasses.dataclass(frozen=True)
class InboxRow:
    tip: Tip
    municipality_name: str
    unread: bool


@dataclasses.dataclass(frozen=True)
class InboxPage:
    rows: list[InboxRow]
    total: int
    page: int
    pages: int
    counts_per_desk: dict[int, int]


def inbox(db: Session, *, staff_id: int, desk_ids: Sequence[int], filters: InboxFilter) -> InboxPage:
    """One page of the tips routed to `desk_ids`, filtered and sorted in the database.

    Filtering, sorting, paging and counting read TipRecipient alone: it carries copies of the tip's values
    (INBOX_COPIES) and an index per filter that starts with the desk (migration 0003). Only the tips of
    the page itself are then loaded, at most PAGE_SIZE of them, with their municipality and read marker.
    """
    recipient = TipRecipient
    desks = [d for d in desk_ids if filters.desk is None or d == filters.desk] or [-1]
    # A tip routed to two of my desks has a row for each: with several desks, count and page distinct tips.
    several = len(desks) > 1
    conditions: list[ColumnElement[bool]] = [
        col(recipient.desk_id).in_(desks) if several else col(recipient.desk_id) == desks[0]
    ]
    now = utcnow()
    if filters.status:
        conditions.append(col(recipient.tip_status) == filters.status)
    if filters.category:
        conditions.append(col(recipient.category) == filters.category)
    if filters.municipality:
        municipality = select(Municipality.id).where(Municipality.code == filters.municipality)
        conditions.append(col(recipient.municipality_id) == municipality.scalar_subquery())
    if filters.assignee == "me":
        conditions.append(col(recipient.assignee_id) == staff_id)
    elif filters.assignee == "none":
        conditions.append(col(recipient.assignee_id).is_(None))
    if filters.deadline == "acknowledge-overdue":
        conditions += [col(recipient.tip_status) == "new", col(recipient.acknowledge_by) < now]
    elif filters.deadline == "feedback-overdue":
        conditions += [col(recipient.tip_status).in_(OPEN_STATUSES), col(recipient.feedback_by) < now]
    elif filters.deadline == "due-soon":
        soon = now + datetime.timedelta(days=2)
        conditions.append(
            or_(
                and_(col(recipient.tip_status) == "new", col(recipient.acknowledge_by) < soon),
                and_(col(recipient.tip_status).in_(OPEN_STATUSES), col(recipient.feedback_by) < soon),
            )
        )
    counted = func.count(func.distinct(recipient.tip_id)) if several else func.count()
    total = db.exec(select(counted).select_from(recipient).where(*conditions)).one()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(filters.page, pages)
    offset = (page - 1) * PAGE_SIZE
    size = max(0, min(PAGE_SIZE, total - offset))
    key, descending = SORTS[filters.sort]
    # A page past the middle is read from the other end, so the database skips fewer index entries.
    backwards = offset > total // 2
    if backwards:
        offset, descending = total - offset - size, not descending
    order = (key.desc(), col(recipient.tip_id).desc()) if descending else (key, col(recipient.tip_id))
    ids_query = select(recipient.tip_id, key).where(*conditions).order_by(*order).offset(offset).limit(size)
    ids = [tip_id for tip_id, _ in db.exec(ids_query.distinct() if several else ids_query)] if size else []
    if backwards:
        ids.reverse()
    read = and_(col(TipRead.tip_id) == col(Tip.id), col(TipRead.staff_id) == staff_id)
    loaded = {
        tip.id: (tip, name, read_at)
        for tip, name, read_at in db.exec(
            select(Tip, Municipality.name, TipRead.read_at)
            .join(Municipality, col(Municipality.id) == col(Tip.municipality_id))
            .outerjoin(TipRead, read)
            .where(col(Tip.id).in_(ids or [""]))
        )
    }
    counts = dict(
        db.exec(
            select(recipient.desk_id, func.count())
            .where(col(recipient.desk_id).in_(desk_ids or [-1]), col(recipient.tip_status).in_(OPEN_STATUSES))
            .group_by(col(recipient.desk_id))
        ).all()
    )
    return InboxPage(
        rows=[
            InboxRow(
                tip=tip,
                municipality_name=name,
                unread=read_at is None or read_at < tip.last_tipster_activity_at,
            )
            for tip, name, read_at in (loaded[tip_id] for tip_id in ids if tip_id in loaded)
        ],
        total=total,
        page=page,
        pages=pages,
        counts_per_desk=counts,
    )


def reachable_tip(db: Session, tip_id: str, desk_keys: DeskKeyrings) -> tuple[Tip, list[int]]:
    """The tip and the ids of its desks this person holds keys for; NotAllowedError if none."""
    tip = db.get(Tip, tip_id[:32])
    if tip is None:
        raise NotAllowedError()
    desk_ids = list(db.exec(select(TipRecipient.desk_id).where(TipRecipient.tip_id == tip.id)))
    mine = [d for d in desk_ids if d in desk_keys]
    if not mine:
        raise NotAllowedError()
    return tip, mine


@dataclasses.dataclass(frozen=True)
class NoteEntry:
    author: str
    created_at: datetime.datetime
    text: str


@dataclasses.dataclass(frozen=True)
class OpenedTip:
    tip: Tip
    answers: dict[str, str]
    contact: str | None
    files: tuple[tips.FileEntry, ...]
    conversation: list[tips.ConversationEntry]
    notes: list[NoteEntry]
    desks: list[Desk]
    municipality_name: str


def open_tip(db: Session, *, tip_id: str, staff_id: int, actor: str, desk_keys: DeskKeyrings) -> OpenedTip:
    """Decrypt a tip for reading, mark it read for this officer, and audit the opening."""
    tip, mine = reachable_tip(db, tip_id, desk_keys)
    identities = identities_for(desk_keys, mine)
    contact = (
        crypto.unseal(tip.contact, kind=tips.CONTACT_KIND, subject=tip.id, identities=identities).decode(
            "utf-8"
        )
        if tip.contact
        else None
    )
    notes = []
    for note in db.exec(select(TipNote).where(TipNote.tip_id == tip.id).order_by(col(TipNote.created_at))):
        author = db.get(StaffAccount, note.staff_id)
        text = crypto.unseal(note.body, kind=NOTE_KIND, subject=f"{tip.id}:{note.id}", identities=identities)
        notes.append(
            NoteEntry(
                author=author.username if author else "?",
                created_at=note.created_at,
                text=text.decode("utf-8"),
            )
        )
    desks = list(
        db.exec(
            select(Desk)
            .join(TipRecipient, col(TipRecipient.desk_id) == col(Desk.id))
            .where(TipRecipient.tip_id == tip.id)
        )
    )
    municipality = db.get(Municipality, tip.municipality_id)
    read = db.get(TipRead, (tip.id, staff_id))
    if read is None:
        db.add(TipRead(tip_id=tip.id, staff_id=staff_id))
    else:
        read.read_at = utcnow()
        db.add(read)
    audit.record(db, "tip.opened", actor=actor, tip_id=tip.id)
    return OpenedTip(
        tip=tip,
        answers=tips.read_answers(tip, identities),
        contact=contact,
        files=tips.tip_files(db, tip, identities)
        + tuple(f for e in tips.conversation(db, tip, identities) for f in e.files),
        conversation=tips.conversation(db, tip, identities),
        notes=notes,
        desks=desks,
        municipality_name=municipality.name if municipality else "",
    )


def reply(
    db: Session,
    *,
    tip_id: str,
    text: str,
    desk_id: int | None,
    actor: str,
    desk_keys: DeskKeyrings,
) -> None:
    """A desk's message to the tipster, sealed to the tipster key and the tip's desks."""
    tip, mine = reachable_tip(db, tip_id, desk_keys)
    chosen = desk_id if desk_id in mine else mine[0]
    tips.store_message(db, tip=tip, message_id=tips.new_id(), author="desk", text=text, desk_id=chosen)
    audit.record(db, "tip.replied", actor=actor, tip_id=tip.id, desk_id=chosen)


def add_note(
    db: Session,
    *,
    tip_id: str,
    text: str,
    staff_id: int,
    actor: str,
    desk_keys: DeskKeyrings,
) -> None:
    """An internal note, sealed to the tip's desks only (never the tipster key)."""
    tip, _mine = reachable_tip(db, tip_id, desk_keys)
    desk_recipients = tips.tip_recipients(db, tip)[:-1]  # the last is the tipster's: left out on purpose
    note_id = tips.new_id()
    db.add(
        TipNote(
            id=note_id,
            tip_id=tip.id,
            staff_id=staff_id,
            body=crypto.seal(
                text.encode("utf-8"),
                kind=NOTE_KIND,
                subject=f"{tip.id}:{note_id}",
                recipients=desk_recipients,
            ),
        )
    )
    audit.record(db, "tip.noted", actor=actor, tip_id=tip.id)


def set_status(
    db: Session,
    *,
    tip_id: str,
    status: str,
    outcome: str | None,
    actor: str,
    desk_keys: DeskKeyrings,
) -> None:
    if status not in STATUSES or (status == "closed" and outcome not in OUTCOMES):
        raise ValueError("unknown status or outcome")
    tip, _mine = reachable_tip(db, tip_id, desk_keys)
    now = utcnow()
    tip.status = status
    tip.outcome = outcome if status == "closed" else None
    if status != "new" and tip.acknowledged_at is None:
        tip.acknowledged_at = now
    tip.closed_at = now if status == "closed" else None
    db.add(tip)
    tips.copy_inbox_keys(db, tip)
    retention.recompute(db, tip)  # closing starts the retention clock; reopening stops it
    record_tip(db, tip)
    audit.record(
        db, "tip.status", actor=actor, tip_id=tip.id, detail={"status": status, "outcome": tip.outcome}
    )


def assign(
    db: Session,
    *,
    tip_id: str,
    assignee_id: int | None,
    actor: str,
    desk_keys: DeskKeyrings,
) -> None:
    tip, _mine = reachable_tip(db, tip_id, desk_keys)
    tip.assignee_id = assignee_id
    db.add(tip)
    tips.copy_inbox_keys(db, tip)
    audit.record(db, "tip.assigned", actor=actor, tip_id=tip.id, detail={"assignee": assignee_id})


class _StoredPayload(io.RawIOBase):
    """A stored file's header, nonce and chunks read as one stream, one database row at a time."""

    def __init__(self, db: Session, stored: StoredFile) -> None:
        self._db = db
        self._file_id = stored.id
        self._pending = stored.header
        self._next_seq = 0
        self._count = stored.chunk_count

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and self._next_seq < self._count:
            row = self._db.exec(
                select(FileChunk.data).where(
                    FileChunk.file_id == self._file_id, FileChunk.seq == self._next_seq
                )
            ).one()
            self._pending = row
            self._next_seq += 1
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def open_file(
    db: Session,
    *,
    tip_id: str,
    file_id: str,
    actor: str | None,
    desk_keys: DeskKeyrings,
) -> tuple[dict[str, object], Iterator[bytes]]:
    """A file's metadata and its plaintext as verified chunks, read row by row (constant memory).

    The download is audited as `actor`'s; None reads without recording (the caller recorded it already).

    Each STREAM chunk is authenticated before it is yielded; a cut or altered file raises on the way.
    """
    tip, mine = reachable_tip(db, tip_id, desk_keys)
    stored = db.get(StoredFile, file_id[:32])
    if stored is None or stored.tip_id != tip.id:
        raise NotAllowedError()
    identities = identities_for(desk_keys, mine)
    subject = file_subject(tip.id, stored.id)
    meta = json.loads(crypto.unseal(stored.meta, kind=FILE_META_KIND, subject=subject, identities=identities))
    payload = io.BufferedReader(_StoredPayload(db, stored), buffer_size=crypto.CHUNK_SIZE + 16)
    chunks = crypto.strip_binding(crypto.decrypt_chunks(payload, identities), kind=FILE_KIND, subject=subject)
    if actor is not None:
        audit.record(db, "file.downloaded", actor=actor, tip_id=tip.id, detail={"file": stored.id})
    return meta, chunks


def set_labels(
    db: Session,
    *,
    tip_id: str,
    labels: Sequence[str],
    actor: str,
    desk_keys: DeskKeyrings,
) -> None:
    """Replace the tip's labels with `labels` (unknown ones are ignored)."""
    tip, _mine = reachable_tip(db, tip_id, desk_keys)
    wanted = sorted({label for label in labels if label in TIP_LABELS})
    for existing in db.exec(select(TipLabel).where(TipLabel.tip_id == tip.id)):
        db.delete(existing)
    db.flush()
    for label in wanted:
        db.add(TipLabel(tip_id=tip.id, label=label))
    audit.record(db, "tip.labelled", actor=actor, tip_id=tip.id, detail={"labels": wanted})


def labels_of(db: Session, tip_id: str) -> list[str]:
    return list(
        db.exec(select(TipLabel.label).where(TipLabel.tip_id == tip_id).order_by(col(TipLabel.label)))
    )


def canned_replies(db: Session, *, desk_ids: Sequence[int], language: str) -> list[CannedReply]:
    """The prepared answers of these desks in the tipster's language."""
    return list(
        db.exec(
            select(CannedReply)
            .where(col(CannedReply.desk_id).in_(list(desk_ids) or [-1]), CannedReply.language == language)
            .order_by(col(CannedReply.title))
        )
    )
