"""`lykta purge` as an operator runs it: --help, --dry-run that counts and changes nothing, a real run
that deletes and audits, a second run with nothing left, and a bad option."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portal.audit.models import AuditEntry
from portal.cli import main
from portal.settings import Settings
from portal.submission.models import Tip
from portal.web import Services
from tests.portal.retention.tips import age, make_tip, table_counts


def environment(settings: Settings, seeded_secrets: dict[str, str]) -> dict[str, str]:
    return {
        **{f"LYKTA_{name.upper()}": value for name, value in seeded_secrets.items()},
        "LYKTA_DATA_DIR": str(settings.data_dir),
        "LYKTA_DATABASE_URL": settings.database_url,
    }


def test_help_names_the_options() -> None:
    result = CliRunner().invoke(main, ["purge", "--help"])
    assert result.exit_code == 0
    assert "--dry-run" in result.output and "--batch" in result.output and "legal hold" in result.output


def test_dry_run_then_purge(
    client: TestClient,
    services: Services,
    demo_accounts: dict[str, Any],
    settings: Settings,
    seeded_secrets: dict[str, str],
) -> None:
    due = make_tip(client, services, demo_accounts)
    kept = make_tip(client, services, demo_accounts, full=False)
    age(services.engine, due.tip_id, days=365)
    env = environment(settings, seeded_secrets)
    runner = CliRunner()
    before = table_counts(services.engine)

    dry = runner.invoke(main, ["purge", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "nothing deleted" in dry.output and "tips: 1," in dry.output and "files: 2," in dry.output
    assert table_counts(services.engine) == before

    run = runner.invoke(main, ["purge", "--batch", "1"], env=env)
    assert run.exit_code == 0, run.output
    assert "tips: 1," in run.output and "files: 2," in run.output
    with Session(services.engine) as db:
        assert db.get(Tip, due.tip_id) is None and db.get(Tip, kept.tip_id) is not None
        entries = db.exec(select(AuditEntry).where(AuditEntry.action == "retention.purged")).all()
    assert len(entries) == 1 and entries[0].detail["tips"] == 1 and entries[0].detail["files"] == 2

    again = runner.invoke(main, ["purge"], env=env)
    assert again.exit_code == 0 and "tips: 0," in again.output and "chunks: 0," in again.output

    refused = runner.invoke(main, ["purge", "--batch", "0"], env=env)
    assert refused.exit_code == 2 and "--batch" in refused.output
