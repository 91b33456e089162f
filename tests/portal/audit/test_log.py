"""The audit chain detects an edited, a deleted, a reordered and a truncated entry, and never forks."""

from __future__ import annotations

import base64
import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text

from portal.audit import log as audit
from portal.cli import main
from portal.db import make_engine, session_scope
from portal.settings import Settings


def write_entries(engine: Engine, count: int) -> None:
    with session_scope(engine) as db:
        for i in range(count):
            audit.record(db, "tip.opened", actor=f"staff:{i}", tip_id=f"{i:032x}", detail={"n": i})


def verdict(engine: Engine) -> audit.Verdict:
    with session_scope(engine) as db:
        return audit.verify(db)


def test_an_untouched_chain_verifies(engine: Engine) -> None:
    write_entries(engine, 5)
    assert verdict(engine) == audit.Verdict(True, 5)


@pytest.mark.parametrize(
    ("tamper", "first_broken"),
    [
        ("UPDATE auditentry SET actor = 'staff:99' WHERE seq = 3", 3),
        ("UPDATE auditentry SET detail = '{\"n\": 7}' WHERE seq = 2", 2),
        ("DELETE FROM auditentry WHERE seq = 3", 3),
        ("DELETE FROM auditentry WHERE seq = 5", 5),
    ],
)
def test_tampering_is_found_at_the_right_entry(engine: Engine, tamper: str, first_broken: int) -> None:
    write_entries(engine, 5)
    with engine.begin() as conn:
        conn.execute(text(tamper))
    result = verdict(engine)
    assert not result.ok
    assert result.first_broken == first_broken


def test_reordering_is_found(engine: Engine) -> None:
    write_entries(engine, 5)
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT seq, actor, tip_id FROM auditentry WHERE seq IN (2, 3)")).all()
        (seq_a, actor_a, tip_a), (seq_b, actor_b, tip_b) = rows
        conn.execute(
            text("UPDATE auditentry SET actor=:a, tip_id=:t WHERE seq=:s"),
            {"a": actor_b, "t": tip_b, "s": seq_a},
        )
        conn.execute(
            text("UPDATE auditentry SET actor=:a, tip_id=:t WHERE seq=:s"),
            {"a": actor_a, "t": tip_a, "s": seq_b},
        )
    result = verdict(engine)
    assert not result.ok and result.first_broken == 2


def test_concurrent_appends_never_fork(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(4)]
    errors: list[BaseException] = []

    def append(engine: Engine) -> None:
        try:
            write_entries(engine, 10)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=append, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert verdict(engines[0]) == audit.Verdict(True, 40)
    for engine in engines:
        engine.dispose()


def test_cli_names_the_first_broken_entry(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_entries(engine, 3)
    environment = {
        "LYKTA_DATA_DIR": str(settings.data_dir),
        "LYKTA_DATABASE_URL": settings.database_url,
        "LYKTA_SIGNING_KEY": str(settings.secrets.signing_key),
        "LYKTA_INSTANCE_SALT": base64.b64encode(settings.secrets.instance_salt).decode(),
        "LYKTA_PEPPER": str(settings.secrets.pepper),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    ok = CliRunner().invoke(main, ["audit", "verify"])
    assert ok.exit_code == 0 and "3 entries" in ok.output
    with engine.begin() as conn:
        conn.execute(text("UPDATE auditentry SET action = 'tip.noted' WHERE seq = 2"))
    broken = CliRunner().invoke(main, ["audit", "verify"])
    assert broken.exit_code != 0 and "entry 2" in broken.output
