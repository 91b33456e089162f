"""What counting a request costs: RequestMetrics around a trivial ASGI app, against the app alone.

    python benchmarks/metrics_bench.py      # from the repository root, in the project's venv; ~5 s

Prints the median time per call of each, over many calls, and the difference: the overhead every request
pays for metrics. It also times one render of the page with 60 routes x 4 status classes filled in.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from starlette.routing import Route

from portal.metrics import Metrics, RequestMetrics

CALLS = 20_000
ROUNDS = 7


async def bare_app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    scope["route"] = ROUTE
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]


async def ignore(_message: object) -> None:
    return None


async def receive() -> dict[str, object]:
    return {"type": "http.request", "body": b""}


ROUTE = Route("/tips/{tip_id:str}", endpoint=lambda r: None)


async def per_call(app: object) -> float:
    scope = {"type": "http", "method": "GET", "path": "/tips/x"}
    started = time.perf_counter()
    for _ in range(CALLS):
        await app(dict(scope), receive, ignore)  # type: ignore[operator]
    return (time.perf_counter() - started) / CALLS


async def main() -> None:
    metrics = Metrics()
    metered = RequestMetrics(bare_app, metrics=metrics, app_name="staff")  # type: ignore[arg-type]
    bare, wrapped = [], []
    for _ in range(ROUNDS):  # alternate, so that noise hits both
        bare.append(await per_call(bare_app))
        wrapped.append(await per_call(metered))
    b, w = statistics.median(bare) * 1e6, statistics.median(wrapped) * 1e6
    print(f"app alone          {b:7.2f} us per request")
    print(f"with RequestMetrics {w:6.2f} us per request")
    print(f"overhead           {w - b:7.2f} us per request")
    for i in range(60):
        for status in (200, 303, 404, 500):
            metrics.request_started("staff")
            metrics.request_finished("staff", "GET", f"/route/{i}", status, 0.01 * (i % 7))
    started = time.perf_counter()
    text = metrics.render_requests() + metrics.render_gauges()
    print(f"render, 60 routes  {(time.perf_counter() - started) * 1000:7.2f} ms, {len(text) // 1024} KiB")


if __name__ == "__main__":
    asyncio.run(main())
