"""The defences every resident response carries (issue 3, section 6; DESIGN 4).

Security headers on every page in every language and on every error page; Onion-Location only when an
onion address is configured; cookies that scripts cannot read and other sites cannot send; no page that
makes the browser fetch anything from another site; and an access log, ours and the server's, that names
no one: no client address, user agent, referrer or query string.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from starlette.testclient import TestClient

from crypto import Argon2Params
from portal import cli, i18n
from portal.settings import Settings
from portal.submission import mailbox, pages
from tests.portal import seeded
from tests.portal.submission.browser import (
    ANSWERS,
    app_client,
    element_text,
    form_token,
    log_in,
    review,
    send_reviewed,
    send_tip,
)

PAGES = [
    "",
    "privacy",
    "accessibility",
    "emergency",
    "tip",
    "tip?municipality=nykvarn",
    "followup",
    "mailbox",
]
# The only other sites a resident page may link to (never load from): where to get Tor Browser, and the
# accessibility supervisor named in the accessibility statement.
LINKABLE_SITES = ("torproject.org", "digg.se")
ONION = "lyktaexampleonionaddressxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion"

# Each test on a copy of one seeded demo network, as on the resident side (see tests/portal/seeded.py).
database_url = seeded.database_url
settings = seeded.settings
demo_accounts = seeded.demo_accounts
seeded_sqlite = seeded.seeded_sqlite
seeded_postgres = seeded.seeded_postgres
seeded_secrets = seeded.seeded_secrets
session_argon2 = seeded.session_argon2


# --- what every response must carry -------------------------------------------------------------------------


def csp_directives(value: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in value.split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} twice in the CSP"
        directives[name] = sources
    return directives


def assert_security_headers(response: httpx.Response, *, page: bool = True) -> None:
    where = f"{response.request.method} {response.request.url} ({response.status_code})"
    headers = response.headers
    csp = csp_directives(headers.get("content-security-policy", ""))
    assert csp.get("default-src") == ["'none'"], where
    assert csp.get("frame-ancestors") == ["'none'"], where
    assert csp.get("form-action") == ["'self'"], where
    assert csp.get("base-uri") == ["'none'"], where
    for name, sources in csp.items():
        # Same origin only: no other host, scheme or wildcard, and nothing that lets injected code run.
        assert set(sources) <= {"'self'", "'none'", "data:"}, (where, name, sources)
        assert not (name in {"script-src", "style-src", "default-src"} and "data:" in sources), (where, name)
    assert headers.get("referrer-policy") == "no-referrer", where
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("cross-origin-opener-policy") == "same-origin", where
    assert headers.get("cross-origin-resource-policy") == "same-origin", where
    permissions = headers.get("permissions-policy", "")
    for feature in ("camera", "microphone", "geolocation"):
        assert f"{feature}=()" in permissions, (where, feature)
    if page:
        assert "no-store" in headers.get("cache-control", ""), where
    assert headers.get_list("set-cookie") == [] or all(
        "httponly" in c.lower() for c in headers.get_list("set-cookie")
    ), where


class _Resources(HTMLParser):
    """Every URL a page makes the browser fetch by itself, and every link it offers."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched: list[str] = []
        self.links: list[str] = []
        self.forms: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name in ("src", "srcset", "poster", "data", "background"):
            if name in values:
                self.fetched.append(values[name])
        if tag == "link" and "href" in values:
            self.fetched.append(values["href"])
        if tag == "a" and "href" in values:
            self.links.append(values["href"])
        if tag == "form":
            self.forms.append(values.get("action", ""))
        if "style" in values:
            self.fetched += re.findall(r"url\(\s*['\"]?([^'\")]+)", values["style"])


def is_other_site(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.netloc) or parts.scheme not in {"", "tel", "mailto"} or url.startswith("//")


def assert_nothing_from_other_sites(html: str, where: str) -> None:
    resources = _Resources()
    resources.feed(html)
    loaded = [url for url in resources.fetched if is_other_site(url) and not url.startswith("data:")]
    assert loaded == [], (where, loaded)
    for style in re.findall(r"<style[^>]*>(.*?)</style>", html, re.S | re.I):
        assert not re.search(r"url\(\s*['\"]?(https?:)?//|@import", style), where
    for link in resources.links:
        host = urlsplit(link).hostname
        if is_other_site(link) and urlsplit(link).scheme not in {"tel", "mailto"}:
            assert host and any(host == s or host.endswith("." + s) for s in LINKABLE_SITES), (where, link)
    assert all(not is_other_site(action) for action in resources.forms), (where, resources.forms)


# --- the tests ----------------------------------------------------------------------------------------------


