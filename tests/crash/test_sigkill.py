"""Crash consistency (issue 6, item 3): SIGKILL the server while residents send tips with files, restart it.

A real `lykta serve` (one process on SQLite; on PostgreSQL two workers, killed as a whole process group)
on a fresh instance with the demo network. Two residents send tips with files of random bytes through the
real form flow (form tokens, review, multipart send) and follow them up (reply-code login, mailbox, an
answer with or without a file) as fast as they can, while the server is killed with SIGKILL at random
moments (most of them while a send is on its way) and started again, several times. Afterwards, with the
server stopped:

* every tip whose reply code and case number a resident received opens with the desks' keys, with every
  file byte-identical, and every follow-up the server confirmed is in its conversation, with its files;
* a tip or message the resident was not told about (the connection died) is there whole or not at all;
* no half-written row: every file has all its chunks, numbered without gaps; no chunk, file, message or
  recipient row without its owner; every tip has recipients (consistency.HALF_WRITTEN);
* `lykta audit verify` passes; on SQLite `PRAGMA integrity_check` says ok and no foreign key is broken.

The kill times and file contents come from one seed, printed; LYKTA_CRASH_SEED=<seed> repeats them (the
moments the kills land on still depend on the machine's speed). PostgreSQL runs whenever
LYKTA_TEST_DATABASE_URL names a server (CI always sets it); without it the test fails on CI and is skipped
with a reason elsewhere (tests/live_server.py).
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portal import db
from tests.crash.consistency import check_tips, half_written_rows
from tests.crash.workload import LANG, Resident
from tests.live_server import Server, fresh_postgres_database, lykta_environment, run_lykta, set_up_instance
from tests.portal.submission.browser import form_token

KILLS = 4
UPTIME = (1.5, 4.0)  # seconds the server serves before each kill, drawn from the seed
RESIDENTS = 2
WORKERS = {"sqlite": 1, "postgresql": 2}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of `backend`: a file in the data directory, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'lykta.sqlite3'}"
        return
    with fresh_postgres_database("lykta_crash", needed_by="the crash test on PostgreSQL too") as url:
        yield url


@pytest.fixture
def instance(
    backend: str, database_url: str, tmp_path: Path
) -> Iterator[tuple[Server, dict[str, Any], dict[str, str]]]:
    """A fresh instance (`lykta init`, `lykta demo --accounts-json`) and its server, not yet started."""
    # The residents log in with their reply codes over and over; the global guessing limit is not what
    # this test is about.
    settings = {"LYKTA_FOLLOWUP_ATTEMPTS_PER_MINUTE": "100000"}
    environ = lykta_environment(tmp_path / "data", database_url=database_url, settings=settings)
    accounts = set_up_instance(environ, tmp_path)
    server = Server(environ, tmp_path / "serve.log", cwd=tmp_path, workers=WORKERS[backend])
    try:
        yield server, accounts, environ
    finally:
        server.stop()


def _aim(rng: random.Random, residents: list[Resident]) -> None:
    """Most kills land while a send is on its way (uploading, encrypting, or committing), the rest
    wherever they fall: wait up to a few seconds for a resident to be sending, then a random moment more."""
    if rng.random() < 0.25:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(r.sending.is_set() for r in residents):
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.4))


def _kill_while_sending(server: Server, rng: random.Random, seed: int) -> tuple[list[Resident], int]:
    """Start the server and the residents; KILLS times: wait a random while, SIGKILL, start again.
    The residents, and how many kills landed while a send was on its way."""
    server.start()
    stop = threading.Event()
    residents = [Resident(f"r{i}", server.url, seed=seed + i, stop=stop) for i in range(RESIDENTS)]
    for resident in residents:
        resident.start()
    mid_send = 0
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(*UPTIME))
            _aim(rng, residents)
            mid_send += any(r.sending.is_set() for r in residents)
            server.kill()
            server.start()
        # The last server gets its own stretch of work, so the residents are seen to carry on after a kill.
        time.sleep(rng.uniform(*UPTIME))
    finally:
        stop.set()
        for resident in residents:
            resident.join(timeout=180)
    for resident in residents:
        if resident.failure is not None:
            raise resident.failure
        assert not resident.is_alive(), f"{resident.name} did not stop"
    return residents, mid_send


def _log_in_over_http(server: Server, reply_code: str, marker: str) -> None:
    """The tipster's own way in: the restarted server opens the mailbox for the code and shows the tip."""
    with httpx.Client(base_url=server.url, timeout=60) as browser:
        login = browser.get(f"/{LANG}/followup")
        mailbox = browser.post(
            f"/{LANG}/followup",
            data={"reply_code": reply_code, "csrf": form_token(login.text, f"/{LANG}/followup")},
            follow_redirects=True,
        )
    assert mailbox.url.path == f"/{LANG}/mailbox" and marker in mailbox.text, mailbox.status_code


def test_sigkill_loses_nothing_confirmed_and_leaves_nothing_half_written(
    backend: str, database_url: str, instance: tuple[Server, dict[str, Any], dict[str, str]]
) -> None:
    server, accounts, environ = instance
    seed = int(os.environ.get("LYKTA_CRASH_SEED") or secrets.randbits(32))
    print(f"\ncrash test on {backend}: seed {seed} (LYKTA_CRASH_SEED={seed} repeats it)")
    began = time.monotonic()
    residents, mid_send = _kill_while_sending(server, random.Random(seed), seed)
    outcomes = [r.outcomes for r in residents]
    tips_tried = [t for o in outcomes for t in o.tips]
    confirmed = [t for t in tips_tried if t.confirmed]
    messages_tried = [m for o in outcomes for m in o.messages]
    assert confirmed, "no tip got through between the kills: the test proved nothing"
    assert [m for o in outcomes for m in o.unopened] == [], (
        "confirmed tips that their reply code did not open"
    )

    # The restarted server still lets tipsters in with codes confirmed before the kills (a sample: each
    # login is a real Argon2id derivation); all of them are opened with the desks' keys below.
    for tip in random.Random(seed).sample(confirmed, min(3, len(confirmed))):
        assert tip.reply_code is not None
        _log_in_over_http(server, tip.reply_code, tip.marker)
    server.stop()

    engine = db.make_engine(database_url)
    try:
        assert half_written_rows(engine) == []
        verdict = check_tips(engine, accounts, outcomes)
    finally:
        engine.dispose()
    print(
        f"{backend}: {KILLS} kills ({mid_send} during a send), {server.starts} starts, "
        f"{time.monotonic() - began:.0f} s; "
        f"tips tried {len(tips_tried)}, confirmed {len(confirmed)}, stored {verdict.tips_stored}; "
        f"messages tried {len(messages_tried)}, confirmed {sum(m.confirmed for m in messages_tried)}, "
        f"stored {verdict.messages_stored}; files checked {verdict.files_checked}; "
        f"requests cut off {sum(o.cut_off for o in outcomes)}; "
        f"other refusals {[r for o in outcomes for r in o.refused]}"
    )
    assert verdict.problems == []

    verified = run_lykta("audit", "verify", environ=environ, cwd=server.cwd)
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout + verified.stderr
    if backend == "sqlite":
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
