"""Fixtures: the demo network, seeded once per test session and copied for each test that uses them.

Seeding (organisations, desks with keys and grants, staff accounts) costs more than most resident-side
tests, and they only need the network as `lykta demo` leaves it: so each test starts from one seeded
database, as it was after seeding. On SQLite each test gets a copy of the file; on PostgreSQL, where creating
and dropping a database costs a checkpoint each (a second or more), one database is put back to its seeded
rows before each test (every table emptied and refilled, sequences reset). The instance secrets are the
seeding's too, so the demo staff can log in as they would after `lykta demo`.

They replace `database_url`, `settings` and `demo_accounts` of tests/conftest.py where they are imported:
in tests/portal/submission/conftest.py, and in a test module by assigning them to module names.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, Table, text

from crypto._kdf import ARGON2_MEMLIMIT_MIN, ARGON2_OPSLIMIT_MIN, Argon2Params
from portal import db
from portal.demo import seed
from portal.settings import Settings, generate_secrets, load_settings
from tests.conftest import BACKENDS, POSTGRES_URL, _admin_engine, _with_database

SQLITE_NAME = "lykta.sqlite3"


@pytest.fixture(scope="session")
def seeded_secrets() -> dict[str, str]:
    return generate_secrets()


def _seed(url: str, instance_secrets: dict[str, str], argon2: Argon2Params) -> dict[str, Any]:
    engine = db.make_nullpool_engine(url)
    with db.session_scope(engine) as session:
        signing_key = base64.b64decode(instance_secrets["signing_key"])
        accounts = seed(session, signing_key=signing_key, keywrap_params=argon2)
    engine.dispose()
    return accounts


@pytest.fixture(scope="session")
def session_argon2() -> Argon2Params:
    """The same cheap parameters as the `fast_argon2` fixture, for the session-wide seeding."""
    return Argon2Params("test-fast", opslimit=ARGON2_OPSLIMIT_MIN, memlimit=ARGON2_MEMLIMIT_MIN)


@pytest.fixture(scope="session")
def seeded_sqlite(
    tmp_path_factory: pytest.TempPathFactory, seeded_secrets: dict[str, str], session_argon2: Argon2Params
) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("seeded") / SQLITE_NAME
    url = f"sqlite:///{path}"
    db.upgrade(url)
    return path, _seed(url, seeded_secrets, session_argon2)


@dataclasses.dataclass(frozen=True)
class _Snapshot:
    """Every row of every table (parents first) and every sequence's position, as seeding left them."""

    tables: list[Table]
    rows: dict[str, list[dict[str, Any]]]
    sequences: dict[str, int | None]

    @classmethod
    def take(cls, engine: Engine) -> _Snapshot:
        metadata = MetaData()
        with engine.connect() as conn:
            metadata.reflect(conn)
            tables = [t for t in metadata.sorted_tables if t.name != "alembic_version"]
            rows = {t.name: [dict(row) for row in conn.execute(t.select()).mappings()] for t in tables}
            sequences = {
                f'"{schema}"."{name}"': last
                for schema, name, last in conn.execute(
                    text("SELECT schemaname, sequencename, last_value FROM pg_sequences")
                )
            }
        return cls(tables, rows, sequences)

    def restore(self, engine: Engine) -> None:
        with engine.begin() as conn:
            # Connections a test left open would hold locks; end them, as DROP DATABASE ... FORCE would.
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in self.tables) + " CASCADE"))
            for table in self.tables:
                if self.rows[table.name]:
                    conn.execute(table.insert(), self.rows[table.name])
            for sequence, last in self.sequences.items():
                conn.execute(
                    text("SELECT setval(CAST(:sequence AS regclass), :value, :called)"),
                    {"sequence": sequence, "value": last or 1, "called": last is not None},
                )


@pytest.fixture(scope="session")
def seeded_postgres(
    postgres_template: str, seeded_secrets: dict[str, str], session_argon2: Argon2Params
) -> Iterator[tuple[str, dict[str, Any], _Snapshot]]:
    name = f"lykta_seeded_{secrets.token_hex(4)}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"'))
    url = _with_database(POSTGRES_URL, name)
    accounts = _seed(url, seeded_secrets, session_argon2)
    engine = db.make_nullpool_engine(url)
    snapshot = _Snapshot.take(engine)
    engine.dispose()
    yield name, accounts, snapshot
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, with the demo network already seeded."""
    if request.param == "sqlite":
        template, _accounts = request.getfixturevalue("seeded_sqlite")
        shutil.copyfile(template, tmp_path / SQLITE_NAME)
        yield f"sqlite:///{tmp_path / SQLITE_NAME}"
        return
    name, _accounts, snapshot = request.getfixturevalue("seeded_postgres")
    url = _with_database(POSTGRES_URL, name)
    engine = db.make_nullpool_engine(url)
    snapshot.restore(engine)
    engine.dispose()
    yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str, seeded_secrets: dict[str, str]) -> Settings:
    """Settings for one test: its own data directory, the seeding's instance secrets, its own database."""
    environ = {f"LYKTA_{name.upper()}": value for name, value in seeded_secrets.items()}
    environ |= {"LYKTA_DATA_DIR": str(tmp_path / "data"), "LYKTA_DATABASE_URL": database_url}
    (tmp_path / "data").mkdir()
    return load_settings(environ)


@pytest.fixture
def demo_accounts(request: pytest.FixtureRequest, database_url: str) -> dict[str, Any]:
    """What `lykta demo --accounts-json` wrote for the seeded copy this test has."""
    seeded = "seeded_sqlite" if database_url.startswith("sqlite") else "seeded_postgres"
    accounts = request.getfixturevalue(seeded)[1]
    return copy.deepcopy(accounts)
