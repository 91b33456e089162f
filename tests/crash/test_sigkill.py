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
with a reason elsewhere, as in tests/test_two_processes.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from portal import db
from tests.crash.consistency import check_tips, half_written_rows
from tests.crash.workload import LANG, Resident
from tests.portal.submission.browser import form_token

POSTGRES_URL = os.environ.get("LYKTA_TEST_DATABASE_URL", "")
REPO = Path(__file__).resolve().parents[2]
KILLS = 4
UPTIME = (1.5, 4.0)  # seconds the server serves before each kill, drawn from the seed
RESIDENTS = 2
WORKERS = {"sqlite": 1, "postgresql": 2}


def _lykta() -> list[str]:
    found = shutil.which("lykta", path=str(Path(sys.executable).parent)) or shutil.which("lykta")
    if found is None:
        pytest.fail("the `lykta` command is not installed (pip install -e .)")
    return [found]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of `backend`: a file in the data directory, or a PostgreSQL database created
    from the admin URL in LYKTA_TEST_DATABASE_URL and dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'lykta.sqlite3'}"
        return
    if not POSTGRES_URL:
        if os.environ.get("CI", "").lower() in {"true", "1", "yes"}:
            pytest.fail("LYKTA_TEST_DATABASE_URL is not set: CI must run the crash test on PostgreSQL too")
        pytest.skip("needs PostgreSQL: set LYKTA_TEST_DATABASE_URL=postgresql://... (CI always does)")
    name = f"lykta_crash_{secrets.token_hex(6)}"
    admin = create_engine(db.normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _environment(database_url: str, data_dir: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LYKTA_")}
    return environ | {
        "LYKTA_DATA_DIR": str(data_dir),
        "LYKTA_DATABASE_URL": database_url,
        # The residents log in with their reply codes over and over; the global guessing limit is not
        # what this test is about.
        "LYKTA_FOLLOWUP_ATTEMPTS_PER_MINUTE": "100000",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _living_members(pgid: int) -> list[int]:
    """The processes of group `pgid` that still run. A killed worker whose new parent (PID 1 of a container,
    say) does not reap it stays a zombie: it holds no socket and runs no code, so it does not count."""
    living = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(group) == pgid and state not in {"Z", "X"}:
                living.append(int(stat.parent.name))
    return living


class Server:
    """`lykta serve` on one loopback port, started again on the same port after each kill.

    It runs in a session of its own, so SIGKILL to its process group reaches the workers too (and the
    multiprocessing helpers uvicorn starts with them): nothing of the old server survives a kill.
    """

    def __init__(self, environ: dict[str, str], log: Path, *, workers: int) -> None:
        self.environ, self.log, self.workers = environ, log, workers
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        command = [*_lykta(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [*command, "--workers", str(self.workers)],
                env=self.environ,
                cwd=self.log.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self.wait_until_ready()

    def wait_until_ready(self, *, timeout: float = 120) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"lykta serve exited with {self.process.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/{LANG}/followup", timeout=5).status_code == 200:
                    return
            time.sleep(0.1)
        pytest.fail(f"lykta serve did not answer within {timeout} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL the whole process group, and wait until every process of it is gone."""
        assert self.process is not None
        pgid = self.process.pid  # start_new_session: the server leads its own group
        os.killpg(pgid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not _living_members(pgid):
                return
            time.sleep(0.05)
        pytest.fail(f"processes {_living_members(pgid)} of the killed server are still there after 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def instance(
    backend: str, database_url: str, tmp_path: Path
) -> Iterator[tuple[Server, dict[str, Any], dict[str, str]]]:
    """A fresh instance (`lykta init`, `lykta demo --accounts-json`) and its server, not yet started."""
    environ = _environment(database_url, tmp_path / "data")
    accounts_file = tmp_path / "demo-accounts.json"
    for command in (["init"], ["demo", "--accounts-json", str(accounts_file)]):
        done = subprocess.run(
            [*_lykta(), *command], env=environ, cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    server = Server(environ, tmp_path / "serve.log", workers=WORKERS[backend])
    try:
        yield server, json.loads(accounts_file.read_text()), environ
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

    verified = subprocess.run(
        [*_lykta(), "audit", "verify"], env=environ, cwd=server.log.parent, capture_output=True, text=True
    )
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout + verified.stderr
    if backend == "sqlite":
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