def test_every_resident_page_in_every_language_has_the_headers(client: TestClient) -> None:
    for locale in i18n.LOCALES:
        for page in PAGES:
            response = client.get(f"/{locale.code}/{page}", follow_redirects=False)
            assert response.status_code in {200, 303}, (locale.code, page)
            assert_security_headers(response)
            assert "onion-location" not in response.headers
            if response.status_code == 200:
                assert_nothing_from_other_sites(response.text, f"/{locale.code}/{page}")
    for path in ("/", "/healthz"):
        assert_security_headers(client.get(path, follow_redirects=False))
    # The pages behind forms: the review, the reply code, the mailbox.
    reviewed = review(client, "ar", ANSWERS)
    sent = send_reviewed(client, "ar", ANSWERS, [])
    opened = log_in(client, "ar", element_text(sent.text, "reply-code"))
    for name, response in {"review": reviewed, "reply code": sent, "mailbox": opened}.items():
        assert response.status_code == 200, name
        assert_security_headers(response)
        assert_nothing_from_other_sites(response.text, name)
    # Static files: the same headers (caching them is fine), and the stylesheet fetches nothing elsewhere.
    stylesheet = client.get("/static/css/lykta.css")
    assert stylesheet.status_code == 200
    assert_security_headers(stylesheet, page=False)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//|@import", stylesheet.text)
    for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", stylesheet.text):
        if not url.startswith("data:"):
            font = client.get(url if url.startswith("/") else "/static/css/" + url)
            assert font.status_code == 200, url
            assert_security_headers(font, page=False)


@pytest.fixture
def failing_client(
    settings: Settings, demo_accounts: dict[str, Any], fast_argon2: Argon2Params
) -> Iterator[TestClient]:
    """A browser on an app whose views may fail; the server's 500 is returned, not raised."""
    with app_client(settings, fast_argon2, raise_server_exceptions=False) as (client, _services):
        yield client


