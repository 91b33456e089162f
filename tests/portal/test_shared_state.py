"""Two Lykta processes doing the same thing at once (issue 5, item 1): they share nothing but the database,
so what one process does must hold for the other, whatever the interleaving.

Each engine here stands for one process (its own connection pool); a transaction left open in one while
the other commits is the interleaving two processes can produce. tests/test_two_processes.py runs two real
`lykta serve` processes for the same properties end to end.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

import pyotp
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from portal import ratelimit
from portal.accounts.login import authenticate
from portal.accounts.models import StaffAccount
from portal.db import make_engine, session_scope
from portal.sessions import SessionRow, SessionStore
from portal.settings import Settings

pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")


def _needs_postgresql(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        # Not a gap: every SQLite write transaction starts with BEGIN IMMEDIATE (portal/db.py), so a second
        # writer cannot even begin while the first is open; this interleaving cannot happen there.
        pytest.skip("SQLite serialises writing transactions; the interleaving needs PostgreSQL")


def test_the_global_rate_limit_holds_across_processes(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(2)]
    limit, attempts_each = 7, 10
    answers: list[bool] = []
    start = threading.Barrier(len(engines))
    lock = threading.Lock()
    now = 1_800_000_000.0  # one fixed window for every attempt

    def guess(engine: Engine) -> None:
        start.wait()
        for _ in range(attempts_each):
            with session_scope(engine) as db:
                allowed = ratelimit.take(db, "followup", limit=limit, now=now)
            with lock:
                answers.append(allowed)

    threads = [threading.Thread(target=guess, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert len(answers) == 2 * attempts_each
    assert answers.count(True) == limit


def test_a_totp_code_is_accepted_once_when_two_processes_check_it_at_once(
    database_url: str, settings: Settings, demo_accounts: dict[str, Any], fast_argon2: Any
) -> None:
    _needs_postgresql(database_url)
    officer = next(a for a in demo_accounts["accounts"] if a["role"] == "officer")
    now = datetime.datetime.now(datetime.UTC).timestamp()
    code = pyotp.TOTP(officer["totp_secret"]).at(now)

    def log_in(db: Session) -> object:
        return authenticate(
            db,
            username=officer["username"],
            passphrase=officer["password"],
            totp_code=code,
            signing_key=settings.signing_key,
            keywrap_params=fast_argon2,
            now=now,
        )

    first, second = make_engine(database_url), make_engine(database_url)
    try:
        with Session(second) as other:
            # The second process has read the account (last accepted step: none yet) ...
            seen = other.exec(select(StaffAccount).where(StaffAccount.username == officer["username"])).one()
            # ... when the first accepts the code and commits.
            with session_scope(first) as db:
                assert log_in(db) is not None
            assert log_in(other) is None
            assert seen.totp_last_step == 0  # what it had read: the refusal did not come from a fresh read
            other.commit()
    finally:
        first.dispose()
        second.dispose()


def test_a_session_ended_by_another_process_meanwhile_is_no_error(
    database_url: str, settings: Settings
) -> None:
    _needs_postgresql(database_url)
    store = SessionStore(settings.signing_key)
    first, second = make_engine(database_url), make_engine(database_url)
    try:
        with session_scope(first) as db:
            cookie = store.start(db, kind="tipster", subject="t" * 32, secret=b"k" * 32)
        idle = datetime.timedelta(minutes=15)
        with Session(second) as other:
            in_hand = other.exec(select(SessionRow)).all()  # this process has the row in hand ...
            with session_scope(first) as db:
                store.end(db, cookie)  # ... when the tipster logs out through the other one
            store.open(other, cookie, kind="tipster", idle=idle)
            other.commit()  # touching a row that is gone is no error (the ORM's flush would raise)
            assert len(in_hand) == 1
        with session_scope(second) as db:
            assert store.open(db, cookie, kind="tipster", idle=idle) is None
    finally:
        first.dispose()
        second.dispose()
