"""Shared fixtures: a migrated database on SQLite, and on PostgreSQL when LYKTA_TEST_DATABASE_URL is set.

Each PostgreSQL test gets a database of its own, created from a migrated template, so tests stay
independent and can run in parallel workers.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from starlette.testclient import TestClient

from crypto._kdf import ARGON2_MEMLIMIT_MIN, ARGON2_OPSLIMIT_MIN, Argon2Params
from portal import db
from portal.app import build_services, create_app
from portal.demo import seed
from portal.settings import Settings, generate_secrets, load_settings
from portal.submission.replycodes import MailboxDeriver
from portal.web import Services

POSTGRES_URL = os.environ.get("LYKTA_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def _admin_engine() -> Engine:
    return create_engine(db.normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated PostgreSQL database that per-test databases are copied from."""
    name = f"lykta_template_{secrets.token_hex(4)}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db.upgrade(_with_database(POSTGRES_URL, name))
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty, migrated database of each backend under test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'lykta.sqlite3'}"
        db.upgrade(url)
        yield url
        return
    template = request.getfixturevalue("postgres_template")
    name = f"lykta_test_{secrets.token_hex(6)}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _with_database(POSTGRES_URL, name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def fast_argon2() -> Argon2Params:
    """The cheapest Argon2id libsodium allows (1 pass over 8 KiB): the one way tests lower the cost."""
    return Argon2Params("test-fast", opslimit=ARGON2_OPSLIMIT_MIN, memlimit=ARGON2_MEMLIMIT_MIN)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for one test: its own data directory, fresh instance secrets, the database under test."""
    environ = {f"LYKTA_{name.upper()}": value for name, value in generate_secrets().items()}
    environ |= {"LYKTA_DATA_DIR": str(tmp_path / "data"), "LYKTA_DATABASE_URL": database_url}
    (tmp_path / "data").mkdir()
    return load_settings(environ)


@pytest.fixture
def demo_accounts(settings: Settings, fast_argon2: Argon2Params) -> dict[str, Any]:
    """The demo network, seeded into the test database (staff keys wrapped with the fast parameters)."""
    engine = db.make_nullpool_engine(settings.database_url)
    with db.session_scope(engine) as session:
        accounts = seed(session, signing_key=settings.signing_key, keywrap_params=fast_argon2)
    engine.dispose()
    return accounts


@pytest.fixture
def services(
    settings: Settings, demo_accounts: dict[str, Any], fast_argon2: Argon2Params
) -> Iterator[Services]:
    built = build_services(settings)
    built.extras["deriver"] = MailboxDeriver(settings, params=fast_argon2)
    built.extras["keywrap_params"] = fast_argon2
    yield built
    built.engine.dispose()


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient]:
    """A browser on the resident app with the demo network seeded."""
    with TestClient(create_app(settings, services=services), base_url="http://testserver") as test_client:
        yield test_client


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many age conformance vectors ran and passed, and how many were skipped by rule (issue 2)."""
    from tests.crypto.test_vectors import RUNNABLE, SKIPPED

    def outcome_count(outcome: str) -> int:
        reports = terminalreporter.stats.get(outcome, [])
        return sum(
            1 for r in reports if "test_vector_outcome[" in getattr(r, "nodeid", "") and r.when == "call"
        )

    passed, failed = outcome_count("passed"), outcome_count("failed")
    if passed or failed:
        terminalreporter.write_line(
            f"age conformance vectors: {passed} passed, {failed} failed of {len(RUNNABLE)} runnable; "
            f"{len(SKIPPED)} skipped by rule (armor, scrypt, ML-KEM hybrid)"
        )
