"""/healthz for the proxy and /metrics for operators (issue 5, item 7): both apps serve them, alone or
together; health says only "ok" or "unavailable"; metrics need the configured token and never carry a
path's ids, an address or a user agent."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.datastructures import Secret
from starlette.testclient import TestClient

import crypto
from portal.app import build_services, create_app, create_resident_app, create_staff_app
from portal.metrics import BUCKETS, Metrics, metrics_of
from portal.settings import Settings, SettingsError, generate_secrets, load_settings
from portal.submission.replycodes import DerivationBusyError, MailboxDeriver
from portal.web import Services

TOKEN = "m" * 20 + "-metrics-token-for-tests"
AUTH = {"authorization": f"Bearer {TOKEN}"}
TIP_ID = "0123456789abcdef" * 2
CANARY = "canary-path-segment-7f3a"


@pytest.fixture
def metered(settings: Settings, services: Services) -> Iterator[tuple[TestClient, Services]]:
    """Lykta in one process with a metrics token configured."""
    changed = dataclasses.replace(settings, metrics_token=Secret(TOKEN))
    built = dataclasses.replace(services, settings=changed)
    with TestClient(create_app(changed, services=built), base_url="http://testserver") as client:
        yield client, built


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name` whose labels include `labels` (0 if there is none)."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


@pytest.mark.parametrize("prefix", ["", "/staff"])
def test_healthz_says_ok_and_sets_nothing(
    client: TestClient, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lykta.access")
    client.cookies.clear()
    response = client.get(f"{prefix}/healthz")
    assert (response.status_code, response.text) == (200, "ok")
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert "healthz" not in caplog.text  # an answered probe is not access-log noise


def test_each_app_alone_answers_healthz(settings: Settings, services: Services) -> None:
    for app in (
        create_resident_app(settings, services=services),
        create_staff_app(settings, services=services),
    ):
        with TestClient(app) as alone:
            assert alone.get("/healthz").text == "ok"


def broken_database_urls(tmp_path: Path, database_url: str) -> list[str]:
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    urls = [f"sqlite:///{tmp_path / 'no-such-dir' / 'lykta.sqlite3'}", f"sqlite:///{empty}"]
    if database_url.startswith("postgresql"):
        urls.append(database_url.rsplit("/", 1)[0] + "/lykta_no_such_database")
    return urls


def test_healthz_is_503_without_details_when_the_database_does_not_answer(
    settings: Settings, tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for url in broken_database_urls(tmp_path, database_url):
        broken = dataclasses.replace(settings, database_url=url)
        built = build_services(broken)
        try:
            for app, path in (
                (create_app(broken, services=built), "/healthz"),
                (create_app(broken, services=built), "/staff/healthz"),
                (create_staff_app(broken, services=built), "/healthz"),
            ):
                with TestClient(app) as client:
                    response = client.get(path)
                assert (response.status_code, response.text) == (503, "unavailable"), url
                assert "set-cookie" not in response.headers
        finally:
            built.engine.dispose()
    # The server log says that it failed and of which kind, never the database's own message or address.
    assert "health check failed" in caplog.text
    assert "no-such-dir" not in caplog.text and "lykta_no_such_database" not in caplog.text
    assert "/healthz 503" in caplog.text  # a failed probe is logged


def test_metrics_are_404_without_the_configured_token(
    client: TestClient, metered: tuple[TestClient, Services]
) -> None:
    # No token configured: no metrics at all, whatever is presented.
    for path in ("/metrics", "/staff/metrics"):
        assert client.get(path, headers=AUTH).status_code == 404
    with_token, _services = metered
    for path in ("/metrics", "/staff/metrics"):
        for headers in (
            {},
            {"authorization": f"Bearer {TOKEN[:-1]}"},
            {"authorization": f"Bearer {TOKEN}x"},
            {"authorization": f"Basic {TOKEN}"},
            {"authorization": TOKEN},
            {"authorization": "Bearer "},
        ):
            response = with_token.get(path, headers=headers)
            assert response.status_code == 404, (path, headers)
            assert "lykta_http" not in response.text
        response = with_token.get(path, headers={"authorization": f"bearer  {TOKEN} "})
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "set-cookie" not in response.headers


def test_counts_move_by_route_template_never_by_path(metered: tuple[TestClient, Services]) -> None:
    client, _services = metered
    before = client.get("/metrics", headers=AUTH).text
    staff_tip = {"app": "staff", "method": "GET", "route": "/tips/{tip_id:str}", "status": "3xx"}
    assert sample(before, "lykta_http_requests_total", **staff_tip) == 0
    headers = {
        "user-agent": "Mozilla/5.0 canary-agent",
        "x-forwarded-for": "203.0.113.77",
        "referer": "http://x/",
    }
    for _ in range(3):
        assert (
            client.get(
                f"/staff/tips/{TIP_ID}?q={CANARY}", headers=headers, follow_redirects=False
            ).status_code
            == 303
        )
    assert client.get(f"/sv/{CANARY}", headers=headers).status_code == 404
    assert client.get(f"/staff/{CANARY}/{TIP_ID}", headers=headers).status_code == 404
    assert client.get("/sv/tip").status_code == 200
    client.request("BREW", f"/{CANARY}")
    after = client.get("/staff/metrics", headers=AUTH).text

    assert sample(after, "lykta_http_requests_total", **staff_tip) == 3
    assert sample(after, "lykta_http_requests_total", app="resident", route="(unmatched)", status="4xx") >= 1
    assert sample(after, "lykta_http_requests_total", app="staff", route="(unmatched)", status="4xx") == 1
    assert (
        sample(after, "lykta_http_requests_total", app="resident", method="other", route="(unmatched)") == 1
    )
    assert (
        sample(after, "lykta_http_requests_total", app="resident", route="/{lang:lang}/tip", status="2xx")
        == 1
    )
    # The scrape before was counted too (the page counts itself after it is sent).
    assert sample(after, "lykta_http_requests_total", app="resident", route="/metrics", status="2xx") == 1
    for secret in (
        TIP_ID,
        CANARY,
        "canary-agent",
        "Mozilla",
        "203.0.113.77",
        "testclient",
        "127.0.0.1",
        "BREW",
    ):
        assert secret not in after, secret
    routes = set(re.findall(r'route="([^"]*)"', after))
    assert all(r == "(unmatched)" or r.startswith("/") for r in routes)


def test_latency_histogram_is_cumulative_and_sums(metered: tuple[TestClient, Services]) -> None:
    client, _services = metered
    for _ in range(4):
        client.get("/sv/")
    text = client.get("/metrics", headers=AUTH).text
    labels = {"app": "resident", "route": "/{lang:lang}/"}
    buckets = [
        sample(text, "lykta_http_request_duration_seconds_bucket", **labels, le=repr(b)) for b in BUCKETS
    ]
    infinite = sample(text, "lykta_http_request_duration_seconds_bucket", **labels, le="+Inf")
    assert buckets == sorted(buckets) and buckets[-1] <= infinite
    assert infinite == sample(text, "lykta_http_request_duration_seconds_count", **labels) == 4
    assert sample(text, "lykta_http_request_duration_seconds_sum", **labels) > 0
    assert sample(text, "lykta_http_requests_in_flight", app="resident") == 1  # this scrape
    assert sample(text, "lykta_process_start_time_seconds") > 1.7e9


def test_reply_code_derivations_are_published(
    metered: tuple[TestClient, Services], fast_argon2: crypto.Argon2Params
) -> None:
    client, built = metered
    text = client.get("/metrics", headers=AUTH).text
    assert "# TYPE lykta_reply_code_derivations_running gauge" in text
    assert sample(text, "lykta_reply_code_derivations_running") == 0
    assert sample(text, "lykta_reply_code_derivations_waiting") == 0
    assert sample(text, "lykta_reply_code_derivations_refused_total") == 0

    deriver: MailboxDeriver = built.extras["deriver"]
    code = crypto.ReplyCode.generate()
    seen: list[tuple[int, int]] = []

    async def crowd() -> None:
        # One place to run (reply_code_concurrency=1 below): the first runs, the second waits, the third is
        # refused, as the queue is full.
        deriver._max_waiting = 2
        first = asyncio.ensure_future(deriver.derive(code))
        second = asyncio.ensure_future(deriver.derive(code))
        await asyncio.sleep(0)
        seen.append((deriver.running, deriver.queued))
        with pytest.raises(DerivationBusyError):
            await deriver.derive(code)
        await asyncio.gather(first, second)
        seen.append((deriver.running, deriver.queued))

    single = dataclasses.replace(built.settings, reply_code_concurrency=1)
    built.extras["deriver"] = deriver = MailboxDeriver(single, params=fast_argon2)
    asyncio.run(crowd())
    assert seen == [(1, 1), (0, 0)]
    text = client.get("/metrics", headers=AUTH).text
    assert sample(text, "lykta_reply_code_derivations_refused_total") == 1


def test_registered_gauges_are_rendered_and_checked() -> None:
    metrics = Metrics()
    metrics.register_gauge(
        "lykta_outbox_messages",
        "Messages in the outbox.\nBy state.",
        lambda: {"waiting": 3, 'odd"\\\n': 1.5},
        label="state",
    )
    metrics.register_gauge("lykta_broken", "Fails.", lambda: 1 / 0)
    metrics.register_gauge("lykta_plain", "A number.", lambda: 7)
    text = metrics.render_gauges()
    assert 'lykta_outbox_messages{state="waiting"} 3' in text
    assert 'lykta_outbox_messages{state="odd\\"\\\\\\n"} 1.5' in text
    assert "# HELP lykta_outbox_messages Messages in the outbox.\\nBy state." in text
    assert "lykta_plain 7" in text and "lykta_broken" not in text
    for bad in ("lykta outbox", "1lykta", "lykta_http_requests_total", "lykta-dash"):
        with pytest.raises(ValueError):
            metrics.register_gauge(bad, "x", lambda: 1)
    with pytest.raises(ValueError):
        metrics.register_gauge("lykta_plain", "again", lambda: 1)
    with pytest.raises(ValueError):
        metrics.register_gauge("lykta_labelled", "x", lambda: {"a": 1}, label="bad label")


def test_the_metrics_token_is_checked_and_never_shown(tmp_path: Path) -> None:
    environ = {f"LYKTA_{name.upper()}": value for name, value in generate_secrets().items()}
    environ["LYKTA_DATA_DIR"] = str(tmp_path)
    assert str(load_settings(environ).metrics_token) == ""
    with pytest.raises(SettingsError, match="LYKTA_METRICS_TOKEN"):
        load_settings({**environ, "LYKTA_METRICS_TOKEN": "short"})
    with pytest.raises(SettingsError, match="LYKTA_METRICS_TOKEN"):
        load_settings({**environ, "LYKTA_METRICS_TOKEN": "é" * 40})
    settings = load_settings({**environ, "LYKTA_METRICS_TOKEN": TOKEN})
    assert str(settings.metrics_token) == TOKEN and TOKEN not in repr(settings)


def test_one_registry_per_process_for_both_apps(settings: Settings, services: Services) -> None:
    app = create_app(settings, services=services)
    assert isinstance(app, Starlette)
    assert metrics_of(services) is metrics_of(services)
    with TestClient(app) as client:
        client.get("/staff/login")
        client.get("/sv/")
    text = metrics_of(services).render_requests()
    assert sample(text, "lykta_http_requests_total", app="staff", route="/login") == 1
    assert sample(text, "lykta_http_requests_total", app="resident", route="/{lang:lang}/") == 1
