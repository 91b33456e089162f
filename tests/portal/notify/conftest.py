"""Fixtures for the notification tests: a STARTTLS mail server, settings that point at it, choices."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from starlette.datastructures import Secret

from portal.accounts.models import StaffAccount
from portal.db import session_scope
from portal.notify import preferences
from portal.notify.transport import Mailer
from portal.settings import Settings
from portal.web import Services
from tests.portal.notify.smtp import Certificates, Recorder, certificates, mail_server

SENDER = "Lykta <lykta@notify.example>"


@pytest.fixture(scope="session")
def smtp_certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return certificates(tmp_path_factory.mktemp("smtp-ca"))


@pytest.fixture
def smtp_server(smtp_certificates: Certificates) -> Iterator[tuple[Recorder, int]]:
    """A mail server that offers STARTTLS with a certificate for 127.0.0.1 from the test CA."""
    with mail_server(smtp_certificates.server_context) as server:
        yield server


def smtp_settings(settings: Settings, port: int, ca_file: Path | str) -> Settings:
    return dataclasses.replace(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_from=SENDER,
        smtp_ca_file=str(ca_file),
        smtp_password=Secret(""),
        public_staff_url="https://lykta.example/staff/",
    )


def mailer_for(port: int, ca_file: Path | str) -> Mailer:
    return Mailer("127.0.0.1", port=port, ca_file=str(ca_file), timeout=10)


def choose(services: Services, username: str, *, mode: str, email: str | None = None) -> int:
    """Set a demo account's notification choice as the person would; returns the account id."""
    with session_scope(services.engine) as db:
        account = db.exec(select(StaffAccount).where(StaffAccount.username == username)).one()
        assert account.id is not None
        preferences.save(db, staff_id=account.id, email=email or f"{username}@work.example", mode=mode)
        return account.id


@pytest.fixture
def demo_by_name(demo_accounts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["username"]: a for a in demo_accounts["accounts"]}
