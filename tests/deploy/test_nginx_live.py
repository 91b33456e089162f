"""deploy/nginx/nginx.conf running for real: nginx on loopback ports in front of a recording upstream.

What a visitor or an attacker would notice: HSTS and one Onion-Location on the HTTPS site, a redirect from
plain HTTP, no handshake for unknown names, bodies refused at the app's limits before the app sees them, no
back office over the onion listener, and logs (access and error) with no address, user agent, referrer or
query string in them. The upstream also records what nginx passed on (headers) and whether nginx kept
anything on disk meanwhile (its body and proxy temp directories), for the "no tip on nginx's disk" promise.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import HOST, NGINX_CONF, NGINX_LOCATIONS, rendered, self_signed_certificate, tool

ONION_PLACEHOLDER = "http://ONION-ADDRESS-FROM-HOSTNAME-FILE.onion"
CANARY_AGENT = "CanaryAgent/7.7 (canary-user-agent)"
CANARY_REFERRER = "https://canary-referrer.example/page"
CANARY_ADDRESS = "198.51.100.77"
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def files_open_under(directories: list[Path], master_pid: int) -> list[str]:
    """The files nginx's processes hold open in `directories`. nginx unlinks a temp file right after
    creating it, so a directory listing shows nothing; its open file descriptors still do."""
    pids = [master_pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master_pid:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue  # a process that just ended
    found = []
    for pid in pids:
        for descriptor in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(descriptor)
            except OSError:
                continue
            if any(target.startswith(str(directory)) for directory in directories):
                found.append(target)
    return found


@dataclass
class Upstream:
    """Stands in for `lykta serve`: records each request it gets, answers with what it saw."""

    temp_dirs: list[Path]
    seen: list[dict[str, Any]] = field(default_factory=list)
    nginx_pid: int = 0

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                received = 0
                while received < length:
                    chunk = self.rfile.read(min(65536, length - received))
                    if not chunk:
                        break
                    received += len(chunk)
                # Whatever nginx wrote to disk for this request exists now, while the request is open.
                on_disk = files_open_under(upstream.temp_dirs, upstream.nginx_pid)
                record = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {name.lower(): value for name, value in self.headers.items()},
                    "body_bytes": received,
                    "temp_files": on_disk,
                }
                upstream.seen.append(record)
                body = json.dumps(record).encode()
                if self.path.startswith("/big"):
                    body = b"D" * (4 * MIB)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Onion-Location", "http://the-apps-own-header.onion/")
                self.end_headers()
                # The test that holds a response back hangs up before reading it all.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            do_GET = do_POST = answer

        return Handler


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # nginx hanging up a kept-alive connection
            super().handle_error(request, client_address)


@dataclass
class Proxy:
    https: int
    http: int
    onion: int
    directory: Path
    cert: Path
    upstream: Upstream

    def client(self) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=str(self.cert)), timeout=30)

    def https_get(self, client: httpx.Client, path: str, **headers: str) -> httpx.Response:
        """A GET to the HTTPS site by its name (SNI and Host), connecting to the loopback port."""
        return client.get(
            f"https://127.0.0.1:{self.https}{path}",
            headers={"Host": HOST, **headers},
            extensions={"sni_hostname": HOST},
        )

    def log(self, name: str) -> str:
        path = self.directory / name
        return path.read_text() if path.exists() else ""


def raw_request(port: int, head: str, *, tls_cert: Path | None = None) -> str:
    """Send only a request head (no body) and return the status line: what nginx answers before the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        conn: socket.socket = plain
        if tls_cert is not None:
            conn = ssl.create_default_context(cafile=str(tls_cert)).wrap_socket(plain, server_hostname=HOST)
        conn.sendall(head.encode())
        answer = b""
        while b"\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer.split(b"\r\n", 1)[0].decode()


