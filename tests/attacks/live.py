"""A real `lykta serve` for the attack tests, and what an attacker's or a resident's HTTP client does to it.

The server (tests/live_server.py) runs this checkout's code with the production Argon2id parameters (what a
guesser really costs the server), a fresh data directory with the demo network, and its stdout and stderr
captured in one file, which is the whole of what the process logs. `ProcessGauge` reads its CPU time and
resident memory from /proc, so tests can bound what an attack cost the server without timing anything.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pyotp
from sqlalchemy import create_engine, update
from sqlmodel import Session

from portal.accounts.login import TOTP_STEP_SECONDS, TOTP_WINDOW
from portal.ratelimit import RateCounter
from portal.submission.mailbox import FOLLOWUP_BUCKET
from tests.live_server import Server, lykta_environment, set_up_instance
from tests.portal.submission.browser import form_token

# Small, so that a test spends the whole budget in a few seconds (the default is 30 a minute).
FOLLOWUP_ATTEMPTS_PER_MINUTE = 8
BODY_IDLE_SECONDS = 3
MAX_UPLOAD_BYTES = 2 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ProcessSample:
    cpu_seconds: float  # user + system, of the process and of its threads
    rss_bytes: int
    peak_rss_bytes: int


class ProcessGauge:
    """CPU time and memory of one process, from /proc/PID/stat and /proc/PID/status."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ticks = os.sysconf("SC_CLK_TCK")

    def sample(self) -> ProcessSample:
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        # The command name may hold spaces: fields are counted after its closing parenthesis.
        fields = stat[stat.rindex(")") + 2 :].split()
        utime, stime = int(fields[11]), int(fields[12])
        status = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines()
            if ":" in line
        )
        return ProcessSample(
            cpu_seconds=(utime + stime) / self.ticks,
            rss_bytes=int(status["VmRSS"].split()[0]) * 1024,
            peak_rss_bytes=int(status["VmHWM"].split()[0]) * 1024,
        )


class LiveLykta(Server):
    """A new instance (`lykta init`, `lykta demo`) in `workdir`, and `lykta serve` on it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "var"
        self.database_url = f"sqlite:///{self.data_dir / 'lykta.sqlite3'}"
        settings = {
            "LYKTA_FOLLOWUP_ATTEMPTS_PER_MINUTE": str(FOLLOWUP_ATTEMPTS_PER_MINUTE),
            "LYKTA_REPLY_CODE_CONCURRENCY": "1",
            "LYKTA_BODY_IDLE_SECONDS": str(BODY_IDLE_SECONDS),
            "LYKTA_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
        }
        super().__init__(
            lykta_environment(self.data_dir, settings=settings), workdir / "server.log", cwd=workdir
        )
        self.accounts: dict[str, Any] = {}
        self.totp_steps: dict[str, int] = {}

    def start(self) -> None:
        if not self.starts:  # the instance is set up once, before the first start
            self.accounts = set_up_instance(self.environ, self.workdir)
        super().start()

    def let_the_rate_window_pass(self) -> None:
        """What a minute does to the reply-code budget, without waiting for it: this window's count becomes
        an old window's (portal.ratelimit counts per fixed window and forgets the old ones)."""
        engine = create_engine(self.database_url)
        try:
            with Session(engine) as db:
                db.exec(  # type: ignore[call-overload]
                    update(RateCounter)
                    .where(RateCounter.bucket == FOLLOWUP_BUCKET)  # type: ignore[arg-type]
                    .values(window=RateCounter.window - 2)
                )
                db.commit()
        finally:
            engine.dispose()

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=True, timeout=60)

    def account(self, *, role: str) -> dict[str, Any]:
        return next(a for a in self.accounts["accounts"] if a["role"] == role)

    def totp(self, who: dict[str, Any]) -> str:
        """A code the server has not seen for this account yet (it accepts each step once, one step of drift
        either way); waits for the clock when all of them are spent, as a person would."""
        totp = pyotp.TOTP(who["totp_secret"], interval=TOTP_STEP_SECONDS)
        while True:
            current = int(time.time() // TOTP_STEP_SECONDS)
            step = max(current - TOTP_WINDOW, self.totp_steps.get(who["username"], -1) + 1)
            if step <= current + TOTP_WINDOW:
                self.totp_steps[who["username"]] = step
                return totp.at(step * TOTP_STEP_SECONDS)
            time.sleep(TOTP_STEP_SECONDS - time.time() % TOTP_STEP_SECONDS + 0.05)

    def staff_login(self, browser: httpx.Client, who: dict[str, Any], **changes: str) -> httpx.Response:
        page = browser.get("/staff/login")
        fields = {
            "username": who["username"],
            "passphrase": who["password"],
            "code": self.totp(who),
            "csrf": form_token(page.text, "/staff/login"),
        }
        return browser.post("/staff/login", data={**fields, **changes})
