"""`lykta desk grant --recovery-identity`, `lykta desk list` and `lykta user invite` (issue 4, DESIGN 7)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func
from sqlmodel import select
from starlette.testclient import TestClient

from portal.accounts.models import DeskMembership, StaffAccount
from portal.audit.models import AuditEntry
from portal.cli import main
from portal.db import session_scope
from portal.settings import Settings
from portal.web import Services
from tests.portal.accounts.people import PAX_DESK, desk_id, enrolled_person, invite, post_enrolment
from tests.portal.keyring.keys import grants_of, tip_of
from tests.portal.keyring.test_desk_page import OTHER_TIP
from tests.portal.keyring.test_rotation import recovery_identity, remove_with_rotation
from tests.portal.submission.browser import ANSWERS, send_tip
from tests.portal.triage.test_staff_flow import staff_login


@pytest.fixture
def lykta(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `lykta ...` against the test instance."""
    environment = {
        "LYKTA_DATA_DIR": str(settings.data_dir),
        "LYKTA_DATABASE_URL": settings.database_url,
        "LYKTA_SIGNING_KEY": str(settings.secrets.signing_key),
        "LYKTA_INSTANCE_SALT": base64.b64encode(settings.secrets.instance_salt).decode(),
        "LYKTA_PEPPER": str(settings.secrets.pepper),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args))

    return run


def identity_file(tmp_path: Path, demo_accounts: dict[str, Any], organisation: str = "pax-ragnhild") -> Path:
    path = tmp_path / f"{organisation}.key"
    path.write_text(
        f"# recovery identity of {organisation}\n{recovery_identity(demo_accounts, organisation).to_text()}\n"
    )
    path.chmod(0o600)
    return path


def test_desk_grant_from_the_recovery_key(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], tmp_path: Path, lykta: Any
) -> None:
    _code, case_number = send_tip(client, "sv", OTHER_TIP, [])
    pax = desk_id(services, PAX_DESK)
    nora = enrolled_person(client, services, "nora.officer")
    key_file = identity_file(tmp_path, demo_accounts)

    granted = lykta(
        "desk", "grant", "--recovery-identity", str(key_file), "--desk", PAX_DESK, "--user", "nora.officer"
    )
    assert granted.exit_code == 0, granted.output
    assert "Granted" in granted.output
    assert len(grants_of(services, pax, "nora.officer")) == 1
    with session_scope(services.engine) as db:
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "desk.granted")).one()
        assert entry.actor == "cli" and entry.detail["source"] == "recovery"
    # The recovery identity never reaches the output or the database.
    assert "AGE-SECRET-KEY" not in granted.output

    again = lykta(
        "desk", "grant", "--recovery-identity", str(key_file), "--desk", PAX_DESK, "--user", "nora.officer"
    )
    assert again.exit_code == 0 and "already holds" in again.output
    assert len(grants_of(services, pax, "nora.officer")) == 1

    client.cookies.clear()
    staff_login(client, nora)
    tip = client.get(f"/staff/tips/{tip_of(services, case_number).id}")
    assert tip.status_code == 200 and ANSWERS["what"] in tip.text


