"""deploy/tor: `tor --verify-config` accepts both torrc files, the installed tor has the proof-of-work
defence, and the onion service is v3 with no SOCKS port, also under Debian's service defaults."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.conftest import (
    DEPLOY,
    rendered,
    run,
    tool,
)


def tor_copy(source: Path, directory: Path) -> Path:
    """The torrc with its onion service and data directory in `directory` (mode 700, as tor demands)."""
    (directory / "onion").mkdir(mode=0o700)
    (directory / "data").mkdir(mode=0o700)
    directory.chmod(0o700)
    copy = rendered(source, directory / "torrc", {"/var/lib/tor/lykta/": f"{directory}/onion/"})
    if "DataDirectory" in copy.read_text():
        rendered(copy, copy, {"DataDirectory /var/lib/tor": f"DataDirectory {directory}/data"})
    else:  # Debian's tor service gives it (/usr/share/tor/tor-service-defaults-torrc)
        copy.write_text(copy.read_text() + f"DataDirectory {directory}/data\n")
    return copy


def tor_verify(torrc: Path) -> str:
    """tor's own check, without Debian's defaults file (the service adds it): the file is judged alone."""
    defaults = torrc.parent / "empty-defaults"
    defaults.write_text("")
    checked = run(tool("tor"), "--verify-config", "--defaults-torrc", str(defaults), "-f", str(torrc))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return checked.stdout


def test_the_installed_tor_has_the_proof_of_work_defence() -> None:
    version = run(tool("tor"), "--version")
    found = re.search(r"Tor version (\d+)\.(\d+)\.(\d+)", version.stdout)
    assert found, version.stdout
    assert tuple(map(int, found.groups())) >= (0, 4, 8), f"tor {found.group(0)} predates onion proof of work"
    options = run(tool("tor"), "--list-torrc-options").stdout.split()
    assert "HiddenServicePoWDefensesEnabled" in options


@pytest.mark.parametrize("name", ["torrc", "torrc-compose"])
def test_tor_accepts_the_configuration(name: str, tmp_path: Path) -> None:
    output = tor_verify(tor_copy(DEPLOY / "tor" / name, tmp_path))
    assert "Configuration was valid" in output
    warnings = [
        line for line in output.splitlines() if "[warn]" in line and "running Tor as root" not in line
    ]
    assert not warnings


def test_tor_verify_would_catch_a_misspelt_option(tmp_path: Path) -> None:
    torrc = tor_copy(DEPLOY / "tor" / "torrc", tmp_path)
    torrc.write_text(
        torrc.read_text().replace("HiddenServicePoWDefensesEnabled", "HiddenServicePowDefenseEnabled")
    )
    defaults = tmp_path / "empty-defaults"
    defaults.write_text("")
    checked = run(tool("tor"), "--verify-config", "--defaults-torrc", str(defaults), "-f", str(torrc))
    assert checked.returncode != 0 and "HiddenServicePowDefenseEnabled" in checked.stdout


@pytest.mark.parametrize("name", ["torrc", "torrc-compose"])
def test_the_onion_service_is_v3_with_proof_of_work_and_no_socks_port(name: str) -> None:
    options = [line.split(None, 1) for line in (DEPLOY / "tor" / name).read_text().splitlines()]
    given = {option[0]: option[1] for option in options if option and not option[0].startswith("#")}
    assert given["SocksPort"] == "0"
    assert given["HiddenServiceVersion"] == "3"
    assert given["HiddenServicePoWDefensesEnabled"] == "1"
    assert given["SafeLogging"] == "1"
    assert given["HiddenServicePort"].startswith("80 ")


DEBIAN_SERVICE_DEFAULTS = Path("/usr/share/tor/tor-service-defaults-torrc")


def test_under_debians_service_defaults_tor_opens_no_socks_port(tmp_path: Path) -> None:
    """Debian's tor service starts tor with a defaults file that opens SOCKS on 9050 and on a Unix socket;
    the torrc's `SocksPort 0` must replace both. tor itself says what it would run with (--dump-config)."""
    if not DEBIAN_SERVICE_DEFAULTS.exists():
        pytest.fail(f"{DEBIAN_SERVICE_DEFAULTS} is missing: apt-get install -y tor")
    defaults = rendered(
        DEBIAN_SERVICE_DEFAULTS,
        tmp_path / "service-defaults",
        # The test's directories belong to whoever runs it, not to the debian-tor user tor would become.
        {"/run/tor": f"{tmp_path}/run", "DataDirectory /var/lib/tor": "", "User debian-tor": ""},
    )
    (tmp_path / "tor").mkdir()
    torrc = tor_copy(DEPLOY / "tor" / "torrc", tmp_path / "tor")

    def effective(option: str, config: Path) -> list[str]:
        dumped = run(
            tool("tor"), "--defaults-torrc", str(defaults), "-f", str(config), "--dump-config", "full"
        )
        assert dumped.returncode == 0, dumped.stdout + dumped.stderr
        return [
            line.split(None, 1)[1] for line in dumped.stdout.splitlines() if line.startswith(option + " ")
        ]

    assert effective("SocksPort", torrc) == ["0"]
    assert effective("HiddenServicePoWDefensesEnabled", torrc) == ["1"]
    assert effective("SafeLogging", torrc) == ["1"]
    # Without the line, Debian's defaults would open SOCKS ports: the check above is not vacuous.
    without = tmp_path / "torrc-without-socksport"
    without.write_text(torrc.read_text().replace("SocksPort 0\n", ""))
    assert "9050" in effective("SocksPort", without)


def test_tor_creates_the_v3_onion_service(tmp_path: Path) -> None:
    """tor started on the torrc, with the network switched off, makes the onion service's keys and address:
    a v3 address (56 base32 characters), in a directory only tor may read."""
    torrc = tor_copy(DEPLOY / "tor" / "torrc", tmp_path)
    torrc.write_text(
        torrc.read_text().replace("Log notice syslog", "Log notice stdout") + "DisableNetwork 1\n"
    )
    defaults = tmp_path / "empty-defaults"
    defaults.write_text("")
    process = subprocess.Popen(
        [tool("tor"), "--defaults-torrc", str(defaults), "-f", str(torrc)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    hostname = tmp_path / "onion" / "hostname"
    try:
        deadline = time.monotonic() + 60
        while not hostname.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole, but give tor a moment to finish the key files
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert hostname.exists(), output
    assert re.fullmatch(r"[a-z2-7]{56}\.onion\n", hostname.read_text())
    secret_key = tmp_path / "onion" / "hs_ed25519_secret_key"
    assert secret_key.stat().st_mode & 0o077 == 0
    assert (tmp_path / "onion").stat().st_mode & 0o077 == 0
