"""A real `lykta serve` for the tests that need one: the crash, two-process, attack and browser tests.

What those harnesses share: the `lykta` command, a free loopback port, an environment holding only the
instance's LYKTA_* settings, a fresh PostgreSQL database, a new instance (`lykta init`, `lykta demo`), and
`Server`, one `lykta serve` in a process group of its own with its output in one file. What each harness does
with its server (kill it, sample it from /proc, drive a browser at it) stays in the harness.

PostgreSQL is used whenever LYKTA_TEST_DATABASE_URL names a server (CI always sets it). A test that needs it
fails without it on CI (CI=true), so that a missing database there is never a quiet skip, and is skipped
with a reason on a developer's machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from portal import db

REPO = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("LYKTA_TEST_DATABASE_URL", "")
STARTUP_SECONDS = 120
STOP_SECONDS = 30


def lykta_command() -> list[str]:
    """The `lykta` script installed next to this Python (the venv's), else the module behind it."""
    found = shutil.which("lykta", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-c", "from portal.cli import main; main()"]


def run_lykta(*args: str, environ: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lykta_command(), *args], env=environ, cwd=cwd, capture_output=True, text=True, check=False
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def lykta_environment(
    data_dir: Path, *, database_url: str | None = None, settings: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment without the developer's own LYKTA_* settings, plus the instance's data
    directory, its database (by default SQLite in the data directory) and `settings` (LYKTA_* names).
    The server runs this checkout's code, whatever is installed."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LYKTA_")}
    environ["LYKTA_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        environ["LYKTA_DATABASE_URL"] = database_url
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    return environ | dict(settings or {})


def postgres_admin_url(*, needed_by: str) -> str:
    """LYKTA_TEST_DATABASE_URL; without it the test fails on CI and is skipped with a reason elsewhere."""
    if not POSTGRES_URL:
        if os.environ.get("CI", "").lower() in {"true", "1", "yes"}:
            pytest.fail(f"LYKTA_TEST_DATABASE_URL is not set: CI must run {needed_by}")
        pytest.skip("needs PostgreSQL: set LYKTA_TEST_DATABASE_URL=postgresql://... (CI always does)")
    return POSTGRES_URL


@contextlib.contextmanager
def fresh_postgres_database(prefix: str, *, needed_by: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database on the server of LYKTA_TEST_DATABASE_URL, dropped
    afterwards (connections still open are cut)."""
    admin_url = postgres_admin_url(needed_by=needed_by)
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(db.normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def set_up_instance(environ: Mapping[str, str], workdir: Path) -> dict[str, Any]:
    """`lykta init` and `lykta demo --accounts-json` in `workdir`: the demo accounts it wrote."""
    accounts_path = workdir / "demo-accounts.json"
    for command in (["init"], ["demo", "--accounts-json", str(accounts_path)]):
        done = run_lykta(*command, environ=environ, cwd=workdir)
        assert done.returncode == 0, f"lykta {command[0]} failed:\n{done.stdout}{done.stderr}"
    accounts: dict[str, Any] = json.loads(accounts_path.read_text())
    return accounts


def living_members(pgid: int) -> list[int]:
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
    """`lykta serve` on one free loopback port, which it keeps when started again (after a kill, say).

    It runs in a session of its own, so a signal to its process group reaches the workers too (and the
    multiprocessing helpers uvicorn starts with them): nothing of a killed server survives it. Its stdout
    and stderr, the whole of what it logs, go to `log_path`, emptied at the first start; a later start
    appends, after a marker line.
    """

    def __init__(
        self, environ: Mapping[str, str], log_path: Path, *, cwd: Path, workers: int = 1, part: str = "all"
    ) -> None:
        self.environ, self.log_path, self.cwd, self.workers = dict(environ), log_path, cwd, workers
        self.part = part  # `lykta serve --part`: all, resident or staff
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.spawn()
        self.wait_until_ready()

    def spawn(self) -> None:
        """Start the process without waiting for it to answer (several servers may then start at once)."""
        command = [
            *lykta_command(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--part",
            self.part,
        ]
        with self.log_path.open("ab" if self.starts else "wb") as log:
            if self.starts:
                log.write(f"--- start {self.starts + 1}\n".encode())
                log.flush()
            self.process = subprocess.Popen(
                [*command, "--workers", str(self.workers)],
                env=self.environ,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def wait_until_ready(self, *, timeout: float = STARTUP_SECONDS) -> None:
        """Until /healthz answers, which it does once a worker serves and reads the database."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"lykta serve exited with {self.process.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.TransportError):
                healthz = "/staff/healthz" if self.part == "staff" else "/healthz"
                if httpx.get(f"{self.url}{healthz}", timeout=5).status_code == 200:
                    return
            time.sleep(0.1)
        pytest.fail(f"lykta serve did not answer within {timeout} s:\n{self.output()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group, and wait until every process of it is gone."""
        assert self.process is not None
        pgid = self.process.pid  # start_new_session: the server leads its own group
        os.killpg(pgid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not living_members(pgid):
                return
            time.sleep(0.05)
        pytest.fail(f"processes {living_members(pgid)} of the killed server are still there after 30 s")

    def stop(self) -> None:
        """SIGTERM to the process group; SIGKILL if it has not stopped within STOP_SECONDS."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
