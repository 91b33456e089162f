"""deploy/nginx: `nginx -t` accepts it (with a throwaway certificate made by openssl), and it keeps its
promises on paper: an access log format without the visitor, limits equal to the app's, nothing spooled
to disk, modern TLS. tests/deploy/test_nginx_live.py checks the same with nginx running."""

from __future__ import annotations

import re
from pathlib import Path

from portal import i18n
from portal.app import SMALL_FORM_BYTES, create_resident_app
from portal.middleware import BodyLimit
from portal.settings import load_settings, write_secrets_file
from tests.deploy.conftest import (
    DEPLOY,
    HOST,
    NGINX_CONF,
    NGINX_LOCATIONS,
    env_example_environment,
    rendered,
    run,
    self_signed_certificate,
    tool,
)


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


def test_the_back_office_is_closed_to_the_internet_by_default() -> None:
    # Whoever reaches the staff login can use up its global budget (docs/threat-model.md): every server
    # block that offers /staff/ lets in only listed networks, and ends with "deny all".
    blocks = re.findall(r"location \^~ /staff/ \{([^}]*)\}", nginx_text())
    assert blocks
    for block in blocks:
        rules = [line.strip() for line in block.splitlines() if line.strip()]
        if rules == ["return 404;"]:
            continue
        allowed = [rule.split()[1].rstrip(";") for rule in rules if rule.startswith("allow ")]
        assert allowed and "all" not in allowed, rules
        assert "deny all;" in rules, rules
