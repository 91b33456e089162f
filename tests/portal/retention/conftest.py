"""The retention tests run on a copy of one seeded demo network each (see tests/portal/seeded.py)."""

from __future__ import annotations

from tests.portal.seeded import (  # noqa: F401 (fixtures, found by name)
    database_url,
    demo_accounts,
    seeded_postgres,
    seeded_secrets,
    seeded_sqlite,
    session_argon2,
    settings,
)
