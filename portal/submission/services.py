"""Storing tips and messages, and reading a mailbox. The only callers of `crypto` on the resident side.

Every plaintext is sealed with a binding line (FORMAT 2): the answers as ("tip", tip id), contact details
as ("contact", tip id), a message as ("message", "tip id:message id"), a file as ("file", "tip id:file id")
and its name and type as ("file-meta", ...). Recipients are always the tip's desks and the tipster key.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import secrets
from collections.abc import Sequence

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

import crypto
from portal.audit import log as audit
from portal.db import id_of, utcnow
from portal.network.models import Desk, Organisation
from portal.network.services import Recipient
from portal.notify import outbox as notify
from portal.retention import services as retention
from portal.stats.facts import record_tip
from portal.submission.forms import TipAnswers
from portal.submission.models import FileChunk, Message, StoredFile, Tip, TipRecipient, inbox_copies
from portal.submission.uploads import FILE_META_KIND, EncryptedFile, file_subject, new_id

TIP_KIND = "tip"
CONTACT_KIND = "contact"
MESSAGE_KIND = "message"
ACKNOWLEDGE_WITHIN = datetime.timedelta(days=7)
FEEDBACK_WITHIN = datetime.timedelta(days=91)
# Case numbers avoid letters and digits that are easy to confuse when read out on the phone.
_CASE_ALPHABET = "ACDEFHJKLMNPRTUVWXY34679"


def new_case_number() -> str:
    """A public, random case number like "K7M4-XR9T": not sequential, so it reveals no volume."""
    chars = "".join(secrets.choice(_CASE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def message_subject(tip_id: str, message_id: str) -> str:
    return f"{tip_id}:{message_id}"


def tip_recipients(db: Session, tip: Tip) -> list[crypto.X25519Recipient]:
    """The keys every envelope of `tip` is sealed to: its desks' and the tipster's."""
    desks = db.exec(
        select(Desk)
        .join(TipRecipient, col(TipRecipient.desk_id) == col(Desk.id))
        .where(TipRecipient.tip_id == tip.id)
    )
    keys = [crypto.X25519Recipient.parse(desk.public_key) for desk in desks]
    return [*keys, crypto.X25519Recipient.parse(tip.tipster_public_key)]


def add_recipient(db: Session, tip: Tip, *, desk_id: int, reason: str) -> None:
    """Route `tip` to a desk: a TipRecipient row carrying the tip's inbox keys (INBOX_COPIES)."""
    db.add(TipRecipient(tip_id=tip.id, desk_id=desk_id, reason=reason, **inbox_copies(tip)))


def copy_inbox_keys(db: Session, tip: Tip) -> None:
    """Copy the tip's inbox keys onto its TipRecipient rows. Call it after changing any of INBOX_COPIES'
    sources on a tip (status, assignee, ...): the inbox filters and sorts on the copies alone (issue 4)."""
    db.flush()
    db.execute(update(TipRecipient).where(col(TipRecipient.tip_id) == tip.id).values(**inbox_copies(tip)))


# Chunk rows are inserted in batches of this many (about 1 MiB), so a 100 MiB file never sits in memory as
# ORM objects or driver parameters: memory stays at one batch whatever the size (submit_bench measures it).
CHUNK_ROWS_PER_INSERT = 16


def _store_files(db: Session, *, tip_id: str, message_id: str | None, files: Sequence[EncryptedFile]) -> None:
    for encrypted in files:
        db.add(
            StoredFile(
                id=encrypted.file_id,
                tip_id=tip_id,
                message_id=message_id,
                header=encrypted.header,
                meta=encrypted.meta,
                chunk_count=encrypted.row_count,
            )
        )
        db.flush()
        batch: list[dict[str, object]] = []
        for seq, data in enumerate(encrypted.rows()):
            batch.append({"file_id": encrypted.file_id, "seq": seq, "data": data})
            if len(batch) == CHUNK_ROWS_PER_INSERT:
                db.execute(insert(FileChunk), batch)
                batch = []
        if batch:
            db.execute(insert(FileChunk), batch)


