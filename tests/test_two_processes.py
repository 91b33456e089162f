"""Two real `lykta serve` processes on one PostgreSQL database share what matters (issue 5, item 1).

A tip sent through one is read by an officer logged in through the other; a tipster's follow-up session
and an officer's session started on one continue on the other with the same cookie; and the global limit
on reply-code attempts counts the attempts made through both. The processes share nothing but the
database (docs/scaling.md).

Needs PostgreSQL: it runs whenever LYKTA_TEST_DATABASE_URL names a server (CI always sets it). Without it
the test fails on CI (CI=true), so that a missing database there is never a quiet skip, and is skipped with
a reason on a developer's machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

import crypto
from portal import db
from portal.audit import log as audit
from portal.network.models import Desk
from portal.ratelimit import WINDOW_SECONDS, RateCounter
from portal.submission.mailbox import FOLLOWUP_BUCKET
from portal.submission.models import Tip, TipRecipient
from tests.live_server import Server, fresh_postgres_database, lykta_environment, set_up_instance
from tests.portal.submission.browser import ANSWERS, file_fields, form_token, log_in, send_tip

ATTEMPTS_PER_MINUTE = 4  # small, so the test can spend the whole budget


@pytest.fixture
def database() -> Iterator[str]:
    """A new, empty PostgreSQL database for the two processes, dropped afterwards."""
    with fresh_postgres_database("lykta_two_processes", needed_by="the two-process PostgreSQL test") as url:
        yield url


@pytest.fixture
def instance(database: str, tmp_path: Path) -> Iterator[tuple[Server, Server, dict[str, Any], Engine]]:
    """`lykta init` and `lykta demo` on the new database, then two servers sharing it and one data directory
    (the instance secrets), and an engine for looking at the database directly."""
    settings = {
        "LYKTA_FOLLOWUP_ATTEMPTS_PER_MINUTE": str(ATTEMPTS_PER_MINUTE),
        "LYKTA_REPLY_CODE_CONCURRENCY": "1",
    }
    environ = lykta_environment(tmp_path / "data", database_url=database, settings=settings)
    accounts = set_up_instance(environ, tmp_path)
    servers = [Server(environ, tmp_path / f"{name}.log", cwd=tmp_path) for name in ("first", "second")]
    engine = db.make_engine(database)
    try:
        for server in servers:  # both start at once; then wait for each
            server.spawn()
        for server in servers:
            server.wait_until_ready()
        yield servers[0], servers[1], accounts, engine
    finally:
        for server in servers:
            server.stop()
        engine.dispose()


def _browser(server: Server, cookies: httpx.Cookies | None = None) -> httpx.Client:
    """A browser on `server`; given another browser's cookies, the same browser reaching the other process
    (as a reverse proxy would send it to either)."""
    return httpx.Client(base_url=server.url, follow_redirects=True, cookies=cookies, timeout=120)


def _officer_for(engine: Engine, accounts: dict[str, Any], case_number: str) -> tuple[str, dict[str, Any]]:
    with Session(engine) as session:
        tip = session.exec(select(Tip).where(Tip.case_number == case_number)).one()
        desks = set(
            session.exec(select(Desk.code).join(TipRecipient).where(TipRecipient.tip_id == tip.id)).all()
        )
    officer = next(a for a in accounts["accounts"] if set(a["desks"]) & desks)
    return tip.id, officer


def _staff_login(browser: httpx.Client, who: dict[str, Any]) -> httpx.Response:
    page = browser.get("/staff/login")
    return browser.post(
        "/staff/login",
        data={
            "username": who["username"],
            "passphrase": who["password"],
            "code": pyotp.TOTP(who["totp_secret"]).now(),
            "csrf": form_token(page.text, "/staff/login"),
        },
    )


def _counted(engine: Engine, window: int) -> int:
    with Session(engine) as session:
        row = session.get(RateCounter, (FOLLOWUP_BUCKET, window))
        return row.count if row is not None else 0


def _guess_in_one_window(
    engine: Engine, guessers: list[httpx.Client], tokens: list[str]
) -> tuple[int, list[tuple[int, int]]]:
    """Unknown reply codes, through each process in turn, all inside one rate-limit window: how many
    attempts the window had counted before, and (process, status) for each guess."""
    for _ in range(3):
        # Start early in a window, so that the guesses (a few Argon2id runs) end inside it. The window is
        # read back afterwards rather than trusted: if it moved on meanwhile, try again in the next one.
        if WINDOW_SECONDS - time.time() % WINDOW_SECONDS < 25:
            time.sleep(WINDOW_SECONDS - time.time() % WINDOW_SECONDS + 0.5)
        window = int(time.time() // WINDOW_SECONDS)
        before = _counted(engine, window)
        answers = []
        for i in range(2 * ATTEMPTS_PER_MINUTE + 2):
            which = i % 2
            code = crypto.ReplyCode.generate().grouped()
            response = guessers[which].post("/sv/followup", data={"reply_code": code, "csrf": tokens[which]})
            answers.append((which, response.status_code))
        if int(time.time() // WINDOW_SECONDS) == window:
            return before, answers
    pytest.fail("could not make the guesses inside one rate-limit window")


def test_two_processes_share_tips_sessions_and_the_rate_limit(
    instance: tuple[Server, Server, dict[str, Any], Engine],
) -> None:
    first, second, accounts, engine = instance

    # A tip sent through the first process ...
    resident = _browser(first)
    code, case_number = send_tip(resident, "sv", ANSWERS, [])  # type: ignore[arg-type]
    tip_id, officer = _officer_for(engine, accounts, case_number)

    # ... is read by an officer logged in through the second (decrypted there).
    officer_on_second = _browser(second)
    inbox = _staff_login(officer_on_second, officer)
    assert inbox.url.path == "/staff/" and case_number in inbox.text, inbox.text
    tip_page = officer_on_second.get(f"/staff/tips/{tip_id}")
    assert tip_page.status_code == 200 and ANSWERS["what"] in tip_page.text

    # The tipster logs in through the first process; the same cookie carries on through the second,
    # where they answer.
    mailbox = log_in(resident, "sv", code)  # type: ignore[arg-type]
    assert mailbox.status_code == 200 and ANSWERS["what"] in mailbox.text
    resident_on_second = _browser(second, cookies=resident.cookies)
    mailbox_there = resident_on_second.get("/sv/mailbox")
    assert mailbox_there.url.path == "/sv/mailbox" and ANSWERS["what"] in mailbox_there.text
    answer = "Det var runt klockan elva."
    sent = resident_on_second.post(
        "/sv/mailbox/reply",
        data={"message": answer, "csrf": form_token(mailbox_there.text, "/sv/mailbox/reply")},
        files=file_fields([]),
    )
    assert sent.status_code == 200 and answer in sent.text

    # The officer's session, started on the second process, carries on through the first.
    officer_on_first = _browser(first, cookies=officer_on_second.cookies)
    assert answer in officer_on_first.get(f"/staff/tips/{tip_id}").text

    # The reply-code guessing budget is one for all processes: guesses through both together get
    # ATTEMPTS_PER_MINUTE answers a minute, not that many from each.
    guessers = [_browser(first), _browser(second)]
    tokens = [form_token(g.get("/sv/followup").text, "/sv/followup") for g in guessers]
    before, answers = _guess_in_one_window(engine, guessers, tokens)
    allowed = max(0, ATTEMPTS_PER_MINUTE - before)
    statuses = [status for _which, status in answers]
    assert statuses == [400] * allowed + [429] * (len(answers) - allowed), (before, answers)
    assert {which for which, status in answers if status == 429} == {0, 1}
    for client in (resident, resident_on_second, officer_on_first, officer_on_second, *guessers):
        client.close()

    # Both processes appended to the audit log (the tip and the answer, the login, the openings): one chain.
    with Session(engine) as session:
        verdict = audit.verify(session)
    assert verdict.ok and verdict.entries >= 5, verdict
