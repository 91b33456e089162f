"""`lykta purge` on both backends: every row of a due tip goes and nothing else; holds and new tipster
activity keep a tip; two purges at once neither fail nor count twice; SQLite pages are overwritten."""

from __future__ import annotations

import datetime
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel, col, select
from starlette.testclient import TestClient

from portal import db
from portal.audit.log import verify
from portal.audit.models import AuditEntry
from portal.db import session_scope, utcnow
from portal.retention import purge as retention_purge
from portal.retention.models import LegalHold
from portal.retention.rules import ACTIVITY_GRACE
from portal.submission.models import FileChunk, StoredFile, Tip
from portal.web import Services
from tests.portal.retention.tips import (
    age,
    make_tip,
    rows_referring_to,
    staff_post,
    table_counts,
    tipster_reply,
)
from tests.portal.triage.test_staff_flow import staff_login

# Table -> the purge report's name for its rows.
KIND_OF_TABLE = {
    "filechunk": "chunks",
    "storedfile": "files",
    "message": "messages",
    "tipnote": "notes",
    "tiplabel": "labels",
    "tipread": "reads",
    "handover": "handovers",
    "legalhold": "holds",
    "tiprecipient": "recipients",
    "session": "sessions",
    "tip": "tips",
}


def purged_entries(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.action == "retention.purged")))


