"""What the deploy/ tests share: where the files are, the real tools that check them, and installable copies.

The configuration files name production paths (/opt/lykta, /etc/letsencrypt, /var/lib/tor ...). A test never
edits them: it writes a copy with those paths pointed into its temporary directory (`rendered`), and runs the
real tool on the copy. A tool that is missing fails the test with the Debian package to install: CI installs
them (.ci/run), and a skipped check would hide a broken file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / "env.example"
SYSTEMD = DEPLOY / "systemd"
NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
NGINX_LOCATIONS = DEPLOY / "nginx" / "lykta-locations.conf"
HOST = "tips.example.org"  # the placeholder domain of nginx.conf

# The tool, and the Debian 12 package that provides it.
PACKAGES = {
    "systemd-analyze": "systemd",
    "nginx": "nginx",
    "openssl": "openssl",
    "tor": "tor",
    "docker-compose": "docker-compose (apt-get install --no-install-recommends docker-compose)",
}


def tool(name: str) -> str:
    """The path of `name`, or a failed test saying which package to install."""
    found = shutil.which(name) or (shutil.which(name, path="/usr/sbin:/sbin") if name == "nginx" else None)
    if found is None:
        pytest.fail(f"`{name}` is not installed; this check needs it: apt-get install -y {PACKAGES[name]}")
    return found


def run(*command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def rendered(source: Path, target: Path, replacements: dict[str, str]) -> Path:
    """Copy `source` to `target` with each production path replaced; fail if one is not in the file, so
    that a renamed path cannot silently leave the copy pointing at the real system."""
    text = source.read_text()
    for old, new in replacements.items():
        assert old in text, f"{source.name} no longer mentions {old}; update the test's replacements"
        text = text.replace(old, new)
    target.write_text(text)
    return target


def self_signed_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A throwaway certificate and key for `host`, made with openssl, as a stand-in for Let's Encrypt's."""
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    made = run(
        tool("openssl"),
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={host}",
        "-addext",
        f"subjectAltName=DNS:{host}",
        "-keyout",
        str(key),
        "-out",
        str(cert),
    )
    assert made.returncode == 0, made.stderr
    return cert, key


def env_example_environment() -> dict[str, str]:
    """What a process started with env.example as its EnvironmentFile gets: the uncommented lines."""
    return {
        key: value
        for key, _, value in (
            line.partition("=") for line in ENV_EXAMPLE.read_text().splitlines() if line.startswith("LYKTA_")
        )
    }
