"""Benchmark of `lykta purge`: due tips deleted per second, and the ciphertext it removes, per backend.

    python benchmarks/purge_bench.py                       # 2000 tips, SQLite and PostgreSQL
    python benchmarks/purge_bench.py --tips 500 --backend sqlite

For each backend (SQLite in a temporary directory; PostgreSQL in a fresh database `lykta_purgebench_<hex>`
on --pg-admin-url, dropped at the end) the script migrates the database, seeds the demo network, and
inserts N closed tips routed to one desk, each with two messages and one file of --chunks 64 KiB chunks of
random bytes (the purge never decrypts, so the bytes need not be envelopes), closed three years ago and so
due. Then it times `retention.purge.preview` (the --dry-run) and `retention.purge.purge` at the default
batch size, and prints tips per second, MiB of chunks per second, batches, and on SQLite the database file
size before and after (secure_delete zeroes pages; the file does not shrink without VACUUM).

It prints, it does not assert (STYLE rule 11), and it is not part of the test run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import secrets
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlmodel import col, select

from crypto._kdf import ARGON2_MEMLIMIT_MIN, ARGON2_OPSLIMIT_MIN, Argon2Params
from portal import db
from portal.demo import seed
from portal.network.models import Desk, Municipality
from portal.retention import purge as retention_purge
from portal.submission.models import FileChunk, Message, StoredFile, Tip, TipRecipient, inbox_copies

CHUNK = 64 * 1024


def fill(url: str, *, tips: int, chunks: int) -> None:
    engine = db.make_nullpool_engine(url)
    with db.session_scope(engine) as session:
        seed(session, signing_key=secrets.token_bytes(32), keywrap_params=Argon2Params(
            "bench-fast", opslimit=ARGON2_OPSLIMIT_MIN, memlimit=ARGON2_MEMLIMIT_MIN))  # fmt: skip
    closed = db.utcnow() - datetime.timedelta(days=3 * 365)
    with db.session_scope(engine) as session:
        desk = session.exec(select(Desk).order_by(col(Desk.id)).limit(1)).one()
        municipality = session.exec(select(Municipality).order_by(col(Municipality.id)).limit(1)).one()
        for start in range(0, tips, 100):
            for _ in range(start, min(tips, start + 100)):
                tip_id = secrets.token_hex(16)
                tip = Tip(
                    id=tip_id,
                    case_number=secrets.token_hex(5)[:9],
                    created_at=closed,
                    municipality_id=municipality.id,
                    category="other",
                    language="sv",
                    status="closed",
                    outcome="no-action",
                    mailbox_id=secrets.token_bytes(32),
                    reply_code_kdf="bench",
                    tipster_public_key="age1bench",
                    answers=secrets.token_bytes(600),
                    closed_at=closed,
                    last_tipster_activity_at=closed,
                    acknowledge_by=closed,
                    feedback_by=closed,
                    delete_after=closed,
                )
                session.add(tip)
                session.flush()
                session.add(TipRecipient(tip_id=tip_id, desk_id=desk.id, **inbox_copies(tip)))
                for author in ("tipster", "desk"):
                    body = secrets.token_bytes(400)
                    session.add(Message(id=secrets.token_hex(16), tip_id=tip_id, author=author, body=body))
                file_id = secrets.token_hex(16)
                session.add(StoredFile(id=file_id, tip_id=tip_id, header=secrets.token_bytes(200),
                                       meta=secrets.token_bytes(100), chunk_count=chunks))  # fmt: skip
                session.flush()
                rows = [{"file_id": file_id, "seq": s, "data": os.urandom(CHUNK)} for s in range(chunks)]
                session.execute(insert(FileChunk), rows)
            session.commit()
    engine.dispose()


def measure(name: str, url: str, *, tips: int, chunks: int, path: Path | None) -> None:
    db.upgrade(url)
    started = time.perf_counter()
    fill(url, tips=tips, chunks=chunks)
    print(f"{name}: filled {tips} tips x {chunks} chunks in {time.perf_counter() - started:.1f} s")
    size_before = path.stat().st_size if path else 0
    engine = db.make_engine(url)
    started = time.perf_counter()
    preview = retention_purge.preview(engine)
    dry = time.perf_counter() - started
    started = time.perf_counter()
    report = retention_purge.purge(engine)
    took = time.perf_counter() - started
    engine.dispose()
    mib = report.counts["chunks"] * CHUNK / 2**20
    print(f"{name}: --dry-run counted {preview.counts['tips']} tips in {dry:.2f} s")
    print(
        f"{name}: purged {report.counts['tips']} tips, {report.counts['chunks']} chunks ({mib:.0f} MiB) "
        f"in {took:.2f} s: {report.counts['tips'] / took:.0f} tips/s, {mib / took:.0f} MiB/s, "
        f"{report.batches} batches"
    )
    if path:
        print(
            f"{name}: file {size_before / 2**20:.0f} MiB before, {path.stat().st_size / 2**20:.0f} MiB after"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tips", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.sqlite3"
            measure("sqlite", f"sqlite:///{path}", tips=args.tips, chunks=args.chunks, path=path)
    if args.backend in ("postgresql", "both"):
        name = f"lykta_purgebench_{secrets.token_hex(4)}"
        admin = create_engine(db.normalise_url(args.pg_admin_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = args.pg_admin_url.rsplit("/", 1)[0] + "/" + name
            measure("postgresql", url, tips=args.tips, chunks=args.chunks, path=None)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
