"""The HTTP/1.1 protocol `lykta serve` runs: uvicorn's h11 protocol with a deadline for the request head.

uvicorn times out only idle keep-alive connections; a client that opens a connection and sends its request
head a byte at a time ("slowloris") holds the connection, a file descriptor and a buffer for as long as it
likes, and a few thousand such clients use up the process. Here the whole head (request line and headers)
must arrive within HEAD_TIMEOUT_SECONDS of the connection opening, or of the previous response on a
keep-alive connection; otherwise the connection is closed. A browser, even over Tor, sends its head in one
piece. A slow body is the ASGI middleware's business (portal.middleware.BodyLimit), where the view can
refuse it with nothing stored. Found by tests/attacks/test_slow_and_oversized.py.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT_SECONDS = 10.0


class HeadTimeoutProtocol(H11Protocol):
    head_timeout = HEAD_TIMEOUT_SECONDS
    _head_deadline: asyncio.TimerHandle | None = None

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        # Still waiting for a complete head: h11 stays IDLE until the request line and headers are parsed.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)
