"""`/healthz` for the reverse proxy and the service manager: "ok" while the database answers (issue 5, 7).

200 "ok" when a read of the migrations table succeeds (so an empty or wrong database file counts as down,
not only an unreachable server), else 503 "unavailable" and nothing more: the reason goes to the server log
as an exception class name, never to the caller. No session, no cookie, no rate limit (it is cheap: one
pooled connection, one row). The check runs in its own small thread pool with a time limit, so a hanging
database neither blocks the event loop nor takes the threads reply-code derivations need.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread
from sqlalchemy import Engine, text
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from portal.web import services

log = logging.getLogger("lykta.health")

TIMEOUT_SECONDS = 3.0
# At most this many checks wait on the database at once (a check abandoned at its time limit keeps its
# thread until the database answers); more probes than that wait for a place and then time out.
_CHECKS_AT_ONCE = 4
_QUERY = text("SELECT version_num FROM alembic_version")


def database_answers(engine: Engine) -> None:
    """Raise if the database cannot be read. Read-only: on SQLite it takes no write lock (portal.db)."""
    with engine.execution_options(lykta_read_only=True).connect() as conn:
        if conn.execute(_QUERY).first() is None:
            raise LookupError("database not migrated")


def make_healthz() -> Callable[[Request], Awaitable[Response]]:
    """The endpoint, with its own limiter (each app gets one: either may be served alone)."""
    limiter: anyio.CapacityLimiter | None = None

    async def healthz(request: Request) -> Response:
        nonlocal limiter
        if limiter is None:  # made on first use, in the event loop it then belongs to
            limiter = anyio.CapacityLimiter(_CHECKS_AT_ONCE)
        engine = services(request).engine
        try:
            with anyio.fail_after(TIMEOUT_SECONDS):
                await anyio.to_thread.run_sync(
                    database_answers, engine, limiter=limiter, abandon_on_cancel=True
                )
        except Exception as exc:
            log.warning("health check failed: %s", type(exc).__name__)
            return PlainTextResponse("unavailable", status_code=503)
        return PlainTextResponse("ok")

    return healthz
