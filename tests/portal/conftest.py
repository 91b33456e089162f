"""Fixtures for the app tests."""

from __future__ import annotations

import time

import pyotp
import pytest

from portal.accounts import login as login_module


class StaffClock:
    """Stands in for `time` in portal.accounts.login.

    Each staff login in a test happens 30 seconds after the one before, so its TOTP code belongs to a new
    step: the replay protection sees fresh codes unless a test reuses one on purpose.
    """

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def next_code(self, secret: str) -> str:
        self.now += 30
        return str(pyotp.TOTP(secret).at(self.now))


@pytest.fixture(autouse=True)
def staff_clock(monkeypatch: pytest.MonkeyPatch) -> StaffClock:
    clock = StaffClock()
    monkeypatch.setattr(login_module, "time", clock)
    return clock
