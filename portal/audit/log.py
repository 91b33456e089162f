"""Appending to the audit log and verifying its chain."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from sqlmodel import Session, col, select

from portal.audit.models import AuditEntry, AuditHead
from portal.db import utcnow

GENESIS = bytes(32)


def entry_hash(entry: AuditEntry) -> bytes:
    """SHA-256 over the previous hash and a canonical encoding of every field."""
    fields = {
        "seq": entry.seq,
        "created_at": entry.created_at.isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "action": entry.action,
        "tip_id": entry.tip_id,
        "desk_id": entry.desk_id,
        "detail": entry.detail,
    }
    encoded = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return hashlib.sha256(entry.prev_hash + encoded).digest()


def _head(db: Session) -> AuditHead:
    """The chain head, locked until the transaction ends: appenders in other processes wait here.

    PostgreSQL: SELECT ... FOR UPDATE, so a second appender waits for the first to commit and then reads
    the head that commit wrote (READ COMMITTED re-reads a locked row). SQLite ignores FOR UPDATE, but every
    writing transaction there began with BEGIN IMMEDIATE (portal/db.py), which serialises writers anyway.
    populate_existing: a head this session loaded earlier without the lock must not be reused stale.
    """
    locked = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    head = db.exec(locked.execution_options(populate_existing=True)).first()
    if head is None:  # the migration creates it; this only matters for a database made otherwise
        raise RuntimeError("audit head missing: run `lykta init` to migrate the database")
    return head


def record(
    db: Session,
    action: str,
    *,
    actor: str,
    tip_id: str | None = None,
    desk_id: int | None = None,
    detail: dict[str, object] | None = None,
) -> AuditEntry:
    """Append an entry in the caller's transaction: it lands if and only if what it records does."""
    head = _head(db)
    entry = AuditEntry(
        seq=head.seq + 1,
        created_at=utcnow(),
        actor=actor,
        action=action,
        tip_id=tip_id,
        desk_id=desk_id,
        detail=dict(detail or {}),
        prev_hash=head.hash,
        hash=b"",
    )
    entry.hash = entry_hash(entry)
    head.seq, head.hash = entry.seq, entry.hash
    db.add(entry)
    db.add(head)
    db.flush()
    return entry


@dataclasses.dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    first_broken: int | None = None
    reason: str = ""


def verify(db: Session, *, batch: int = 1000) -> Verdict:
    """Walk the chain from the start; name the first entry that does not follow from the one before."""
    expected_seq, previous = 1, GENESIS
    count = 0
    last_seq = 0
    while True:
        rows = db.exec(
            select(AuditEntry)
            .where(AuditEntry.seq >= expected_seq)
            .order_by(col(AuditEntry.seq))
            .limit(batch)
        ).all()
        if not rows:
            break
        for entry in rows:
            if entry.seq != expected_seq:
                return Verdict(False, count, expected_seq, "entry missing (deleted)")
            if entry.prev_hash != previous:
                return Verdict(
                    False, count, entry.seq, "does not follow the previous entry (reordered or edited)"
                )
            if entry_hash(entry) != entry.hash:
                return Verdict(False, count, entry.seq, "contents changed after it was written")
            previous, last_seq = entry.hash, entry.seq
            expected_seq += 1
            count += 1
    head = db.get(AuditHead, 1)
    if head is not None and (head.seq != last_seq or head.hash != previous):
        return Verdict(False, count, last_seq + 1, "newest entries missing (the head names a later entry)")
    return Verdict(True, count)


def trail(db: Session, tip_id: str) -> list[AuditEntry]:
    return list(db.exec(select(AuditEntry).where(AuditEntry.tip_id == tip_id).order_by(col(AuditEntry.seq))))
