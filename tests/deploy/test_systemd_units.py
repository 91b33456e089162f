"""deploy/systemd: the units pass `systemd-analyze verify` (with ExecStart pointed at this environment's
`lykta`) and `systemd-analyze security`, and each keeps the sandbox deploy/README.md describes."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import (
    NGINX_CONF,
    SYSTEMD,
    env_example_environment,
    rendered,
    run,
    tool,
)

UNITS = sorted(SYSTEMD.glob("lykta*.service")) + sorted(SYSTEMD.glob("lykta*.timer"))
SERVICES = [unit for unit in UNITS if unit.suffix == ".service"]

PRODUCTION_LYKTA = "/opt/lykta/venv/bin/lykta"


def unit_directives(unit: Path) -> dict[str, list[str]]:
    """Directive -> values, in order (systemd allows a directive more than once)."""
    directives: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            directives.setdefault(key.strip(), []).append(value.strip())
    return directives


def installed_lykta() -> str:
    """The `lykta` command of this environment, for the units' ExecStart (systemd-analyze verify checks that
    the binary exists and is executable)."""
    beside_python = Path(sys.executable).parent / "lykta"
    found = str(beside_python) if beside_python.exists() else shutil.which("lykta")
    assert found, "the lykta command is not installed (pip install -e .)"
    return found


def units_for_verify(directory: Path) -> list[Path]:
    return [
        rendered(unit, directory / unit.name, {PRODUCTION_LYKTA: installed_lykta()})
        if unit.suffix == ".service"
        else Path(shutil.copy(unit, directory / unit.name))
        for unit in UNITS
    ]


def verify_units(units: list[Path]) -> str:
    """systemd-analyze verify's complaints about these units. It exits 0 on an unknown or misspelt directive
    (it only warns and ignores the line), so any output that names a unit counts as a failure."""
    checked = run(tool("systemd-analyze"), "verify", *map(str, units))
    output = checked.stdout + checked.stderr
    complaints = [line for line in output.splitlines() if any(unit.name in line for unit in units)]
    if checked.returncode != 0:
        complaints.append(f"exit status {checked.returncode}: {output.strip()}")
    return "\n".join(complaints)


def test_the_units_are_expected() -> None:
    assert [unit.name for unit in UNITS] == [
        "lykta-notify.service",
        "lykta-purge.service",
        "lykta.service",
        "lykta-purge.timer",
    ]


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    assert verify_units(units_for_verify(tmp_path)) == ""


def test_systemd_analyze_verify_would_catch_a_misspelt_directive(tmp_path: Path) -> None:
    """The check above is not blind: a typo in a hardening line is reported."""
    units = units_for_verify(tmp_path)
    app = tmp_path / "lykta.service"
    app.write_text(app.read_text().replace("MemoryDenyWriteExecute=", "MemoryDenyWritExecute="))
    assert "MemoryDenyWritExecute" in verify_units(units)


def test_the_purge_timer_fires_daily_and_starts_the_purge() -> None:
    timer = unit_directives(SYSTEMD / "lykta-purge.timer")
    assert timer["Unit"] == ["lykta-purge.service"]
    assert timer["Persistent"] == ["yes"]
    calendar = run(tool("systemd-analyze"), "calendar", "--iterations=2", timer["OnCalendar"][0])
    assert calendar.returncode == 0, calendar.stderr
    elapses = re.findall(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)", calendar.stdout)
    assert len(elapses) == 2 and elapses[0][1] == elapses[1][1], calendar.stdout  # same time, next day
    purge = unit_directives(SYSTEMD / "lykta-purge.service")
    assert purge["Type"] == ["oneshot"]
    assert purge["ExecStart"] == [f"{PRODUCTION_LYKTA} purge"]


@pytest.mark.parametrize("unit", SERVICES, ids=lambda unit: unit.name)
def test_every_service_is_sandboxed(unit: Path) -> None:
    directives = unit_directives(unit)
    data_dir = env_example_environment()["LYKTA_DATA_DIR"]
    expected = {
        "User": ["lykta"],
        "Group": ["lykta"],
        "EnvironmentFile": ["/etc/lykta/lykta.env"],
        "ProtectSystem": ["strict"],
        "ReadWritePaths": [data_dir],
        "StateDirectory": ["lykta"],
        "StateDirectoryMode": ["0700"],
        "PrivateTmp": ["yes"],
        "PrivateDevices": ["yes"],
        "ProtectHome": ["yes"],
        "NoNewPrivileges": ["yes"],
        "CapabilityBoundingSet": [""],
        "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX"],
        "MemoryDenyWriteExecute": ["yes"],
        "SystemCallFilter": ["@system-service", "~@privileged"],
        "UMask": ["0077"],
    }
    for key, values in expected.items():
        assert directives.get(key) == values, f"{unit.name}: {key}"
    assert directives["WorkingDirectory"] == [data_dir]


def test_the_app_listens_where_nginx_looks_and_reaches_only_loopback() -> None:
    app = unit_directives(SYSTEMD / "lykta.service")
    assert app["ExecStart"][0].startswith(f"{PRODUCTION_LYKTA} serve --host 127.0.0.1 --port 8000")
    assert "server 127.0.0.1:8000;" in NGINX_CONF.read_text()
    assert app["IPAddressDeny"] == ["any"] and app["IPAddressAllow"] == ["localhost"]


def test_the_notification_sender_runs_lykta_notify() -> None:
    notify = unit_directives(SYSTEMD / "lykta-notify.service")
    assert notify["ExecStart"] == [f"{PRODUCTION_LYKTA} notify run"]
    assert notify["Restart"] == ["always"]


@pytest.mark.parametrize("unit", SERVICES, ids=lambda unit: unit.name)
def test_systemd_rates_the_sandbox_ok(unit: Path, tmp_path: Path) -> None:
    """systemd-analyze security's exposure score (0 best, 10 worst; "OK" is below 2.0)."""
    (copy,) = [path for path in units_for_verify(tmp_path) if path.name == unit.name]
    review = run(tool("systemd-analyze"), "security", "--offline=true", "--no-pager", str(copy))
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", review.stdout)
    assert match, review.stdout + review.stderr
    print(f"{unit.name}: exposure {match.group(1)} {match.group(2)}")
    assert float(match.group(1)) < 2.0, review.stdout