def test_desk_grant_after_a_rotation_grants_every_key(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], tmp_path: Path, lykta: Any
) -> None:
    pax = desk_id(services, PAX_DESK)
    enrolled_person(client, services, "nora.officer")
    remove_with_rotation(client, services, demo_accounts, "sara.officer.pax-ragnhild")
    result = lykta(
        "desk", "grant", "--recovery-identity", str(identity_file(tmp_path, demo_accounts)),
        "--desk", PAX_DESK, "--user", "nora.officer",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(grants_of(services, pax, "nora.officer")) == 2


@pytest.mark.parametrize(
    ("organisation", "desk", "user", "message"),
    [
        ("skatteverket", PAX_DESK, "nora.officer", "does not hold the recovery key"),
        ("pax-ragnhild", "no-such-desk", "nora.officer", "no desk with the code"),
        ("pax-ragnhild", PAX_DESK, "nobody", "no account with the username"),
        ("pax-ragnhild", PAX_DESK, "erik.officer.polisen-sodertalje", "not a member"),
        ("pax-ragnhild", PAX_DESK, "olof.officer", "has not enrolled"),
    ],
    ids=["other-organisation", "unknown-desk", "unknown-user", "not-a-member", "not-enrolled"],
)
def test_desk_grant_refuses_clearly(
    client: TestClient,
    services: Services,
    demo_accounts: dict[str, Any],
    tmp_path: Path,
    lykta: Any,
    organisation: str,
    desk: str,
    user: str,
    message: str,
) -> None:
    enrolled_person(client, services, "nora.officer")
    invite(services, "olof.officer")
    key_file = identity_file(tmp_path, demo_accounts, organisation)
    result = lykta("desk", "grant", "--recovery-identity", str(key_file), "--desk", desk, "--user", user)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    for username in ("nora.officer", "olof.officer", "erik.officer.polisen-sodertalje"):
        assert grants_of(services, desk_id(services, PAX_DESK), username) == []


def test_desk_grant_refuses_a_file_that_is_not_an_identity(
    tmp_path: Path, lykta: Any, services: Services
) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("age1notasecretkey\n")
    result = lykta("desk", "grant", "--recovery-identity", str(bad), "--desk", PAX_DESK, "--user", "x")
    assert result.exit_code == 1 and "is not an age identity file" in result.output
    missing = lykta(
        "desk", "grant", "--recovery-identity", str(tmp_path / "nope"), "--desk", PAX_DESK, "--user", "x"
    )
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_desk_list_names_the_members_waiting(client: TestClient, services: Services, lykta: Any) -> None:
    enrolled_person(client, services, "nora.officer")
    result = lykta("desk", "list")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith(PAX_DESK + "\t"))
    assert "members: 3" in line and "holding the key: 2" in line and "waiting: nora.officer" in line
    other = next(
        line for line in result.output.splitlines() if line.startswith("skatteverket-folkbokforing\t")
    )
    assert "waiting" not in other


def test_user_invite_prints_a_link_that_enrols(client: TestClient, services: Services, lykta: Any) -> None:
    result = lykta("user", "invite", "--username", "Nora.Officer", "--role", "officer", "--desk", PAX_DESK)
    assert result.exit_code == 0, result.output
    match = re.search(r"^/staff/enrol/([A-Za-z0-9_-]{40,})$", result.output, re.M)
    assert match, result.output
    pax = desk_id(services, PAX_DESK)
    with session_scope(services.engine) as db:
        account = db.exec(select(StaffAccount).where(StaffAccount.username == "nora.officer")).one()
        assert account.public_key is None and account.organisation_id is not None
        assert db.get(DeskMembership, (pax, account.id)) is not None
        assert (
            db.exec(select(AuditEntry).where(AuditEntry.action == "admin.staff.invited")).one().actor == "cli"
        )
    page = client.get(match.group(0))
    assert page.status_code == 200
    assert post_enrolment(client, match.group(1), page.text).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--username", "nora.officer", "--role", "chief"], "unknown role"),
        (
            ["--username", "nora.officer", "--role", "officer", "--desk", "no-such-desk"],
            "No desk with the code",
        ),
        (["--username", "anna.officer.sodertalje", "--role", "officer"], "already in use"),
        (["--username", "nora officer", "--role", "officer"], "usernames are"),
    ],
)
def test_user_invite_refuses_clearly(services: Services, lykta: Any, args: list[str], message: str) -> None:
    with session_scope(services.engine) as db:
        before = db.exec(select(func.count()).select_from(StaffAccount)).one()
    result = lykta("user", "invite", *args)
    assert result.exit_code == 1 and message in result.output, result.output
    with session_scope(services.engine) as db:
        assert db.exec(select(func.count()).select_from(StaffAccount)).one() == before
