"""deploy/ checked with the real tools: systemd-analyze, nginx -t, tor --verify-config, docker-compose config,
the Docker parser; and held to what the files promise (no client address logged, limits that match the app,
every setting listed).

Needs the Debian packages systemd, nginx, openssl, tor and docker-compose (see conftest.PACKAGES).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import dockerfile
import pytest
import yaml

from portal import i18n
from portal.app import SMALL_FORM_BYTES, create_resident_app
from portal.middleware import BodyLimit
from portal.settings import SECRET_NAMES, load_settings, write_secrets_file
from tests.deploy.conftest import DEPLOY, ROOT, rendered, run, self_signed_certificate, tool

SYSTEMD = DEPLOY / "systemd"
UNITS = sorted(SYSTEMD.glob("lykta*.service")) + sorted(SYSTEMD.glob("lykta*.timer"))
SERVICES = [unit for unit in UNITS if unit.suffix == ".service"]
NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
NGINX_LOCATIONS = DEPLOY / "nginx" / "lykta-locations.conf"
ENV_EXAMPLE = DEPLOY / "env.example"
HOST = "tips.example.org"


# --- env.example ------------------------------------------------------------------------------------------

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


def env_example_environment() -> dict[str, str]:
    """What a process started with env.example as its EnvironmentFile gets: the uncommented lines."""
    return {
        key: value
        for key, _, value in (
            line.partition("=") for line in ENV_EXAMPLE.read_text().splitlines() if line.startswith("LYKTA_")
        )
    }


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


# --- systemd ---------------------------------------------------------------------------------------------

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


# --- nginx -----------------------------------------------------------------------------------------------


def nginx_copy(directory: Path, extra: dict[str, str] | None = None) -> Path:
    """nginx.conf and its include, rendered into `directory` with a throwaway certificate, logs and pid file
    there too (nginx -t opens them)."""
    cert, key = self_signed_certificate(directory, HOST)
    rendered(NGINX_LOCATIONS, directory / NGINX_LOCATIONS.name, {})
    return rendered(
        NGINX_CONF,
        directory / "nginx.conf",
        {
            f"/etc/letsencrypt/live/{HOST}/fullchain.pem": str(cert),
            f"/etc/letsencrypt/live/{HOST}/privkey.pem": str(key),
            "/etc/nginx/lykta-locations.conf": str(directory / NGINX_LOCATIONS.name),
            "/var/log/nginx/": f"{directory}/",
            "/run/nginx.pid": str(directory / "nginx.pid"),
            **(extra or {}),
        },
    )


def nginx_test(config: Path) -> str:
    checked = run(tool("nginx"), "-t", "-c", str(config))
    assert checked.returncode == 0, checked.stderr
    return checked.stderr


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    assert "test is successful" in nginx_test(nginx_copy(tmp_path))


def test_nginx_t_would_catch_an_unknown_directive(tmp_path: Path) -> None:
    config = nginx_copy(tmp_path, {"server_tokens off;": "server_tokenz off;"})
    checked = run(tool("nginx"), "-t", "-c", str(config))
    assert checked.returncode != 0 and "server_tokenz" in checked.stderr


def nginx_text() -> str:
    """Both files, comments removed."""
    text = NGINX_CONF.read_text() + "\n" + NGINX_LOCATIONS.read_text()
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


# Everything an access log may say, and nothing else: time, site, method, path without the query, protocol,
# status, sizes, durations. Anything naming the visitor ($remote_addr, $http_user_agent, $http_referer, any
# other request header or cookie, $request and $request_uri with their query strings) stays out.
ALLOWED_LOG_VARIABLES = {
    "$time_iso8601",
    "$server_name",
    "$request_method",
    "$uri",
    "$server_protocol",
    "$status",
    "$request_length",
    "$body_bytes_sent",
    "$request_time",
    "$upstream_status",
    "$upstream_response_time",
}
IDENTIFYING = {"$remote_addr", "$binary_remote_addr", "$http_user_agent", "$http_referer", "$request"}


def log_formats() -> dict[str, str]:
    return {
        name: "".join(re.findall(r"'([^']*)'", body))
        for name, body in re.findall(r"\blog_format\s+(\w+)\s+((?:'[^']*'\s*)+);", nginx_text())
    }


def test_the_access_log_format_names_nobody() -> None:
    formats = log_formats()
    assert list(formats) == ["lykta"]
    variables = set(re.findall(r"\$\w+", formats["lykta"]))
    assert variables <= ALLOWED_LOG_VARIABLES, (
        f"not allowed in the access log: {variables - ALLOWED_LOG_VARIABLES}"
    )
    assert not variables & IDENTIFYING
    assert not [variable for variable in variables if variable.startswith(("$http_", "$cookie_", "$arg_"))]


def test_every_log_of_nginx_uses_that_format_or_only_start_up_errors() -> None:
    text = nginx_text()
    access_logs = re.findall(r"\baccess_log\s+([^;]+);", text)
    assert access_logs and all(entry == "off" or entry.split()[1:] == ["lykta"] for entry in access_logs)
    # Error messages about a connection end in "client: ADDRESS", at every level up to crit (see nginx.conf).
    error_logs = re.findall(r"\berror_log\s+([^;]+);", text)
    assert error_logs and all(entry.split()[-1] == "emerg" or entry == "/dev/null" for entry in error_logs)


def test_nothing_naming_the_visitor_is_passed_to_the_app() -> None:
    text = nginx_text()
    for variable in ("$remote_addr", "$proxy_add_x_forwarded_for", "$http_user_agent", "$http_referer"):
        assert variable not in text
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded", "User-Agent", "Referer"):
        assert f'proxy_set_header {header} "";' in text, header


def test_no_tip_is_spooled_to_nginx_disk() -> None:
    """A normal nginx writes request bodies over its buffer to client_body_temp and big responses to
    proxy_temp: plaintext tips and decrypted files on disk. Here: forms fit the memory buffer, uploads and
    responses stream."""
    text = nginx_text()
    assert re.search(r"\bproxy_request_buffering off;", text)
    assert re.search(r"\bproxy_max_temp_file_size 0;", text)
    buffer = re.search(r"\bclient_body_buffer_size (\d+)k;", text)
    assert buffer and int(buffer.group(1)) * 1024 >= SMALL_FORM_BYTES


def size_in_bytes(size: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024, "g": 1024 * 1024 * 1024}
    return int(size[:-1]) * units[size[-1].lower()] if size[-1].isalpha() else int(size)


def the_apps_body_limits(tmp_path: Path) -> BodyLimit:
    """The BodyLimit middleware the resident app is built with (defaults: as env.example leaves them)."""
    environ = {"LYKTA_DATA_DIR": str(tmp_path / "data"), "LYKTA_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    write_secrets_file(tmp_path / "data")
    settings = load_settings(
        environ | {"LYKTA_MAX_UPLOAD_BYTES": env_example_environment()["LYKTA_MAX_UPLOAD_BYTES"]}
    )
    app = create_resident_app(settings)
    (middleware,) = [entry for entry in app.user_middleware if entry.cls is BodyLimit]
    return BodyLimit(app, **middleware.kwargs)  # type: ignore[arg-type]


def test_body_limits_match_the_apps(tmp_path: Path) -> None:
    limits = the_apps_body_limits(tmp_path)
    text = nginx_text()
    (default,) = re.findall(r"^\s{4}client_max_body_size (\w+);", text, re.M)
    assert size_in_bytes(default) == limits.limit_for("/sv/tip") == SMALL_FORM_BYTES
    upload_locations = re.findall(r"location ~ (\S+) \{\s*client_max_body_size (\w+);", text)
    assert len(upload_locations) == 2  # the HTTPS site and the onion listener
    for pattern, size in upload_locations:
        assert size_in_bytes(size) == limits.limit_for("/sv/tip/send")
        for locale in i18n.LOCALES:
            for path in (f"/{locale.code}/tip/send", f"/{locale.code}/mailbox/reply"):
                assert re.match(pattern, path) and limits.limit_for(path) == size_in_bytes(size), path
            for path in (f"/{locale.code}/tip", f"/{locale.code}/followup", f"/{locale.code}/tip/send/x"):
                assert not re.match(pattern, path), path


def test_tls_is_modern_with_hsts_and_onion_location() -> None:
    text = nginx_text()
    assert re.search(r"\bssl_protocols TLSv1\.2 TLSv1\.3;", text)
    ciphers = re.search(r"\bssl_ciphers ([^;]+);", text)
    assert ciphers
    for cipher in ciphers.group(1).split(":"):
        assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher
    assert re.search(r'add_header Strict-Transport-Security "max-age=(\d+)" always;', text)
    assert re.search(r"add_header Onion-Location http://\S+\.onion\$request_uri always;", text)
    assert "proxy_hide_header Onion-Location;" in text
    assert "gzip off;" in text  # BREACH


def test_the_onion_listener_is_where_tor_sends_and_offers_no_back_office() -> None:
    torrc = (DEPLOY / "tor" / "torrc").read_text()
    target = re.search(r"^HiddenServicePort 80 (\S+)$", torrc, re.M)
    assert target
    onion_server = nginx_text().split(f"listen {target.group(1)};", 1)[1]
    staff = re.search(r"location \^~ /staff/ \{([^}]*)\}", onion_server)
    assert staff and staff.group(1).split() == ["return", "404;"]


# --- Tor -------------------------------------------------------------------------------------------------


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


# --- Containers ------------------------------------------------------------------------------------------

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
    assert set(services) == {"db", "lykta", "tor"}
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == "0f1e2d3c4b5a"
    assert any(volume.startswith("pgdata:/var/lib/postgresql/data") for volume in services["db"]["volumes"])
    app = services["lykta"]
    assert app["environment"]["LYKTA_DATABASE_URL"] == "postgresql://lykta:0f1e2d3c4b5a@db:5432/lykta"
    assert app["environment"]["LYKTA_SECURE_COOKIES"] == "true"  # the rest comes from the env file
    assert app["build"]["dockerfile"] == "deploy/Containerfile"
    assert app["read_only"] is True and app["cap_drop"] == ["ALL"]
    published = [str(port) for port in app["ports"]]
    assert published and all(port.startswith("127.0.0.1:") for port in published), published
    address = app["networks"]["onion"]["ipv4_address"]
    torrc = (DEPLOY / "tor" / "torrc-compose").read_text()
    assert f"HiddenServicePort 80 {address}:8000" in torrc
    assert config["networks"]["backend"]["internal"] is True  # the database has no way out


def test_compose_refuses_to_start_without_a_database_password(tmp_path: Path) -> None:
    compose = compose_project(tmp_path, password=None)
    checked = run(*compose_command(), "-f", str(compose), "config", timeout=60)
    assert checked.returncode != 0
    assert "LYKTA_DB_PASSWORD" in checked.stderr


# --- README ----------------------------------------------------------------------------------------------


def test_the_readme_names_every_file_of_deploy() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and path.name != "README.md":
            assert str(path.relative_to(DEPLOY)) in readme, f"deploy/README.md never mentions {path.name}"
