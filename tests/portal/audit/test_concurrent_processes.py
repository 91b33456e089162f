"""Several processes append to the audit log at once and the chain stays one chain (issue 5, item 1).

Lykta processes share nothing but the database, so the chain head is locked in the database (SELECT ...
FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite): each appender reads the head the last one wrote.
"""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.synchronize import Barrier

import pytest
from sqlalchemy import Engine, func
from sqlmodel import col, select

from portal.audit import log as audit
from portal.audit.models import AuditEntry, AuditHead
from portal.db import make_engine, session_scope

PROCESSES = 3
THREADS_PER_PROCESS = 2
ENTRIES_PER_THREAD = 15


def _append(engine: Engine, who: str, count: int) -> None:
    # One entry per transaction: the most interleaving there can be between appenders.
    for i in range(count):
        with session_scope(engine) as db:
            audit.record(db, "tip.opened", actor=who, detail={"n": i})


def append_from_a_process(database_url: str, name: str, start: Barrier) -> None:
    """Run in a spawned process: a fresh interpreter with its own engine and connection pool."""
    engine = make_engine(database_url)
    failures: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            _append(engine, f"staff:{name}-{thread}", ENTRIES_PER_THREAD)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS_PER_PROCESS)]
    start.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    if failures:
        raise SystemExit(f"{name}: {failures[0]!r}")


def test_processes_appending_at_once_keep_one_chain(database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    workers = [
        context.Process(target=append_from_a_process, args=(database_url, f"p{i}", start))
        for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0] * PROCESSES

    engine = make_engine(database_url)
    try:
        with session_scope(engine) as db:
            total = PROCESSES * THREADS_PER_PROCESS * ENTRIES_PER_THREAD
            assert audit.verify(db) == audit.Verdict(True, total)
            # A fork would be two entries following the same one.
            forks = db.exec(
                select(AuditEntry.prev_hash).group_by(col(AuditEntry.prev_hash)).having(func.count() > 1)
            ).all()
            assert forks == []
            per_appender = db.exec(
                select(AuditEntry.actor, func.count()).group_by(col(AuditEntry.actor))
            ).all()
            assert sorted(n for _actor, n in per_appender) == [ENTRIES_PER_THREAD] * (
                PROCESSES * THREADS_PER_PROCESS
            )
    finally:
        engine.dispose()


def test_a_head_read_earlier_in_the_transaction_is_not_reused_stale(database_url: str) -> None:
    """A transaction that looked at the head before another process appended still appends after that
    entry: the locked read replaces what the session remembered."""
    if database_url.startswith("sqlite"):
        pytest.skip(
            "on SQLite the first read takes the write lock (BEGIN IMMEDIATE): no one appends meanwhile"
        )
    mine, other = make_engine(database_url), make_engine(database_url)
    try:
        with session_scope(mine) as db:
            seen = db.get(AuditHead, 1)
            assert seen is not None and seen.seq == 0
            _append(other, "staff:other", 1)  # commits while this transaction is open
            entry = audit.record(db, "tip.opened", actor="staff:mine")
            assert entry.seq == 2
        with session_scope(mine) as db:
            assert audit.verify(db) == audit.Verdict(True, 2)
            order = db.exec(select(AuditEntry.actor).order_by(col(AuditEntry.seq))).all()
            assert list(order) == ["staff:other", "staff:mine"]
    finally:
        mine.dispose()
        other.dispose()