def store_tip(
    db: Session,
    *,
    tip_id: str,
    answers: TipAnswers,
    municipality_id: int,
    language: str,
    desks: Sequence[Recipient],
    keys: crypto.MailboxKeys,
    kdf: str,
    files: Sequence[EncryptedFile],
    taken_by_phone: bool = False,
    acknowledgement: str = "",
) -> Tip:
    """Write a whole tip in the caller's transaction: the tip, its routing, its files and their chunks.

    If one of the desks acknowledges automatically, `acknowledgement` (already in the tipster's language)
    is posted as that desk's first message and the tip counts as acknowledged.
    """
    recipients = [crypto.X25519Recipient.parse(d.public_key) for d in desks] + [
        keys.tipster_identity.recipient
    ]
    now = utcnow()
    tip = Tip(
        id=tip_id,
        case_number=new_case_number(),
        created_at=now,
        municipality_id=municipality_id,
        category=answers.category,
        language=language,
        mailbox_id=keys.mailbox_id,
        reply_code_kdf=kdf,
        tipster_public_key=str(keys.tipster_identity.recipient),
        answers=crypto.seal(answers.answers_json(), kind=TIP_KIND, subject=tip_id, recipients=recipients),
        contact=crypto.seal(
            answers.contact.encode("utf-8"), kind=CONTACT_KIND, subject=tip_id, recipients=recipients
        )
        if answers.contact
        else None,
        taken_by_phone=taken_by_phone,
        last_tipster_activity_at=now,
        acknowledge_by=now + ACKNOWLEDGE_WITHIN,
        feedback_by=now + FEEDBACK_WITHIN,
    )
    db.add(tip)
    db.flush()
    for desk in desks:
        add_recipient(db, tip, desk_id=desk.desk_id, reason="routing")
    db.flush()
    _store_files(db, tip_id=tip_id, message_id=None, files=files)
    audit.record(db, "tip.received", actor="tipster", tip_id=tip_id, detail={"files": len(files)})
    notify.tip_arrived(db, tip_id=tip_id, desk_ids=[d.desk_id for d in desks])  # in this transaction
    acknowledging = db.exec(
        select(Desk).where(col(Desk.id).in_([d.desk_id for d in desks]), col(Desk.auto_acknowledge))
    ).first()
    if acknowledging is not None and acknowledgement:
        store_message(
            db, tip=tip, message_id=new_id(), author="desk", text=acknowledgement, desk_id=acknowledging.id
        )
        tip.status, tip.acknowledged_at = "acknowledged", now
        db.add(tip)
        copy_inbox_keys(db, tip)
        audit.record(db, "tip.auto-acknowledged", actor="system", tip_id=tip_id, desk_id=acknowledging.id)
    record_tip(db, tip)
    return tip


def store_message(
    db: Session,
    *,
    tip: Tip,
    message_id: str,
    author: str,
    text: str,
    files: Sequence[EncryptedFile] = (),
    desk_id: int | None = None,
) -> Message:
    """Add a message (and its files) to a tip's conversation, sealed to the tip's desks and tipster."""
    message = Message(
        id=message_id,
        tip_id=tip.id,
        author=author,
        desk_id=desk_id,
        body=crypto.seal(
            text.encode("utf-8"),
            kind=MESSAGE_KIND,
            subject=message_subject(tip.id, message_id),
            recipients=tip_recipients(db, tip),
        ),
    )
    db.add(message)
    db.flush()
    _store_files(db, tip_id=tip.id, message_id=message_id, files=files)
    if author == "tipster":
        retention.tipster_active(db, tip)  # pushes the deletion date back (portal.retention.rules)
        audit.record(db, "tip.tipster-message", actor="tipster", tip_id=tip.id, detail={"files": len(files)})
        notify.tipster_answered(db, tip_id=tip.id)
    return message


def tip_by_mailbox(db: Session, mailbox_id: bytes) -> Tip | None:
    return db.exec(select(Tip).where(Tip.mailbox_id == mailbox_id)).first()


@dataclasses.dataclass(frozen=True)
class FileEntry:
    file_id: str
    name: str
    size: int


@dataclasses.dataclass(frozen=True)
class ConversationEntry:
    author: str  # tipster or desk
    organisation_name: str | None
    created_at: datetime.datetime
    text: str
    files: tuple[FileEntry, ...]


