"""Backups (issue 5, item 6): a backup taken while residents keep sending tips restores into an empty
database where every tip opens with the desks' keys; a damaged backup is refused and changes nothing."""

from __future__ import annotations

import io
import secrets
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, inspect, text
from sqlmodel import col, select
from starlette.testclient import TestClient

import crypto
from portal import backup, db
from portal.accounts.models import StaffAccount
from portal.app import create_app
from portal.audit import log as audit
from portal.cli import main
from portal.keyring.services import recovery_keyring
from portal.network.models import Desk, Organisation
from portal.settings import Settings
from portal.submission.models import Tip
from portal.triage import services as triage
from portal.web import Services
from tests.conftest import POSTGRES_URL, _admin_engine, _with_database
from tests.portal.submission.browser import ANSWERS, app_client, log_in, send_tip


@pytest.fixture
def empty_target(database_url: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of the same kind as the one under test, not even migrated."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'lykta.sqlite3'}"
        return
    name = f"lykta_restore_{secrets.token_hex(6)}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield _with_database(POSTGRES_URL, name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def open_every_tip(url: str, demo_accounts: dict[str, Any]) -> dict[str, tuple[str, list[bytes]]]:
    """Each tip's case number -> its description and its files, decrypted with the desks' keys (opened with
    the organisations' recovery identities, as after `lykta demo`) through the back office's services."""
    recovery = {
        o["code"]: crypto.parse_identities(o["recovery_identity"])[0] for o in demo_accounts["organisations"]
    }
    engine = db.make_engine(url)
    opened: dict[str, tuple[str, list[bytes]]] = {}
    try:
        with db.session_scope(engine) as session:
            desk_keys = {}
            for desk in session.exec(select(Desk)):
                organisation = session.get(Organisation, desk.organisation_id)
                assert organisation is not None and desk.id is not None
                desk_keys[desk.id] = recovery_keyring(session, desk, recovery[organisation.code])
            reader = session.exec(select(StaffAccount).order_by(col(StaffAccount.id))).first()
            assert reader is not None and reader.id is not None
            for tip in session.exec(select(Tip)).all():
                tip_view = triage.open_tip(
                    session, tip_id=tip.id, staff_id=reader.id, actor="test", desk_keys=desk_keys
                )
                files = []
                for entry in tip_view.files:
                    _meta, chunks = triage.open_file(
                        session, tip_id=tip.id, file_id=entry.file_id, actor=None, desk_keys=desk_keys
                    )
                    files.append(b"".join(chunks))
                opened[tip.case_number] = (tip_view.answers["what"], files)
            assert audit.verify(session).ok
    finally:
        engine.dispose()
    return opened


class TipWriter(threading.Thread):
    """A resident who keeps sending tips through the web form until told to stop."""

    def __init__(self, settings: Settings, services: Services) -> None:
        super().__init__(daemon=True)
        self.app = create_app(settings, services=services)
        self.sent: dict[str, tuple[str, bytes]] = {}  # case number -> description, file
        self.stop = threading.Event()
        self.three_sent = threading.Event()
        self.failure: BaseException | None = None
        self._lock = threading.Lock()

    def sent_so_far(self) -> set[str]:
        with self._lock:  # the dict grows in the writer thread meanwhile
            return set(self.sent)

    def run(self) -> None:
        try:
            with TestClient(self.app, base_url="http://testserver") as client:
                while not self.stop.is_set():
                    n = len(self.sent)
                    what, body = f"Tip number {n} about the bus stop.", f"file of tip {n}".encode() * 50
                    _code, case_number = send_tip(
                        client, "sv", {**ANSWERS, "what": what}, [(f"{n}.txt", body)]
                    )
                    with self._lock:
                        self.sent[case_number] = (what, body)
                    if len(self.sent) >= 3:
                        self.three_sent.set()
        except BaseException as error:
            self.failure = error
            self.three_sent.set()


def test_a_backup_taken_under_writes_restores_and_every_tip_opens(
    settings: Settings,
    services: Services,
    demo_accounts: dict[str, Any],
    empty_target: str,
    tmp_path: Path,
) -> None:
    writer = TipWriter(settings, services)
    writer.start()
    try:
        assert writer.three_sent.wait(timeout=300), "the writer sent nothing"
        before = writer.sent_so_far()
        manifest = backup.take_backup(settings.database_url, tmp_path / "lykta.backup")
        during_or_before = writer.sent_so_far()
        # Keep writing a little after the snapshot, so the live database moves on past it.
        target = len(writer.sent) + 2
        while len(writer.sent) < target and writer.is_alive():
            writer.join(timeout=0.05)
    finally:
        writer.stop.set()
        writer.join(timeout=300)
    assert writer.failure is None, writer.failure
    assert (tmp_path / "lykta.backup").stat().st_mode & 0o777 == 0o600

    restored = backup.restore_backup(tmp_path / "lykta.backup", empty_target)
    assert restored == manifest
    opened = open_every_tip(empty_target, demo_accounts)
    # The snapshot is the database at one instant: every tip whose sending had finished before it, perhaps
    # the one in flight, none sent after it; and each tip is whole.
    assert before <= set(opened) < set(writer.sent)
    assert len(set(opened) - during_or_before) <= 1  # committed before the snapshot, answered after it
    for case_number, (what, files) in opened.items():
        assert (what, files) == (writer.sent[case_number][0], [writer.sent[case_number][1]])


def test_restore_refuses_a_database_that_holds_data(
    settings: Settings, demo_accounts: dict[str, Any], tmp_path: Path
) -> None:
    backup.take_backup(settings.database_url, tmp_path / "lykta.backup")
    with pytest.raises(backup.TargetNotEmptyError):
        backup.restore_backup(tmp_path / "lykta.backup", settings.database_url)
    with pytest.raises(backup.BackupError, match="exists already"):
        backup.take_backup(settings.database_url, tmp_path / "lykta.backup")


def _damaged(path: Path, how: str) -> bytes:
    raw = path.read_bytes()
    if how == "truncated":
        return raw[: len(raw) * 2 // 3]
    if how == "cut before the database":
        return raw[:1024]
    if how == "a flipped byte":
        middle = len(raw) // 2
        return raw[:middle] + bytes([raw[middle] ^ 0x40]) + raw[middle + 1 :]
    if how == "not a backup":
        return b"SQLite format 3\x00" + bytes(4096)
    if how == "another revision":
        with tarfile.open(path) as tar:
            members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            for member, data in members:
                if member.name == backup.MANIFEST:
                    data = data.replace(b'"schema_revision": "', b'"schema_revision": "9999-')
                    member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
        return out.getvalue()
    raise AssertionError(how)


def _state(url: str) -> tuple[list[str], int]:
    """The tables and the tip count of the database at `url` (none and 0 if it does not exist)."""
    if url.startswith("sqlite") and not Path(url.removeprefix("sqlite:///")).exists():
        return [], 0
    engine = db.make_nullpool_engine(url)
    try:
        with engine.connect() as conn:
            tables = sorted(inspect(conn).get_table_names())
            tips = conn.execute(select(func.count()).select_from(Tip)).scalar_one() if "tip" in tables else 0
    finally:
        engine.dispose()
    return tables, int(tips)


@pytest.mark.parametrize(
    "how", ["truncated", "cut before the database", "a flipped byte", "not a backup", "another revision"]
)
def test_a_damaged_backup_is_refused_and_changes_nothing(
    settings: Settings,
    services: Services,
    client: TestClient,
    empty_target: str,
    tmp_path: Path,
    how: str,
) -> None:
    send_tip(client, "sv", ANSWERS, [])
    good = tmp_path / "good.backup"
    backup.take_backup(settings.database_url, good)
    damaged = tmp_path / "damaged.backup"
    damaged.write_bytes(_damaged(good, how))

    # Into an empty database: refused, and it stays empty.
    with pytest.raises(backup.RestoreError) as refused:
        backup.restore_backup(damaged, empty_target)
    assert not isinstance(refused.value, backup.TargetNotEmptyError)
    assert _state(empty_target) == ([], 0)
    # Over the live database, even with force: refused, and everything is still there.
    live = _state(settings.database_url)
    with pytest.raises(backup.RestoreError):
        backup.restore_backup(damaged, settings.database_url, force=True)
    assert _state(settings.database_url) == live and live[1] == 1


def test_the_commands_back_up_and_restore(
    settings: Settings,
    client: TestClient,
    demo_accounts: dict[str, Any],
    empty_target: str,
    fast_argon2: crypto.Argon2Params,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, case_number = send_tip(client, "sv", ANSWERS, [])
    monkeypatch.setenv("LYKTA_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LYKTA_DATABASE_URL", settings.database_url)
    taken = CliRunner().invoke(main, ["backup", str(tmp_path / "lykta.backup")])
    assert taken.exit_code == 0, taken.output

    # A new machine: an empty data directory, no secrets yet.
    monkeypatch.setenv("LYKTA_DATA_DIR", str(tmp_path / "new-data"))
    monkeypatch.setenv("LYKTA_DATABASE_URL", empty_target)
    restored = CliRunner().invoke(main, ["restore", str(tmp_path / "lykta.backup")])
    assert restored.exit_code == 0, restored.output
    assert "secrets.json" in restored.output  # reminded to bring the instance secrets back
    again = CliRunner().invoke(main, ["restore", str(tmp_path / "lykta.backup")])
    assert again.exit_code != 0 and "--force" in again.output
    forced = CliRunner().invoke(main, ["restore", "--force", str(tmp_path / "lykta.backup")])
    assert forced.exit_code == 0, forced.output
    assert set(open_every_tip(empty_target, demo_accounts)) == {case_number}

    # With this instance's secrets beside it, the tipster's reply code finds the restored tip.
    with app_client(settings, fast_argon2, database_url=empty_target) as (restored_site, _services):
        mailbox = log_in(restored_site, "sv", code)
    assert mailbox.status_code == 200 and case_number in mailbox.text