def test_error_pages_have_the_headers(failing_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    client = failing_client
    token = form_token(client.get("/sv/tip").text, "/sv/tip")
    errors = [
        (404, client.get("/sv/nowhere")),
        (404, client.get("/de/tip")),
        (404, client.get("/nowhere/at/all?x=1")),
        (404, client.get("/static/nowhere.css")),
        (400, client.post("/sv/tip", data={**ANSWERS, "csrf": "forged"})),
        (400, client.post("/ar/tip", data={"csrf": token})),
        (400, log_in(client, "fa", "1234")),
        (405, client.get("/sv/tip/send")),
        (413, client.post("/sv/tip", content=b"what=" + b"x" * 300_000)),
    ]
    for status, response in errors:
        assert response.status_code == status, response.request.url
        assert_security_headers(response, page=not response.request.url.path.startswith("/static/"))

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug in a view")

    monkeypatch.setattr(pages, "render", broken)
    for lang in ("sv", "ar"):
        failed = client.get(f"/{lang}/privacy")
        assert failed.status_code == 500
        assert_security_headers(failed)
        assert failed.headers["content-type"].startswith("text/html")
        assert f'<html lang="{lang}"' in failed.text
        assert "RuntimeError" not in failed.text and "Traceback" not in failed.text


def test_onion_location_only_when_an_onion_address_is_configured(
    settings: Settings, demo_accounts: dict[str, Any], fast_argon2: Argon2Params
) -> None:
    with app_client(settings, fast_argon2, onion_address=ONION) as (client, _services):
        for path in ("/sv/", "/ar/tip", "/fa-AF/followup", "/sv/nowhere", "/static/css/lykta.css"):
            response = client.get(path, follow_redirects=False)
            assert response.headers.get("onion-location") == f"http://{ONION}{path}", path
    with app_client(settings, fast_argon2) as (client, _services):
        assert "onion-location" not in client.get("/sv/").headers


def cookies_set(responses: list[httpx.Response]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for response in responses:
        for header in response.headers.get_list("set-cookie"):
            name = header.split("=", 1)[0]
            found.setdefault(name, []).append(header)
    return found


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_cookies_are_http_only_strict_and_secure_when_configured(
    settings: Settings, demo_accounts: dict[str, Any], fast_argon2: Argon2Params, secure: bool
) -> None:
    responses: list[httpx.Response] = []
    with app_client(settings, fast_argon2, secure_cookies=secure) as (client, _services):
        client.base_url = httpx.URL("https://testserver" if secure else "http://testserver")
        client.event_hooks = {"response": [responses.append]}
        code, _case = send_tip(client, "sv", ANSWERS, [])
        opened = log_in(client, "sv", code)
        assert opened.status_code == 200
        client.post("/sv/logout", data={"csrf": form_token(opened.text, "/sv/logout")})
    found = cookies_set(responses)
    assert set(found) >= {"lykta_csrf", "lykta_lang", mailbox.SESSION_COOKIE}
    for name, headers in found.items():
        for header in headers:
            cookie = SimpleCookie()
            cookie.load(header)
            morsel = cookie[name]
            assert morsel["httponly"], header
            assert morsel["samesite"].lower() == "strict", header
            assert bool(morsel["secure"]) == secure, header
            assert morsel["path"] == "/", header
    # Logging out removes the session cookie (with the attributes it was set with, checked above).
    assert any("max-age=0" in header.lower() for header in found[mailbox.SESSION_COOKIE])


# --- the access log -----------------------------------------------------------------------------------------


def identifying_request(marker: str) -> tuple[dict[str, str], str]:
    """Headers and a query string that would identify the resident if any of it were logged."""
    headers = {
        "user-agent": f"Mozilla/5.0 (X11; Linux x86_64; LyktaAgent{marker}) Gecko/20100101 Firefox/128.0",
        "referer": f"https://referrer{marker}.example/page?from=newsletter",
        "x-forwarded-for": f"203.0.113.{int(marker[:2], 16) % 250}",
        "accept-language": "sv-SE,sv;q=0.9",
    }
    return headers, f"q=query{marker}&utm_source=mail{marker}"


def assert_log_names_no_one(records: list[logging.LogRecord], marker: str, addresses: list[str]) -> None:
    """No record of the server side (the test's own httpx client logs what it asks for) names anyone."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    server_side = [r for r in records if r.name.split(".")[0] not in {"httpx", "httpcore"}]
    assert server_side
    for record in server_side:
        line = formatter.format(record) + " " + repr(record.args)
        assert marker not in line, line
        assert "Mozilla" not in line and "Firefox" not in line, line
        for address in addresses:
            assert address not in line, line


def test_the_access_log_names_no_one(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    marker = secrets.token_hex(6)
    headers, query = identifying_request(marker)
    token = form_token(client.get("/sv/tip").text, "/sv/tip")
    caplog.clear()
    client.get(f"/sv/?{query}", headers=headers)
    client.get(f"/sv/tip?{query}", headers=headers)
    client.post(f"/sv/tip?{query}", data={**ANSWERS, "csrf": token}, headers=headers)
    client.get(f"/sv/nowhere?{query}", headers=headers)
    access = [r for r in caplog.records if r.name == "lykta.access"]
    # One line per request, with what operating the service needs: method, route pattern, status.
    assert [r.getMessage().split()[:3] for r in access] == [
        ["GET", "/{lang:lang}/", "200"],
        ["GET", "/{lang:lang}/tip", "200"],
        ["POST", "/{lang:lang}/tip", "200"],
        ["GET", "(unmatched)", "404"],
    ]
    assert_log_names_no_one(caplog.records, marker, ["testclient", "127.0.0.1", "203.0.113."])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_servers_access_log_names_no_one_either(
    settings: Settings,
    demo_accounts: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`lykta serve` runs uvicorn as configured there; the same configuration, serving a real socket."""
    for name, value in {
        "LYKTA_DATA_DIR": str(settings.data_dir),
        "LYKTA_DATABASE_URL": settings.database_url,
        "LYKTA_SIGNING_KEY": str(settings.secrets.signing_key),
        "LYKTA_PEPPER": str(settings.secrets.pepper),
        "LYKTA_INSTANCE_SALT": base64.b64encode(settings.secrets.instance_salt).decode(),
    }.items():
        monkeypatch.setenv(name, value)
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.update(args=args, kwargs=kwargs))
    assert CliRunner().invoke(cli.main, ["serve"]).exit_code == 0
    port = free_port()
    config = uvicorn.Config(*served["args"], **{**served["kwargs"], "port": port, "workers": None})
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    caplog.set_level(logging.DEBUG)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        caplog.clear()  # the start-up lines name the server's own address
        marker = secrets.token_hex(6)
        headers, query = identifying_request(marker)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
            assert browser.get(f"/sv/?{query}", headers=headers).status_code == 200
            assert browser.get(f"/sv/nowhere?{query}", headers=headers).status_code == 404
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    records = list(caplog.records)  # after the server stopped: it logs a request once it has answered it
    assert [r.getMessage().split()[:3] for r in records if r.name == "lykta.access"] == [
        ["GET", "/{lang:lang}/", "200"],
        ["GET", "(unmatched)", "404"],
    ]
    assert_log_names_no_one(records, marker, ["127.0.0.1", "203.0.113."])
