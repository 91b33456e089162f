"""Middleware, each a plain ASGI class; `portal.app` lists them in order in one place.

* SecurityHeaders: CSP and friends on every response, no-store on pages, Onion-Location when configured.
* AccessLog: method, route, status and duration, and nothing that identifies a person: no client
  address, user agent, referrer or query string (DESIGN 4). Answered probes (/healthz, /metrics) are not
  logged: a proxy asks every few seconds; a failed one is.
* BodyLimit: cut off bodies at a per-route limit; of a body declared longer, read only the start (the fields);
  and give up on a body that stops arriving for `idle_seconds` (uvicorn has no such timeout of its own).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from urllib.parse import quote

import anyio
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("lykta.access")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
    "x-frame-options": "DENY",
}


ONION_PATH_SAFE = "/-._~!$&'()*+,;=:@"  # RFC 3986 pchar and "/", unencoded; everything else encoded


def security_headers(path: str, *, onion_address: str) -> dict[str, str]:
    """The headers every response to `path` carries (also used by the last-resort 500 page, which
    Starlette sends from outside the middleware stack)."""
    headers = dict(SECURITY_HEADERS)
    if not path.startswith("/static/"):
        # Pages may carry a reply code or a tip; no cache, shared or private, may keep them.
        headers["cache-control"] = "no-store"
    if onion_address:
        # The path as the client sent it may hold anything once decoded (CR, LF, NUL, any character): send
        # it percent-encoded again, never raw into a header (tests/attacks/test_header_injection.py).
        headers["onion-location"] = f"http://{onion_address}{quote(path, safe=ONION_PATH_SAFE)}"
    return headers


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, onion_address: str = "") -> None:
        self.app = app
        self.onion_address = onion_address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in security_headers(scope["path"], onion_address=self.onion_address).items():
                    if name == "content-security-policy" and name in headers:
                        # The response chose its own, stricter policy (a file download: sandbox). It was
                        # overwritten before (found by tests/attacks/test_hostile_names_and_markup.py).
                        continue
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


QUIET_ROUTES = frozenset({"/healthz", "/metrics"})


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "(unmatched)"
            if path not in QUIET_ROUTES or status >= 400:
                access_log.info(
                    "%s %s %d %.1fms", scope["method"], path, status, (time.perf_counter() - started) * 1000
                )


class BodyTooLargeError(Exception):
    pass


class BodyStalledError(BodyTooLargeError):
    """The body stopped arriving. A kind of BodyTooLargeError so that every view that refuses an oversized
    body (nothing stored, the form shown again) refuses a stalled one the same way."""


# How much of a body declared over its limit is still read: enough for any form's fields (issue 3, section 7:
# a refused form keeps what the resident typed).
DECLARED_TOO_LARGE_PREFIX = 256 * 1024


class BodyLimit:
    """Limit request bodies: `limits` maps a path predicate to a byte limit; the first match wins."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Sequence[tuple[Callable[[str], bool], int]],
        default: int,
        idle_seconds: float = 30.0,
    ) -> None:
        self.app = app
        self.limits = limits
        self.default = default
        self.idle_seconds = idle_seconds

    def limit_for(self, path: str) -> int:
        for matches, limit in self.limits:
            if matches(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        allowed = limit
        if declared is not None and not declared.isdigit():
            allowed = 0
        elif declared is not None and int(declared) > limit:
            # Too long as declared: the view still gets the start of it, where a form's fields are, so its
            # error page (translated) can show what the resident typed, without waiting for the whole upload.
            allowed = min(limit, DECLARED_TOO_LARGE_PREFIX)
        received = 0
        body_done = False

        async def counting_receive() -> Message:
            nonlocal received, body_done
            if received > allowed:
                raise BodyTooLargeError()
            if body_done:
                # Only a disconnect can come now, which a streaming response waits for as long as it sends.
                return await receive()
            # A client that stops sending mid-body (a "slow body" attack, or a dead connection) would hold
            # the request, its connection and its half-parsed upload for ever: uvicorn has no body timeout.
            with anyio.move_on_after(self.idle_seconds) as waited:
                message = await receive()
            if waited.cancelled_caught:
                raise BodyStalledError()
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                body = message.get("body", b"")
                received += len(body)
                if received > allowed:
                    # Hand on what fits; the next read fails, whatever the client says comes next.
                    message = {**message, "body": body[: len(body) - (received - allowed)], "more_body": True}
            return message

        await self.app(scope, counting_receive, send)
