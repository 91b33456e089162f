"""deploy/Containerfile and deploy/compose.yaml. No container engine runs on CI: the Containerfiles are read
with BuildKit's own parser (the `dockerfile` package) and checked against the repository, and compose.yaml
with `docker-compose config` (Debian 12's docker-compose), which validates it against the Compose schema
and resolves the env files. Neither image is built here."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import dockerfile
import pytest
import yaml

from tests.deploy.conftest import (
    DEPLOY,
    ENV_EXAMPLE,
    ROOT,
    run,
    tool,
)

# The instructions of the Dockerfile reference; the parser (BuildKit's own, through the `dockerfile`
# package) reads any word as an instruction, the builder rejects what is not one of these.
INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "ONBUILD", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "RUN",
}  # fmt: skip


@pytest.mark.parametrize("path", [DEPLOY / "Containerfile", DEPLOY / "tor" / "Containerfile"], ids=str)
def test_containerfiles_parse_and_copy_what_exists(path: Path) -> None:
    commands = dockerfile.parse_file(str(path))
    assert {command.cmd for command in commands} <= INSTRUCTIONS
    assert commands[0].cmd == "FROM"
    for command in commands:
        if command.cmd == "COPY":
            *sources, _target = command.value
            for source in sources:  # the build context is the repository root (see the file's header)
                assert (ROOT / source).exists(), f"{path.name} copies {source}, which does not exist"
    users = [command.value[0] for command in commands if command.cmd == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_the_app_image_runs_lykta_serve_as_lykta_on_python_slim() -> None:
    commands = dockerfile.parse_file(str(DEPLOY / "Containerfile"))
    (base,) = [command.value[0] for command in commands if command.cmd == "FROM"]
    assert re.fullmatch(r"(docker\.io/library/)?python:3\.1[1-9]-slim(-bookworm)?", base)
    assert [command.value for command in commands if command.cmd == "CMD"] == [
        ("lykta", "serve", "--host", "0.0.0.0", "--port", "8000")
    ]
    assert [command.value[0] for command in commands if command.cmd == "USER"] == ["lykta:lykta"]
    # Every folder the app reads at run time is in the image (locales/ is read beside the source).
    copied = {command.value[0] for command in commands if command.cmd == "COPY"}
    assert {"crypto", "portal", "locales", "pyproject.toml"} <= copied


def compose_command() -> list[str]:
    if run("docker", "compose", "version").returncode == 0 if shutil.which("docker") else False:
        return ["docker", "compose"]
    return [tool("docker-compose")]


def compose_project(directory: Path, *, password: str | None) -> Path:
    """deploy/ copied as an operator prepares it: lykta.env from env.example, .env with the DB password."""
    project = directory / "deploy"
    shutil.copytree(DEPLOY, project)
    shutil.copy(ENV_EXAMPLE, project / "lykta.env")
    if password is not None:
        (project / ".env").write_text(f"LYKTA_DB_PASSWORD={password}\n")
    return project / "compose.yaml"


def test_compose_accepts_the_file_and_wires_app_database_and_tor(tmp_path: Path) -> None:
    compose = compose_project(tmp_path, password="0f1e2d3c4b5a")
    checked = run(*compose_command(), "-f", str(compose), "config", timeout=60)
    assert checked.returncode == 0, checked.stderr
    config = yaml.safe_load(checked.stdout)
    services = config["services"]
    assert set(services) == {"db", "lykta", "lykta-onion", "notify", "tor"}
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == "0f1e2d3c4b5a"
    assert any(volume.startswith("pgdata:/var/lib/postgresql/data") for volume in services["db"]["volumes"])
    app = services["lykta"]
    assert app["environment"]["LYKTA_DATABASE_URL"] == "postgresql://lykta:0f1e2d3c4b5a@db:5432/lykta"
    assert app["environment"]["LYKTA_SECURE_COOKIES"] == "true"  # the rest comes from the env file
    assert app["build"]["dockerfile"] == "deploy/Containerfile"
    assert app["read_only"] is True and app["cap_drop"] == ["ALL"]
    published = [str(port) for port in app["ports"]]
    assert published and all(port.startswith("127.0.0.1:") for port in published), published
    # The onion service reaches only a resident-side process: the back office is never offered over it.
    onion = services["lykta-onion"]
    assert onion["command"][-2:] == ["--part", "resident"] and "ports" not in onion
    assert onion["environment"]["LYKTA_DATABASE_URL"] == app["environment"]["LYKTA_DATABASE_URL"]
    assert onion["read_only"] is True and onion["cap_drop"] == ["ALL"]
    address = onion["networks"]["outside"]["ipv4_address"]
    torrc = (DEPLOY / "tor" / "torrc-compose").read_text()
    assert f"HiddenServicePort 80 {address}:8000" in torrc
    assert "lykta-onion" in services["tor"]["depends_on"]
    assert config["networks"]["backend"]["internal"] is True  # the database has no way out
    assert services["db"]["networks"] == {"backend": None}
    notify = services["notify"]
    assert notify["command"] == ["lykta", "notify", "run"] and notify["profiles"] == ["notify"]
    assert notify["environment"]["LYKTA_DATABASE_URL"] == app["environment"]["LYKTA_DATABASE_URL"]


def test_compose_refuses_to_start_without_a_database_password(tmp_path: Path) -> None:
    compose = compose_project(tmp_path, password=None)
    checked = run(*compose_command(), "-f", str(compose), "config", timeout=60)
    assert checked.returncode != 0
    assert "LYKTA_DB_PASSWORD" in checked.stderr
