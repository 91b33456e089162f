"""Deriving mailbox keys from reply codes, off the event loop and under a cap (DESIGN 3).

Each derivation is one Argon2id run over 64 MiB. A semaphore bounds how many run at once in this process
(so memory stays bounded: cap x 64 MiB), and a bound on the queue behind it turns a flood into quick
"busy" answers instead of an ever-growing backlog. The cap is per process; the global guessing budget is
the rate limit in the database (portal.ratelimit).
"""

from __future__ import annotations

import asyncio

import anyio.to_thread

import crypto
from portal.settings import Settings


class DerivationBusyError(Exception):
    """Too many derivations are waiting already; the resident is asked to try again shortly."""


class MailboxDeriver:
    def __init__(
        self, settings: Settings, *, params: crypto.Argon2Params = crypto.REPLY_CODE_PARAMS_V1
    ) -> None:
        self._salt = settings.secrets.instance_salt
        self._pepper = settings.pepper
        self.params = params
        self._running = asyncio.Semaphore(settings.reply_code_concurrency)
        # Enough queue for a burst of residents (each waits about one derivation per place ahead of it);
        # beyond it, a quick "busy, try again" is kinder than a minute's wait.
        self._max_waiting = 32 * settings.reply_code_concurrency
        self._waiting = 0  # admitted: running or queued
        self._running_now = 0
        self.refused = 0  # "busy" answers since start (portal.metrics publishes these three)

    @property
    def running(self) -> int:
        return self._running_now

    @property
    def queued(self) -> int:
        return self._waiting - self._running_now

    def _derive(self, code: crypto.ReplyCode) -> crypto.MailboxKeys:
        return crypto.derive_mailbox(code, instance_salt=self._salt, pepper=self._pepper, params=self.params)

    async def derive(self, code: crypto.ReplyCode) -> crypto.MailboxKeys:
        if self._waiting >= self._max_waiting:
            self.refused += 1
            raise DerivationBusyError()
        self._waiting += 1
        try:
            async with self._running:
                self._running_now += 1
                try:
                    return await anyio.to_thread.run_sync(self._derive, code)
                finally:
                    self._running_now -= 1
        finally:
            self._waiting -= 1
