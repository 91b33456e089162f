"""The outbox on the operators' metrics page: how many notifications wait, are retried, have failed."""

from __future__ import annotations

from sqlalchemy import Engine

from portal.db import read_session
from portal.metrics import Metrics
from portal.notify import preferences


def watch_outbox(metrics: Metrics, engine: Engine) -> None:
    """Publish `lykta_notifications{state="pending|retrying|failed"}` (counts only, read at each scrape).

    "pending" includes the retrying ones; an alert on `failed > 0` catches a broken mail server early.
    """

    def counts() -> dict[str, int]:
        with read_session(engine) as db:
            return preferences.counts(db)

    metrics.register_gauge(
        "lykta_notifications",
        "Staff e-mail notifications in the outbox: waiting (retries included), being retried, failed.",
        counts,
        label="state",
    )
