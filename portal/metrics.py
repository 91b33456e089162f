"""Request metrics for operators, served as a plain-text page in the Prometheus text format (issue 5, 7).

What is counted says nothing about a person or a tip: requests by app, method, route *template* and status
class (`/tips/{tip_id:str}`, never the path, which can carry a tip id, a file id or an enrolment token;
an address that matches no route is `(unmatched)`), a latency histogram per route template, requests in
flight, and whatever gauges other parts of Lykta register (the reply-code derivations here; the
notification outbox its queue sizes). No client address, user agent, referrer, query string or content.

    metrics = metrics_of(services)
    metrics.register_gauge("lykta_outbox_messages", "Messages in the outbox.", count_fn, label="state")

`fn` returns a number, or with `label` a mapping of label value to number. Gauges are read when the page is
requested, in a worker thread (they may query the database), so they must be safe to call from one.

Counting is per process: with several server processes, each keeps its own counts (scrape each, or run one
process per port). Who may read the page: docs/operations.md.
"""

from __future__ import annotations

import bisect
import dataclasses
import hmac
import logging
import math
import re
import time
from collections.abc import Callable, Mapping

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal.submission.replycodes import MailboxDeriver
from portal.web import Services, services

log = logging.getLogger("lykta.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds; Prometheus' defaults, which span a static file to a reply-code derivation under load.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Any other method (a client may send anything) is counted as "other", so labels stay a short list.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

GaugeValue = float | int | Mapping[str, float | int]


@dataclasses.dataclass
class _Histogram:
    buckets: list[int]  # per bucket, not cumulative; the last one is +Inf
    total: float = 0.0
    count: int = 0


@dataclasses.dataclass(frozen=True)
class _Gauge:
    name: str
    help: str
    fn: Callable[[], GaugeValue]
    label: str | None
    kind: str  # "gauge" or "counter"


class Metrics:
    """The counts of one process. Updated on the event loop only, so plain dicts need no lock."""

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, str, str], int] = {}
        self._latency: dict[tuple[str, str], _Histogram] = {}
        self._in_flight: dict[str, int] = {}
        self._gauges: dict[str, _Gauge] = {}
        self.started = time.time()

    def request_started(self, app: str) -> None:
        self._in_flight[app] = self._in_flight.get(app, 0) + 1

    def request_finished(self, app: str, method: str, route: str, status: int, seconds: float) -> None:
        self._in_flight[app] -= 1
        key = (app, method if method in METHODS else "other", route, f"{status // 100}xx")
        self._requests[key] = self._requests.get(key, 0) + 1
        histogram = self._latency.get((app, route))
        if histogram is None:
            histogram = self._latency[(app, route)] = _Histogram([0] * (len(BUCKETS) + 1))
        histogram.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        histogram.total += seconds
        histogram.count += 1

    def register_gauge(
        self, name: str, help: str, fn: Callable[[], GaugeValue], *, label: str | None = None
    ) -> None:
        """Publish `fn()` as gauge `name` (a Prometheus metric name; register each name once)."""
        self._register(_Gauge(name, help, fn, label, "gauge"))

    def register_counter(
        self, name: str, help: str, fn: Callable[[], GaugeValue], *, label: str | None = None
    ) -> None:
        """As register_gauge, for a number that only grows (its name should end in `_total`)."""
        self._register(_Gauge(name, help, fn, label, "counter"))

    def _register(self, gauge: _Gauge) -> None:
        if not _NAME.match(gauge.name) or gauge.name.startswith("lykta_http_"):
            raise ValueError(f"not a metric name of ours: {gauge.name!r}")
        if gauge.label is not None and not _LABEL.match(gauge.label):
            raise ValueError(f"not a label name: {gauge.label!r}")
        if gauge.name in self._gauges:
            raise ValueError(f"metric {gauge.name} is registered already")
        self._gauges[gauge.name] = gauge

    def render_requests(self) -> str:
        """The request metrics (call on the event loop: it reads the live counts)."""
        lines = [
            "# HELP lykta_http_requests_total HTTP requests by app, method, route template and status class.",
            "# TYPE lykta_http_requests_total counter",
        ]
        for (app, method, route, status), count in sorted(self._requests.items()):
            labels = _labels(app=app, method=method, route=route, status=status)
            lines.append(f"lykta_http_requests_total{{{labels}}} {count}")
        lines += [
            "# HELP lykta_http_request_duration_seconds Time to answer a request, by app and route template.",
            "# TYPE lykta_http_request_duration_seconds histogram",
        ]
        for (app, route), histogram in sorted(self._latency.items()):
            labels = _labels(app=app, route=route)
            cumulative = 0
            for bound, count in zip((*BUCKETS, math.inf), histogram.buckets, strict=True):
                cumulative += count
                le = "+Inf" if bound == math.inf else repr(bound)
                lines.append(f'lykta_http_request_duration_seconds_bucket{{{labels},le="{le}"}} {cumulative}')
            lines.append(f"lykta_http_request_duration_seconds_sum{{{labels}}} {_number(histogram.total)}")
            lines.append(f"lykta_http_request_duration_seconds_count{{{labels}}} {histogram.count}")
        lines += [
            "# HELP lykta_http_requests_in_flight Requests being answered now.",
            "# TYPE lykta_http_requests_in_flight gauge",
            *(
                f"lykta_http_requests_in_flight{{{_labels(app=a)}}} {n}"
                for a, n in sorted(self._in_flight.items())
            ),
            "# HELP lykta_process_start_time_seconds When this process started, in Unix time.",
            "# TYPE lykta_process_start_time_seconds gauge",
            f"lykta_process_start_time_seconds {_number(self.started)}",
        ]
        return "\n".join(lines) + "\n"

    def render_gauges(self) -> str:
        """The registered gauges (may block: call it in a worker thread)."""
        lines: list[str] = []
        for gauge in sorted(self._gauges.values(), key=lambda g: g.name):
            try:
                value = gauge.fn()
                samples = _samples(gauge, value)
            except Exception as exc:  # one broken gauge must not hide the others
                log.warning("metric %s could not be read: %s", gauge.name, type(exc).__name__)
                continue
            lines.append(f"# HELP {gauge.name} {_escape_help(gauge.help)}")
            lines.append(f"# TYPE {gauge.name} {gauge.kind}")
            lines.extend(samples)
        return "\n".join(lines) + ("\n" if lines else "")


