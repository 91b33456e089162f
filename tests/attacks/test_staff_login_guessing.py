"""Guessing staff passphrases (issue 6, item 4): the per-account and global throttles hold, the right
passphrase and code work once the window has passed, and every kind of wrong login costs the server the
same Argon2id work, so the answer's cost does not tell which usernames exist.

Already covered elsewhere, not repeated: the per-account budget against one account
(tests/portal/triage/test_staff_flow.py), unknown versus known user for a wrong passphrase (same file).
The throttle window is moved on by giving portal.ratelimit a later clock, as a minute would.
"""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest
from sqlmodel import select
from starlette.testclient import TestClient

import crypto
from portal import ratelimit
from portal.accounts import login as login_module
from portal.accounts.models import StaffAccount
from portal.db import session_scope
from portal.triage.views import LOGIN_GLOBAL_PER_MINUTE, LOGIN_PER_ACCOUNT_PER_MINUTE
from portal.web import Services
from tests.portal.accounts.people import invite
from tests.portal.triage.test_staff_flow import account, staff_login


class RateClock:
    """Stands in for `time` in portal.ratelimit: the real time, plus what the test lets pass."""

    def __init__(self) -> None:
        self.passed = 0.0

    def time(self) -> float:
        return time.time() + self.passed


@pytest.fixture
def rate_clock(monkeypatch: pytest.MonkeyPatch) -> RateClock:
    clock = RateClock()
    monkeypatch.setattr(ratelimit, "time", clock)
    return clock


@pytest.fixture
def unwraps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real_unwrap = crypto.unwrap_secret

    def counting_unwrap(blob: bytes, passphrase: str) -> bytes:
        calls.append("unwrap")
        return real_unwrap(blob, passphrase)

    monkeypatch.setattr(login_module.crypto, "unwrap_secret", counting_unwrap)
    return calls


def guess(client: TestClient, username: str) -> int:
    who = {
        "username": username,
        "password": "guessed passphrase number one",
        "totp_secret": pyotp.random_base32(),
    }
    return int(staff_login(client, who).status_code)


def test_the_global_budget_holds_across_usernames_and_the_right_login_works_after_it(
    client: TestClient, demo_accounts: dict[str, Any], rate_clock: RateClock, unwraps: list[str]
) -> None:
    officer = account(demo_accounts, role="officer")
    # Spread over many usernames, so that no per-account budget is reached first.
    statuses = [guess(client, f"guess-{i}") for i in range(LOGIN_GLOBAL_PER_MINUTE)]
    assert statuses == [400] * LOGIN_GLOBAL_PER_MINUTE
    assert len(unwraps) == LOGIN_GLOBAL_PER_MINUTE
    # The budget is spent: more guesses, and the right passphrase and code too, wait; and cost nothing.
    assert [guess(client, f"more-{i}") for i in range(10)] == [429] * 10
    assert staff_login(client, officer).status_code == 429
    assert len(unwraps) == LOGIN_GLOBAL_PER_MINUTE
    rate_clock.passed += ratelimit.WINDOW_SECONDS
    inbox = staff_login(client, officer)
    assert inbox.status_code == 200 and inbox.url.path == "/staff/"


def test_the_account_budget_lets_the_owner_in_after_the_window(
    client: TestClient, demo_accounts: dict[str, Any], rate_clock: RateClock, unwraps: list[str]
) -> None:
    officer = account(demo_accounts, role="officer")
    wrong = {**officer, "password": "a wrong passphrase for the officer"}
    assert [staff_login(client, wrong).status_code for _ in range(LOGIN_PER_ACCOUNT_PER_MINUTE)] == [400] * 5
    # The same username typed differently is the same account's budget (NFKC, case, spaces).
    respelled = {**officer, "username": f"  {officer['username'].upper()} "}
    assert staff_login(client, respelled).status_code == 429
    assert staff_login(client, officer).status_code == 429
    assert len(unwraps) == LOGIN_PER_ACCOUNT_PER_MINUTE  # throttled attempts derive nothing
    rate_clock.passed += ratelimit.WINDOW_SECONDS
    assert staff_login(client, officer).url.path == "/staff/"


def test_every_kind_of_wrong_login_costs_one_argon2id_run(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], unwraps: list[str]
) -> None:
    officer = account(demo_accounts, role="officer")
    disabled = account(demo_accounts, role="analyst")
    with session_scope(services.engine) as db:
        row = db.exec(select(StaffAccount).where(StaffAccount.username == disabled["username"])).one()
        row.disabled = True
    invite(services, "invited.not.enrolled")  # an account with no key and no authenticator yet
    attempts: dict[str, dict[str, Any]] = {
        "unknown user": {
            "username": "nobody.at.all",
            "password": "x" * 20,
            "totp_secret": officer["totp_secret"],
        },
        "known user, wrong passphrase": {**officer, "password": "not the passphrase at all"},
        "right passphrase, wrong code": officer,
        "disabled user, right passphrase": disabled,
        "invited, not enrolled": {**officer, "username": "invited.not.enrolled"},
    }
    for what, who in attempts.items():
        unwraps.clear()
        code = "000000" if what == "right passphrase, wrong code" else None
        if code is not None and pyotp.TOTP(who["totp_secret"]).verify(code, valid_window=1):
            code = "999999"  # the unlikely chance that 000000 is right just now
        response = staff_login(client, who, code=code)
        assert response.status_code == 400, what
        assert unwraps == ["unwrap"], (what, unwraps)
        assert "lykta_staff" not in client.cookies, what