def wait_for_port(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited: {process.stderr.read() if process.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nginx did not listen on {port}")


@pytest.fixture(scope="module")
def proxy() -> Iterator[Proxy]:
    # Not under pytest's tmp_path: nginx's workers run as www-data and must reach their temp directories.
    directory = Path(tempfile.mkdtemp(prefix="lykta-nginx-"))
    directory.chmod(0o755)
    temp_dirs = [directory / "body", directory / "proxy"]
    for temp_dir in temp_dirs:
        temp_dir.mkdir()
        temp_dir.chmod(0o777)
    upstream = Upstream(temp_dirs)
    server = QuietServer(("127.0.0.1", 0), upstream.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ports = {"https": free_port(), "http": free_port(), "onion": free_port()}
    cert, key = self_signed_certificate(directory, HOST)
    rendered(NGINX_LOCATIONS, directory / NGINX_LOCATIONS.name, {})
    config = rendered(
        NGINX_CONF,
        directory / "nginx.conf",
        {
            f"/etc/letsencrypt/live/{HOST}/fullchain.pem": str(cert),
            f"/etc/letsencrypt/live/{HOST}/privkey.pem": str(key),
            "/etc/nginx/lykta-locations.conf": str(directory / NGINX_LOCATIONS.name),
            "/var/log/nginx/": f"{directory}/",
            "/run/nginx.pid": str(directory / "nginx.pid"),
            # Loopback ports of this test instead of 80, 443 and 8080 (and no IPv6, which CI may lack).
            "listen 80 default_server;": f"listen 127.0.0.1:{ports['http']} default_server;",
            "listen [::]:80 default_server;": "",
            "listen 443 ssl http2 default_server;": (
                f"listen 127.0.0.1:{ports['https']} ssl http2 default_server;"
            ),
            "listen [::]:443 ssl http2 default_server;": "",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{ports['https']} ssl http2;",
            "listen [::]:443 ssl http2;": "",
            "listen 127.0.0.1:8080;": f"listen 127.0.0.1:{ports['onion']};",
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{server.server_address[1]};",
            # nginx's temp directories where this test can watch them.
            "server_tokens off;": (
                f"server_tokens off;\n    client_body_temp_path {temp_dirs[0]};\n"
                f"    proxy_temp_path {temp_dirs[1]};"
            ),
        },
    )
    process = subprocess.Popen(
        [tool("nginx"), "-c", str(config), "-e", str(directory / "startup-error.log"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    upstream.nginx_pid = process.pid
    try:
        for port in ports.values():
            wait_for_port(port, process)
        yield Proxy(directory=directory, cert=cert, upstream=upstream, **ports)
    finally:
        process.terminate()
        process.wait(timeout=20)
        server.shutdown()
        shutil.rmtree(directory, ignore_errors=True)


def test_https_pages_carry_hsts_and_one_onion_location_and_the_app_learns_nothing_of_the_visitor(
    proxy: Proxy,
) -> None:
    with proxy.client() as client:
        response = proxy.https_get(
            client,
            "/sv/tip",
            **{
                "User-Agent": CANARY_AGENT,
                "Referer": CANARY_REFERRER,
                "X-Forwarded-For": CANARY_ADDRESS,
                "X-Real-IP": CANARY_ADDRESS,
                "Forwarded": f"for={CANARY_ADDRESS}",
            },
        )
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == "max-age=63072000"
    assert response.headers.get_list("onion-location") == [f"{ONION_PLACEHOLDER}/sv/tip"]
    seen = response.json()["headers"]
    assert seen["host"] == HOST
    assert seen["x-forwarded-proto"] == "https"
    for header in ("user-agent", "referer", "x-forwarded-for", "x-real-ip", "forwarded"):
        assert header not in seen, header
    assert CANARY_ADDRESS not in json.dumps(seen) and "127.0.0.1" not in json.dumps(seen)


def test_plain_http_redirects_to_https(proxy: Proxy) -> None:
    response = httpx.get(f"http://127.0.0.1:{proxy.http}/sv/tip", headers={"Host": HOST})
    assert response.status_code == 301
    assert response.headers["location"] == f"https://{HOST}/sv/tip"


def test_an_unknown_name_gets_no_tls_handshake(proxy: Proxy) -> None:
    context = ssl.create_default_context(cafile=str(proxy.cert))
    with (
        socket.create_connection(("127.0.0.1", proxy.https), timeout=10) as conn,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(conn, server_hostname="other.example.org")


def test_forms_over_the_apps_limit_never_reach_the_app(proxy: Proxy) -> None:
    with proxy.client() as client:
        before = len(proxy.upstream.seen)
        fitting = client.post(
            f"https://127.0.0.1:{proxy.https}/sv/tip",
            headers={"Host": HOST},
            content=b"a" * (200 * 1024),
            extensions={"sni_hostname": HOST},
        )
        assert fitting.status_code == 200 and fitting.json()["body_bytes"] == 200 * 1024
        refused = client.post(
            f"https://127.0.0.1:{proxy.https}/sv/tip",
            headers={"Host": HOST},
            content=b"a" * (300 * 1024),
            extensions={"sni_hostname": HOST},
        )
        assert refused.status_code == 413
        assert len(proxy.upstream.seen) == before + 1


@pytest.mark.parametrize("listener", ["https", "onion"])
def test_an_upload_declared_over_the_limit_is_refused_before_its_body(proxy: Proxy, listener: str) -> None:
    limit = 101 * MIB  # LYKTA_MAX_UPLOAD_BYTES (100 MiB) + 1 MiB of form overhead, as in portal/app.py
    port = proxy.https if listener == "https" else proxy.onion
    cert = proxy.cert if listener == "https" else None
    before = len(proxy.upstream.seen)
    head = "POST /ar/tip/send HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
    status = raw_request(port, head.format(host=HOST) + f"Content-Length: {limit + 1}\r\n\r\n", tls_cert=cert)
    assert status.split()[1] == "413"
    assert len(proxy.upstream.seen) == before


def test_uploads_stream_to_the_app_and_nothing_is_written_to_nginx_disk(proxy: Proxy) -> None:
    with proxy.client() as client:
        sent = client.post(
            f"https://127.0.0.1:{proxy.https}/fa-AF/mailbox/reply",
            headers={"Host": HOST},
            content=os.urandom(3 * MIB),
            extensions={"sni_hostname": HOST},
        )
        assert sent.status_code == 200
        assert sent.json()["body_bytes"] == 3 * MIB
        assert sent.json()["temp_files"] == []
        # A large response (a decrypted file in the back office) held back by a client that does not read:
        # nginx keeps what it has in memory and never spools the rest to proxy_temp.
        with client.stream(
            "GET",
            f"https://127.0.0.1:{proxy.https}/big",
            headers={"Host": HOST},
            extensions={"sni_hostname": HOST},
        ) as stalled:
            assert stalled.status_code == 200
            time.sleep(0.5)
            assert files_open_under(proxy.upstream.temp_dirs, proxy.upstream.nginx_pid) == []


def test_metrics_are_not_offered_to_the_world(proxy: Proxy) -> None:
    before = len(proxy.upstream.seen)
    with proxy.client() as client:
        for path in ("/metrics", "/staff/metrics"):
            assert proxy.https_get(client, path, Authorization="Bearer guessed").status_code == 404
        assert proxy.https_get(client, "/staff/healthz").status_code == 200
    assert [seen["path"] for seen in proxy.upstream.seen[before:]] == ["/staff/healthz"]


def test_the_onion_listener_offers_neither_back_office_nor_metrics_nor_https_headers(proxy: Proxy) -> None:
    before = len(proxy.upstream.seen)
    for path in ("/staff/", "/staff/login", "/metrics"):
        assert httpx.get(f"http://127.0.0.1:{proxy.onion}{path}").status_code == 404
    assert len(proxy.upstream.seen) == before
    page = httpx.get(f"http://127.0.0.1:{proxy.onion}/so/tip")
    assert page.status_code == 200
    assert "strict-transport-security" not in page.headers and "onion-location" not in page.headers


def test_the_logs_name_nobody(proxy: Proxy) -> None:
    """After requests carrying an address, a user agent, a referrer and a query string, and a refusal (which
    nginx reports in its error log with the client's address at level "error"), neither log holds them."""
    with proxy.client() as client:
        proxy.https_get(
            client,
            "/en/followup?canary-query=1",
            **{"User-Agent": CANARY_AGENT, "Referer": CANARY_REFERRER, "X-Forwarded-For": CANARY_ADDRESS},
        )
        client.post(
            f"https://127.0.0.1:{proxy.https}/en/followup",
            headers={"Host": HOST, "User-Agent": CANARY_AGENT},
            content=b"x" * (300 * 1024),
            extensions={"sni_hostname": HOST},
        )
    httpx.get(
        f"http://127.0.0.1:{proxy.onion}/staff/login?canary-query=2", headers={"User-Agent": CANARY_AGENT}
    )
    deadline = time.monotonic() + 5
    while "/staff/login" not in proxy.log("lykta-access.log") and time.monotonic() < deadline:
        time.sleep(0.05)  # nginx writes a line when the request ends
    access = proxy.log("lykta-access.log")
    assert '"GET /en/followup HTTP/1.1" 200' in access
    assert '"POST /en/followup HTTP/1.1" 413' in access
    assert '"GET /staff/login HTTP/1.1" 404' in access
    errors = proxy.log("error.log")
    for log in (access, errors):
        for trace in (
            "127.0.0.1",
            CANARY_ADDRESS,
            "canary-user-agent",
            "canary-referrer",
            "canary-query",
            "client:",
        ):
            assert trace not in log, trace