def _samples(gauge: _Gauge, value: GaugeValue) -> list[str]:
    if isinstance(value, Mapping):
        if gauge.label is None:
            raise TypeError("a mapping needs a label name")
        label = gauge.label
        return [
            f"{gauge.name}{{{_labels(**{label: str(k)})}}} {_number(v)}" for k, v in sorted(value.items())
        ]
    return [f"{gauge.name} {_number(value)}"]


def _number(value: float | int) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("a metric is a number")
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return ",".join(f'{name}="{_escape_label(value)}"' for name, value in labels.items())


def metrics_of(built: Services) -> Metrics:
    """The process's metrics, kept with the services (one registry for both apps in one process)."""
    found = built.extras.get("metrics")
    if not isinstance(found, Metrics):
        found = built.extras["metrics"] = Metrics()
    return found


class RequestMetrics:
    """Count each request under its route template once the app has answered (portal.app lists it)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, app_name: str) -> None:
        self.app = app
        self.metrics = metrics
        self.app_name = app_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # When this app is mounted, the outer router has set its own route (the Mount) already: only a
        # route matched inside this app names the request.
        outer_route = scope.get("route")
        status = 500  # if the app fails before it answers, the server sends a 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.request_started(self.app_name)
        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) if route is not outer_route else None
            self.metrics.request_finished(
                self.app_name, scope["method"], path or UNMATCHED, status, time.perf_counter() - started
            )


def token_matches(expected: str, authorization: str | None) -> bool:
    """Whether `Authorization: Bearer <token>` carries `expected`, compared in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected.encode("utf-8"))


async def metrics_page(request: Request) -> Response:
    """The metrics, for a scraper presenting LYKTA_METRICS_TOKEN. Anyone else, and everyone when no token
    is configured, gets the app's own 404: the page's existence is not confirmed."""
    built = services(request)
    if not token_matches(str(built.settings.metrics_token), request.headers.get("authorization")):
        raise HTTPException(status_code=404)
    metrics = metrics_of(built)
    text = metrics.render_requests() + await anyio.to_thread.run_sync(metrics.render_gauges)
    return PlainTextResponse(text, media_type=CONTENT_TYPE)


def watch_reply_codes(metrics: Metrics, deriver: Callable[[], MailboxDeriver]) -> None:
    """Publish the reply-code derivations: running, waiting for a place, and refused as busy.

    `deriver` is asked at each read, so a deriver replaced after start (tests lower its cost) is the one read.
    """
    metrics.register_gauge(
        "lykta_reply_code_derivations_running",
        "Reply-code derivations (Argon2id) running now in this process.",
        lambda: deriver().running,
    )
    metrics.register_gauge(
        "lykta_reply_code_derivations_waiting",
        "Reply-code derivations waiting for a place to run.",
        lambda: deriver().queued,
    )
    metrics.register_counter(
        "lykta_reply_code_derivations_refused_total",
        "Reply-code derivations refused because too many were waiting (the resident is asked to retry).",
        lambda: deriver().refused,
    )
