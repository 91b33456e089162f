"""Engine, sessions and migrations. SQLite by default (WAL, foreign keys, secure_delete); PostgreSQL by URL.

The schema is owned by Alembic (portal/migrations) from the first table; `upgrade` brings any database to
head, and a test checks that the models and the migrations agree.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, event
from sqlalchemy.pool import NullPool
from sqlmodel import Session, SQLModel, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Named constraints, so that later migrations can drop or alter them on SQLite (batch mode) and PostgreSQL
# alike. Every model module imports this one first, so the convention is in place before any table exists.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime.datetime:
    """Aware UTC. SQLModel's UTCDateTime columns refuse naive values, so no local time slips in."""
    return datetime.datetime.now(datetime.UTC)


def id_of(row: Any) -> int:
    """The primary key of a row that has been flushed. A row without one here is a programming error."""
    value = row.id
    if value is None:
        raise ValueError(f"{type(row).__name__} has no id yet: flush it first")
    return int(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while a tip is written; secure_delete overwrites freed pages so a deleted tip's
    # ciphertext does not linger in the file; foreign keys are off by default in SQLite.
    # busy_timeout first: switching to WAL needs the database to itself, and another connection may be busy.
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs (the `postgres` extra installs it)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # Let SQLAlchemy's own BEGIN take the write lock up front, so two writers queue on busy_timeout
        # instead of failing on a lock upgrade in the middle of a transaction.
        event.listen(engine, "begin", _sqlite_begin)
        _disable_pysqlite_autobegin(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_begin(conn: Any) -> None:
    # A read-only session (read_session) begins deferred: it must not hold the write lock while, say, a
    # large file is streamed to an officer.
    deferred = conn.get_execution_options().get("lykta_read_only", False)
    conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def _disable_pysqlite_autobegin(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None


def make_nullpool_engine(url: str) -> Engine:
    """An engine that holds no connection between uses (for the CLI and migrations).

    On SQLite it sets the same pragmas as the app's engine, so a database made by `lykta init` (or a test's
    migration) is in WAL mode from the start rather than switched while other connections are busy.
    """
    url = normalise_url(url)
    engine = create_engine(url, poolclass=NullPool)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed if the block ends normally, rolled back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A transaction that only reads and is never committed; on SQLite it takes no write lock.

    Closing (not rolling back) ends it, so the rows read stay loaded for the template after the block.
    """
    with Session(engine.execution_options(lykta_read_only=True), expire_on_commit=False) as session:
        yield session


def alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def import_models() -> None:
    """Import every module that defines tables, so SQLModel.metadata is complete."""
    import portal.accounts.models
    import portal.audit.models
    import portal.keyring.models
    import portal.network.models
    import portal.notify.models
    import portal.ratelimit
    import portal.retention.models
    import portal.sessions
    import portal.stats.models
    import portal.submission.models
    import portal.triage.models  # noqa: F401
