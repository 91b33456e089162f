"""Global rate limits kept in the database, so that every Lykta process shares one budget.

Fixed one-minute windows per bucket: coarse, but it bounds what a reply-code guesser gets across all
workers, which is the point (DESIGN 6). One atomic upsert counts an attempt, so two processes counting at
once neither lose a count nor collide.
"""

from __future__ import annotations

import time

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel

WINDOW_SECONDS = 60


class RateCounter(SQLModel, table=True):
    bucket: str = Field(primary_key=True, max_length=64)
    window: int = Field(primary_key=True)
    count: int = 0


def take(db: Session, bucket: str, *, limit: int, now: float | None = None) -> bool:
    """Count one attempt in `bucket`; False if this window's budget is already spent."""
    window = int((time.time() if now is None else now) // WINDOW_SECONDS)
    dialect = sqlite if db.get_bind().dialect.name == "sqlite" else postgresql
    table = RateCounter.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
    upsert = dialect.insert(table).values(bucket=bucket, window=window, count=1)
    upsert = upsert.on_conflict_do_update(
        index_elements=["bucket", "window"], set_={"count": table.c.count + 1}
    ).returning(table.c.count)
    count = int(db.execute(upsert).scalar_one())
    if count == 1:  # a new window: forget the old ones
        db.execute(delete(RateCounter).where(RateCounter.bucket == bucket, RateCounter.window < window))  # type: ignore[arg-type]
    return count <= limit