# A tipster's key, or a desk's key ring: a desk whose key was rotated reads old tips with its old keys.
Keys = crypto.X25519Identity | Sequence[crypto.X25519Identity]


def _keys(identity: Keys) -> list[crypto.X25519Identity]:
    return [identity] if isinstance(identity, crypto.X25519Identity) else list(identity)


def _file_entries(files: Sequence[StoredFile], identity: Keys) -> tuple[FileEntry, ...]:
    entries = []
    for stored in files:
        meta = json.loads(
            crypto.unseal(
                stored.meta,
                kind=FILE_META_KIND,
                subject=file_subject(stored.tip_id, stored.id),
                identities=_keys(identity),
            )
        )
        entries.append(FileEntry(file_id=stored.id, name=str(meta["name"]), size=int(meta["size"])))
    return tuple(entries)


def read_answers(tip: Tip, identity: Keys) -> dict[str, str]:
    answers: dict[str, str] = json.loads(
        crypto.unseal(tip.answers, kind=TIP_KIND, subject=tip.id, identities=_keys(identity))
    )
    return answers


def conversation(db: Session, tip: Tip, identity: Keys) -> list[ConversationEntry]:
    """The tip's messages, oldest first, decrypted with `identity` (the tipster's or a desk's)."""
    messages = db.exec(select(Message).where(Message.tip_id == tip.id).order_by(col(Message.created_at)))
    entries = []
    for message in messages:
        files = db.exec(
            select(StoredFile).where(StoredFile.message_id == message.id).order_by(col(StoredFile.created_at))
        )
        organisation_name = None
        if message.desk_id is not None:
            desk = db.get(Desk, message.desk_id)
            organisation = db.get(Organisation, desk.organisation_id) if desk else None
            organisation_name = organisation.name if organisation else None
        text = crypto.unseal(
            message.body,
            kind=MESSAGE_KIND,
            subject=message_subject(tip.id, message.id),
            identities=_keys(identity),
        )
        entries.append(
            ConversationEntry(
                author=message.author,
                organisation_name=organisation_name,
                created_at=message.created_at,
                text=text.decode("utf-8"),
                files=_file_entries(list(files), identity),
            )
        )
    return entries


def tip_files(db: Session, tip: Tip, identity: Keys) -> tuple[FileEntry, ...]:
    files = db.exec(
        select(StoredFile)
        .where(StoredFile.tip_id == tip.id, col(StoredFile.message_id).is_(None))
        .order_by(col(StoredFile.created_at))
    )
    return _file_entries(list(files), identity)


__all__ = ["new_id"]


def share_with_desk(db: Session, *, tip: Tip, identity: Keys, desk: Desk, reason: str) -> None:
    """Let `desk` read the tip: add its stanza to every envelope the tipster can read, headers only.

    `identity` is any key that opens the tip's envelopes: a desk's (hand-over on a legal basis) or the
    tipster's (hand-over the tipster consented to). Only the small headers change; file chunks are not
    touched (FORMAT 1.4). Internal notes stay with the desks that wrote them.
    """
    if db.get(TipRecipient, (tip.id, desk.id)) is not None:
        return
    new_key = [crypto.X25519Recipient.parse(desk.public_key)]
    identities = _keys(identity)
    tip.answers = crypto.add_recipients(tip.answers, identities=identities, recipients=new_key)
    if tip.contact is not None:
        tip.contact = crypto.add_recipients(tip.contact, identities=identities, recipients=new_key)
    db.add(tip)
    for message in db.exec(select(Message).where(Message.tip_id == tip.id)):
        message.body = crypto.add_recipients(message.body, identities=identities, recipients=new_key)
        db.add(message)
    for stored in db.exec(select(StoredFile).where(StoredFile.tip_id == tip.id)):
        stored.header = crypto.add_recipients(stored.header, identities=identities, recipients=new_key)
        stored.meta = crypto.add_recipients(stored.meta, identities=identities, recipients=new_key)
        db.add(stored)
    add_recipient(db, tip, desk_id=id_of(desk), reason=reason)
    db.flush()
    record_tip(db, tip)
    notify.tip_arrived(db, tip_id=tip.id, desk_ids=[id_of(desk)])
    retention.recompute(db, tip)  # kept as long as the desk keeping it longest wants
