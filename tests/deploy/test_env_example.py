"""deploy/env.example: every setting the code reads, each explained, with a placeholder that is safe to
publish and a configuration the app starts from. The test fails as soon as someone adds a LYKTA_ setting to
the code without listing it here."""

from __future__ import annotations

import re
from pathlib import Path

from portal.settings import SECRET_NAMES, load_settings, write_secrets_file
from tests.deploy.conftest import (
    ENV_EXAMPLE,
    ROOT,
    env_example_environment,
)

SETTING_LINE = re.compile(r"^#?(LYKTA_[A-Z0-9_]+)=(.*)$")


def settings_in_code() -> set[str]:
    """Every LYKTA_ name the application reads: the literal ones anywhere in portal/, and the instance
    secrets, whose names portal/settings.py builds from SECRET_NAMES."""
    names = {f"LYKTA_{name.upper()}" for name in SECRET_NAMES}
    for path in (ROOT / "portal").rglob("*.py"):
        names |= set(re.findall(r"\bLYKTA_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    return names


def env_example_settings() -> dict[str, str]:
    """The settings env.example lists, commented out or not, with their placeholder."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := SETTING_LINE.match(line):
            found[match.group(1)] = match.group(2)
    return found


def test_env_example_lists_every_setting_the_code_reads() -> None:
    missing = settings_in_code() - set(env_example_settings())
    assert not missing, f"add these settings to deploy/env.example, with a comment: {sorted(missing)}"


def test_env_example_lists_only_settings_the_code_reads() -> None:
    stale = set(env_example_settings()) - settings_in_code()
    assert not stale, f"deploy/env.example lists settings nothing reads: {sorted(stale)}"


def test_every_setting_in_env_example_is_explained() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if not SETTING_LINE.match(line):
            continue
        above = number - 1
        while above >= 0 and SETTING_LINE.match(lines[above]):
            above -= 1  # settings of one group share the comment above the group
        comment = lines[above] if above >= 0 else ""
        assert comment.startswith("# ") and not comment.startswith("# ---"), f"no comment above {line!r}"


def test_env_example_holds_no_secret() -> None:
    """Placeholders only: the instance secrets stay commented out (lykta init writes them), passwords say
    CHANGE-ME, so a copied file can never run with a value that is public in this repository."""
    listed = env_example_settings()
    active = env_example_environment()
    for name in SECRET_NAMES:
        assert f"LYKTA_{name.upper()}" not in active
        assert listed[f"LYKTA_{name.upper()}"] == ""
    for name, value in active.items():
        if re.search(r"PASSWORD|TOKEN|SECRET|PEPPER|SALT|SIGNING", name):
            assert value == "" or "CHANGE-ME" in value, f"{name} in env.example must be a placeholder"
    assert "CHANGE-ME" in active["LYKTA_DATABASE_URL"]


def test_env_example_is_a_safe_working_configuration(tmp_path: Path) -> None:
    """The app starts from env.example as it stands (secrets from `lykta init`), with production's safe
    values: Secure cookies, no debug, the default upload limit the proxy is sized for."""
    environ = env_example_environment() | {"LYKTA_DATA_DIR": str(tmp_path / "data")}
    write_secrets_file(tmp_path / "data")
    settings = load_settings(environ)
    assert settings.secure_cookies is True
    assert settings.debug is False
    assert settings.database_url.startswith("postgresql://")
    assert str(settings.max_upload_bytes) == environ["LYKTA_MAX_UPLOAD_BYTES"]
    assert environ["LYKTA_DATA_DIR"] != env_example_environment()["LYKTA_DATA_DIR"]
    assert env_example_environment()["LYKTA_DATA_DIR"] == "/var/lib/lykta"
