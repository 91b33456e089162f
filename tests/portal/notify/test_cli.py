"""`lykta notify run --once` end to end: settings from the environment, one round, a report; and a clear
refusal when the mail server is not configured."""

from __future__ import annotations

import base64
from pathlib import Path

from click.testing import CliRunner
from starlette.testclient import TestClient

from portal.cli import main
from portal.notify.models import EACH
from portal.settings import Settings
from portal.web import Services
from tests.portal.notify.conftest import SENDER, choose
from tests.portal.notify.smtp import Certificates, Recorder
from tests.portal.notify.test_sender import CANARIES, SARA, send_canary_tip


def environment(settings: Settings) -> dict[str, str]:
    return {
        "LYKTA_DATA_DIR": str(settings.data_dir),
        "LYKTA_DATABASE_URL": settings.database_url,
        "LYKTA_SIGNING_KEY": str(settings.secrets.signing_key),
        "LYKTA_PEPPER": str(settings.secrets.pepper),
        "LYKTA_INSTANCE_SALT": base64.b64encode(settings.secrets.instance_salt).decode(),
    }


def test_notify_run_once_sends_and_reports(
    client: TestClient,
    services: Services,
    settings: Settings,
    smtp_server: tuple[Recorder, int],
    smtp_certificates: Certificates,
) -> None:
    recorder, port = smtp_server
    choose(services, SARA, mode=EACH, email="sara@pax.example")
    _, case_number = send_canary_tip(client)
    env = environment(settings) | {
        "LYKTA_SMTP_HOST": "127.0.0.1",
        "LYKTA_SMTP_PORT": str(port),
        "LYKTA_SMTP_FROM": SENDER,
        "LYKTA_SMTP_CA_FILE": str(smtp_certificates.ca_file),
        "LYKTA_PUBLIC_STAFF_URL": "https://lykta.example/staff/",
    }
    result = CliRunner().invoke(main, ["notify", "run", "--once"], env=env)
    assert result.exit_code == 0, result.output
    assert "sent 1, retrying 0, failed 0" in result.output
    [item] = recorder.received
    assert item.rcpt_tos == ["sara@pax.example"] and case_number in item.text()
    # Neither the address nor any content is printed.
    assert "sara@pax.example" not in result.output
    assert not any(canary in result.output for canary in CANARIES)


def test_notify_run_refuses_without_a_mail_server(settings: Settings, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["notify", "run", "--once"], env=environment(settings))
    assert result.exit_code == 1
    assert "LYKTA_SMTP_HOST" in result.output
    env = environment(settings) | {
        "LYKTA_SMTP_HOST": "127.0.0.1",
        "LYKTA_SMTP_FROM": SENDER,
        "LYKTA_SMTP_CA_FILE": str(tmp_path / "missing.pem"),
    }
    result = CliRunner().invoke(main, ["notify", "run", "--once"], env=env)
    assert result.exit_code == 1 and "LYKTA_SMTP_CA_FILE" in result.output