def test_purge_deletes_every_row_of_a_due_tip_and_nothing_else(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    due = make_tip(client, services, demo_accounts)
    kept = make_tip(client, services, demo_accounts)
    engine = services.engine
    assert age(engine, due.tip_id, days=200) is not None
    mine = rows_referring_to(engine, due.tip_id)
    # The tip really has a row in every table of its own, or "nothing left" below proves little.
    for table in ("tiprecipient", "message", "storedfile", "tipnote", "tiplabel", "tipread", "handover"):
        assert mine.get(f"{table}.tip_id"), table
    assert mine.get("session.subject") == 1
    before = table_counts(engine)
    kept_before = rows_referring_to(engine, kept.tip_id)

    report = retention_purge.purge(engine)

    after = table_counts(engine)
    others: dict[str, int] = {}
    assert report.counts["tips"] == 1
    assert rows_referring_to(engine, due.tip_id).keys() <= {"auditentry.tip_id"}  # the log keeps ids only
    assert rows_referring_to(engine, kept.tip_id) == kept_before
    for table, count in before.items():
        if table in KIND_OF_TABLE:
            assert before[table] - after[table] == report.counts[KIND_OF_TABLE[table]], table
        elif table == "auditentry":
            assert after[table] == count + 1  # one entry for the run
        elif table == "tipfact":
            assert after[table] == count  # statistics outlive the tip (ON DELETE SET NULL)
        else:
            others[table] = count - after[table]
    # Rows of other tables go only where their foreign key to the tip says CASCADE (notifications, say).
    cascading = {table.name for table, _column in retention_purge.cascading_tables()}
    assert {t for t, gone in others.items() if gone} <= cascading
    assert sum(others.values()) == report.counts["other"]
    assert report.counts["chunks"] >= 4 and report.counts["files"] == 2 and report.counts["messages"] >= 2
    entry = purged_entries(engine)[0]
    assert entry.actor == "cli" and entry.tip_id is None
    assert entry.detail["tips"] == 1 and entry.detail["chunks"] == report.counts["chunks"]
    assert due.case_number not in str(entry.detail) and due.tip_id not in str(entry.detail)
    with Session(engine) as session:
        assert verify(session).ok


def test_statistics_rows_survive_a_purge(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    """portal/stats keeps one `tipfact` row per tip and desk, its tip reference ON DELETE SET NULL."""
    db.import_models()
    if "tipfact" not in SQLModel.metadata.tables:
        pytest.fail("portal/stats (tipfact) is not there: this test checks that statistics survive a purge")
    due = make_tip(client, services, demo_accounts, full=False)
    age(services.engine, due.tip_id, days=200)
    with services.engine.connect() as conn:
        facts = conn.execute(
            text("SELECT COUNT(*) FROM tipfact WHERE tip_id = :t"), {"t": due.tip_id}
        ).scalar()
        total = conn.execute(text("SELECT COUNT(*) FROM tipfact")).scalar()
    assert facts, "the statistics keep a fact per tip and desk"
    retention_purge.purge(services.engine)
    with services.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM tipfact")).scalar() == total
        assert (
            conn.execute(text("SELECT COUNT(*) FROM tipfact WHERE tip_id = :t"), {"t": due.tip_id}).scalar()
            == 0
        )


def test_a_hold_stops_the_purge_and_is_audited(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    made = make_tip(client, services, demo_accounts, full=False)
    assert age(services.engine, made.tip_id, days=200) is not None
    staff_login(client, made.officer)
    held = staff_post(client, made.tip_id, "hold", {"action": "set", "reference": "AM-123456-26"})
    assert held.status_code == 200 and "AM-123456-26" in held.text
    with Session(services.engine) as session:
        tip = session.get(Tip, made.tip_id)
        assert tip is not None and tip.delete_after is None
    # Even a date written behind the hold's back (an older release, a hand edit) does not delete it.
    with session_scope(services.engine) as session:
        tip = session.get(Tip, made.tip_id)
        assert tip is not None
        tip.delete_after = utcnow() - datetime.timedelta(days=1)
        session.add(tip)
    assert retention_purge.purge(services.engine).counts["tips"] == 0
    assert retention_purge.preview(services.engine).counts["tips"] == 0
    with Session(services.engine) as session:
        assert session.get(Tip, made.tip_id) is not None

    cleared = staff_post(client, made.tip_id, "hold", {"action": "clear"})
    assert cleared.status_code == 200
    with Session(services.engine) as session:
        assert session.get(LegalHold, made.tip_id) is None
        actions = [
            (e.action, e.detail)
            for e in session.exec(
                select(AuditEntry).where(AuditEntry.tip_id == made.tip_id).order_by(col(AuditEntry.seq))
            )
        ]
    assert ("tip.hold-set", {"reference": "AM-123456-26"}) in actions
    assert any(action == "tip.hold-cleared" for action, _detail in actions)
    assert retention_purge.purge(services.engine).counts["tips"] == 1
    with Session(services.engine) as session:
        assert session.get(Tip, made.tip_id) is None


def test_new_tipster_activity_keeps_a_due_tip(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    made = make_tip(client, services, demo_accounts, full=False)
    assert age(services.engine, made.tip_id, days=100) is not None  # unfounded: due after 60 days
    assert tipster_reply(client, made.reply_code, "Jag såg bilen igen.").status_code == 303
    with Session(services.engine) as session:
        tip = session.get(Tip, made.tip_id)
        assert tip is not None and tip.delete_after is not None
        delete_after = tip.delete_after.replace(tzinfo=datetime.UTC)
    assert delete_after >= utcnow() + ACTIVITY_GRACE - datetime.timedelta(minutes=5)
    assert retention_purge.purge(services.engine).counts["tips"] == 0


def test_a_date_gone_stale_is_checked_again_before_deleting(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    """The stored date says due, but the tipster wrote since (say, under an older release): kept."""
    made = make_tip(client, services, demo_accounts, full=False)
    age(services.engine, made.tip_id, days=200)
    with session_scope(services.engine) as session:
        tip = session.get(Tip, made.tip_id)
        assert tip is not None
        tip.last_tipster_activity_at = utcnow()
        session.add(tip)
    report = retention_purge.purge(services.engine)
    assert report.counts["tips"] == 0
    with Session(services.engine) as session:
        tip = session.get(Tip, made.tip_id)
        assert tip is not None and tip.delete_after is not None


def test_closed_tips_without_a_date_are_dated_first(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    """Tips closed before 0004 have no date: the first purge gives them one, and deletes those due."""
    made = make_tip(client, services, demo_accounts, full=False)
    age(services.engine, made.tip_id, days=200)
    with session_scope(services.engine) as session:
        tip = session.get(Tip, made.tip_id)
        assert tip is not None
        tip.delete_after = None
        session.add(tip)
    preview = retention_purge.preview(services.engine)
    assert (preview.dated, preview.counts["tips"]) == (1, 1)
    report = retention_purge.purge(services.engine)
    assert (report.dated, report.counts["tips"]) == (1, 1)


def _purge_in_thread(
    url: str, results: list[retention_purge.PurgeReport], errors: list[BaseException]
) -> None:
    engine = db.make_engine(url)
    try:
        results.append(retention_purge.purge(engine, batch=1))
    except BaseException as error:  # reported by the test
        errors.append(error)
    finally:
        engine.dispose()


def test_two_purges_at_once_neither_fail_nor_count_twice(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], database_url: str
) -> None:
    first = make_tip(client, services, demo_accounts, full=False)
    staff = TestClient(client.app, base_url="http://testserver")
    assert staff_login(staff, first.officer).status_code == 200
    made = [first] + [make_tip(client, services, demo_accounts, full=False, staff=staff) for _ in range(5)]
    for tip in made:
        age(services.engine, tip.tip_id, days=200)
    results: list[retention_purge.PurgeReport] = []
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_purge_in_thread, args=(database_url, results, errors)) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.counts["tips"] for r in results) == len(made)
    assert sum(r.counts["recipients"] for r in results) == len(made)
    with Session(services.engine) as session:
        assert session.exec(select(Tip).where(col(Tip.id).in_([t.tip_id for t in made]))).all() == []
        assert verify(session).ok  # two runs appending at once never fork the chain
    entries = purged_entries(services.engine)
    assert len(entries) == 2 and sum(int(e.detail["tips"]) for e in entries) == len(made)
    # And once more: nothing left, nothing counted.
    again = retention_purge.purge(services.engine)
    assert again.counts == dict.fromkeys(retention_purge.KINDS, 0)


def test_sqlite_overwrites_the_pages_of_a_purged_file(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL does not overwrite deleted rows; docs/retention.md says what to do there")
    made = make_tip(client, services, demo_accounts, full=False)
    with Session(services.engine) as session:
        files = select(StoredFile.id).where(StoredFile.tip_id == made.tip_id)
        chunk = session.exec(select(FileChunk.data).where(col(FileChunk.file_id).in_(files))).first()
    assert chunk is not None
    fragment = bytes(chunk[1000:1032])
    path = Path(database_url.removeprefix("sqlite:///"))

    def written() -> bytes:
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())

    assert fragment in written()  # the test can see ciphertext where it is
    age(services.engine, made.tip_id, days=200)
    assert retention_purge.purge(services.engine).counts["tips"] == 1
    services.engine.dispose()  # the app's pooled connections would keep the WAL from being emptied
    assert fragment not in written()
