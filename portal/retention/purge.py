"""`lykta purge`: delete due tips for good, in bounded batches, safe to run twice or at once.

What goes with a tip: its files and their chunks, its messages, notes, labels, read marks, hand-overs,
recipients (the desks' access to it), a legal hold row (never present: held tips are not due), the
tipster's open sessions on it, and rows of any other table whose foreign key to the tip says ON DELETE
CASCADE ("other": notifications about the tip, say). Each is deleted by an explicit statement, children
first, so the purge does not depend on the database honouring ON DELETE CASCADE; the cascades stay as a
second line. What is not the tip's own data stays: the audit log (ids and actions, never content), and
aggregate statistics rows, whose reference to the tip is set to NULL by their own foreign key
(portal/stats, issue 5).

Concurrency: every batch is one transaction. On PostgreSQL the due tips are selected `FOR UPDATE SKIP
LOCKED`, so a second purge passes over the rows the first is deleting instead of waiting or deleting them
twice; on SQLite the transaction takes the write lock at BEGIN (portal.db), so purges take turns. Each
run counts only the rows its own statements deleted, so two runs never count a row twice. A tip is
evaluated once more under the lock before deletion: a tipster who wrote a moment ago keeps it.

Batches are bounded by tips and by file chunks, so a backlog of many or large tips never becomes one huge
transaction. Deleted pages: SQLite runs with `secure_delete` (portal.db), and the purge ends with a WAL
checkpoint, so the ciphertext is overwritten in the file rather than left in free pages or the WAL.
PostgreSQL does not overwrite deleted rows; VACUUM makes their space reusable (see docs/retention.md).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Engine, Table, delete, exists, func
from sqlmodel import Session, SQLModel, col, select

from portal.audit import log as audit
from portal.db import import_models, read_session, session_scope, utcnow
from portal.ratelimit import WINDOW_SECONDS, RateCounter
from portal.retention.models import LegalHold
from portal.retention.services import evaluate, recompute
from portal.sessions import SessionRow
from portal.submission.models import FileChunk, HandOver, Message, StoredFile, Tip, TipRecipient
from portal.triage.models import TipLabel, TipNote, TipRead

TIPS_PER_BATCH = 50
# About 128 MiB of ciphertext per transaction at most (64 KiB chunks); a single larger tip goes alone.
CHUNKS_PER_BATCH = 2048
TIPSTER_SESSION = "tipster"
# The order of deletion, children first; the counts are reported under these names.
KINDS = (
    "chunks",
    "files",
    "messages",
    "notes",
    "labels",
    "reads",
    "handovers",
    "holds",
    "recipients",
    "sessions",
    "other",
    "tips",
)
# Tables named in `delete_tips`; any other table whose foreign key to a tip says ON DELETE CASCADE is the
# tip's own data too (notifications about it, say) and is emptied of the tip's rows as "other".
_KNOWN_TABLES = frozenset(
    {"filechunk", "storedfile", "message", "tipnote", "tiplabel", "tipread", "handover", "legalhold"}
    | {"tiprecipient", "session", "tip"}
)


@dataclasses.dataclass
class PurgeReport:
    """What one run deleted (or, with dry_run, would delete). Counts only: never a case number."""

    counts: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    dated: int = 0  # closed tips that had no deletion date yet and got one (made before retention existed)
    expired_sessions: int = 0
    old_rate_counters: int = 0
    batches: int = 0
    dry_run: bool = False

    def detail(self) -> dict[str, object]:
        return {
            **self.counts,
            "dated": self.dated,
            "expired_sessions": self.expired_sessions,
            "old_rate_counters": self.old_rate_counters,
            "batches": self.batches,
        }


def _is_postgres(db: Session) -> bool:
    return db.get_bind().dialect.name == "postgresql"


def _not_held() -> Any:
    return ~exists().where(col(LegalHold.tip_id) == col(Tip.id))


def _due(now: datetime.datetime) -> list[Any]:
    return [col(Tip.delete_after).is_not(None), col(Tip.delete_after) <= now, _not_held()]


def _undated() -> list[Any]:
    # closed_at too: a closed tip without it has no date to give, and would be picked again and again.
    return [
        col(Tip.status) == "closed",
        col(Tip.closed_at).is_not(None),
        col(Tip.delete_after).is_(None),
        _not_held(),
    ]


def _lock(db: Session, query: Any) -> Any:
    return query.with_for_update(skip_locked=True) if _is_postgres(db) else query


def _date_undated(engine: Engine, report: PurgeReport, *, batch: int) -> None:
    """Give closed tips without a date (older than retention, or written by an older release) their date."""
    while True:
        with session_scope(engine) as db:
            tips = db.exec(_lock(db, select(Tip).where(*_undated()).order_by(col(Tip.id)).limit(batch))).all()
            for tip in tips:
                recompute(db, tip)
        report.dated += len(tips)
        if len(tips) < batch:
            return


def _rowcount(result: Any) -> int:
    return max(0, int(result.rowcount or 0))


def cascading_tables() -> list[tuple[Table, Column[Any]]]:
    """Tables outside `delete_tips`' list whose rows die with their tip (FK to tip.id, ON DELETE CASCADE).

    A foreign key with ON DELETE SET NULL (statistics) marks data that outlives the tip: left alone.
    """
    import_models()
    found = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name in _KNOWN_TABLES:
            continue
        for key in table.foreign_keys:
            if key.column.table.name == "tip" and (key.ondelete or "").upper() == "CASCADE":
                found.append((table, key.parent))
    return found


def delete_tips(db: Session, tip_ids: Sequence[str]) -> dict[str, int]:
    """Delete these tips and every row of theirs, children first; the rows deleted, per kind."""
    ids = list(tip_ids)
    files = select(StoredFile.id).where(col(StoredFile.tip_id).in_(ids))
    statements: list[tuple[str, Any]] = [
        ("chunks", delete(FileChunk).where(col(FileChunk.file_id).in_(files))),
        ("files", delete(StoredFile).where(col(StoredFile.tip_id).in_(ids))),
        ("messages", delete(Message).where(col(Message.tip_id).in_(ids))),
        ("notes", delete(TipNote).where(col(TipNote.tip_id).in_(ids))),
        ("labels", delete(TipLabel).where(col(TipLabel.tip_id).in_(ids))),
        ("reads", delete(TipRead).where(col(TipRead.tip_id).in_(ids))),
        ("handovers", delete(HandOver).where(col(HandOver.tip_id).in_(ids))),
        ("holds", delete(LegalHold).where(col(LegalHold.tip_id).in_(ids))),
        ("recipients", delete(TipRecipient).where(col(TipRecipient.tip_id).in_(ids))),
        (
            "sessions",
            delete(SessionRow).where(
                col(SessionRow.kind) == TIPSTER_SESSION, col(SessionRow.subject).in_(ids)
            ),
        ),
    ]
    statements += [("other", delete(table).where(column.in_(ids))) for table, column in cascading_tables()]
    statements.append(("tips", delete(Tip).where(col(Tip.id).in_(ids))))
    counts = dict.fromkeys(KINDS, 0)
    for kind, statement in statements:
        counts[kind] += _rowcount(db.execute(statement.execution_options(synchronize_session=False)))
    return counts


def _chunk_counts(db: Session, tip_ids: Sequence[str]) -> dict[str, int]:
    rows = db.exec(
        select(StoredFile.tip_id, func.count(col(FileChunk.id)))
        .join(FileChunk, col(FileChunk.file_id) == col(StoredFile.id))
        .where(col(StoredFile.tip_id).in_(list(tip_ids) or ["-"]))
        .group_by(col(StoredFile.tip_id))
    ).all()
    return {tip_id: int(count) for tip_id, count in rows}


def _purge_batch(engine: Engine, report: PurgeReport, *, now: datetime.datetime, batch: int) -> int:
    """Delete one batch of due tips; how many tips were looked at (0: nothing left for this run)."""
    with session_scope(engine) as db:
        candidates = db.exec(
            _lock(db, select(Tip).where(*_due(now)).order_by(col(Tip.delete_after), col(Tip.id)).limit(batch))
        ).all()
        if not candidates:
            return 0
        chunks = _chunk_counts(db, [t.id for t in candidates])
        chosen: list[str] = []
        budget = 0
        for tip in candidates:
            # Once more under the lock: tipster activity or a rule change since the date was stored wins.
            due = recompute(db, tip)
            if due is None or due > now:
                continue
            if chosen and budget + chunks.get(tip.id, 0) > CHUNKS_PER_BATCH:
                continue  # the next batch takes it
            chosen.append(tip.id)
            budget += chunks.get(tip.id, 0)
        if chosen:
            for kind, count in delete_tips(db, chosen).items():
                report.counts[kind] += count
    report.batches += 1
    return len(candidates)


def _housekeeping(
    engine: Engine,
    report: PurgeReport,
    *,
    now: datetime.datetime,
    session_idle: Mapping[str, datetime.timedelta],
) -> None:
    """Expired sessions and rate-limit windows long past: rows nobody can use any more."""
    with session_scope(engine) as db:
        for kind, idle in session_idle.items():
            report.expired_sessions += _rowcount(
                db.execute(
                    delete(SessionRow)
                    .where(col(SessionRow.kind) == kind, col(SessionRow.last_seen_at) < now - idle)
                    .execution_options(synchronize_session=False)
                )
            )
        current = int(now.timestamp() // WINDOW_SECONDS)
        report.old_rate_counters = _rowcount(
            db.execute(
                delete(RateCounter)
                .where(col(RateCounter.window) < current - 1)
                .execution_options(synchronize_session=False)
            )
        )


def _checkpoint(engine: Engine) -> None:
    """On SQLite, copy the WAL into the file and empty it, so deleted pages survive in neither."""
    if engine.dialect.name != "sqlite":
        return
    # On the DBAPI connection, outside any transaction: a checkpoint cannot run inside one. Readers still
    # busy with old pages make it copy what it can; the next run's checkpoint finishes the job.
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        connection.close()


def preview(engine: Engine, *, now: datetime.datetime | None = None) -> PurgeReport:
    """What a purge now would delete, counted without changing anything (`lykta purge --dry-run`)."""
    now = now or utcnow()
    report = PurgeReport(dry_run=True)
    with read_session(engine) as db:
        due_ids = set(db.exec(select(Tip.id).where(*_due(now))))
        for tip in db.exec(select(Tip).where(*_undated())):
            report.dated += 1
            due = evaluate(db, tip).at
            if due is not None and due <= now:
                due_ids.add(tip.id)
        ids = sorted(due_ids)
        counted: list[tuple[str, Any, Any]] = [
            ("files", StoredFile, col(StoredFile.tip_id)),
            ("messages", Message, col(Message.tip_id)),
            ("notes", TipNote, col(TipNote.tip_id)),
            ("labels", TipLabel, col(TipLabel.tip_id)),
            ("reads", TipRead, col(TipRead.tip_id)),
            ("handovers", HandOver, col(HandOver.tip_id)),
            ("recipients", TipRecipient, col(TipRecipient.tip_id)),
        ]
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            report.counts["tips"] += len(part)
            for kind, model, column in counted:
                report.counts[kind] += db.exec(
                    select(func.count()).select_from(model).where(column.in_(part))
                ).one()
            report.counts["chunks"] += sum(_chunk_counts(db, part).values())
            for table, column in cascading_tables():
                report.counts["other"] += db.exec(
                    select(func.count()).select_from(table).where(column.in_(part))
                ).one()
            report.counts["sessions"] += db.exec(
                select(func.count())
                .select_from(SessionRow)
                .where(col(SessionRow.kind) == TIPSTER_SESSION, col(SessionRow.subject).in_(part))
            ).one()
    return report


def purge(
    engine: Engine,
    *,
    now: datetime.datetime | None = None,
    actor: str = "cli",
    batch: int = TIPS_PER_BATCH,
    session_idle: Mapping[str, datetime.timedelta] | None = None,
) -> PurgeReport:
    """Delete every due tip for good, then expired sessions and old rate-limit windows; audit the counts.

    One audit entry per run (action "retention.purged"), written after the last batch, holds the counts.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    now = now or utcnow()
    report = PurgeReport()
    _date_undated(engine, report, batch=batch)
    while _purge_batch(engine, report, now=now, batch=batch):
        pass
    _housekeeping(engine, report, now=now, session_idle=session_idle or {})
    with session_scope(engine) as db:
        audit.record(db, "retention.purged", actor=actor, detail=report.detail())
    _checkpoint(engine)
    return report


__all__ = ["KINDS", "PurgeReport", "delete_tips", "preview", "purge"]
