"""A real `lykta serve` on a loopback port with the demo network, and Debian's chromium driven by Playwright.

Both are session-scoped: the server is started once (`lykta init`, `lykta demo`, `lykta serve`) with a fresh
data directory and the production Argon2id parameters, and every browser test talks to it over HTTP as a
person would. `playwright install` is never needed: the system chromium is launched by path.

Screenshots and axe reports go to LYKTA_ARTIFACTS_DIR (default `test-artifacts/` at the repository root).
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from tests.browser.pages import LiveServer, RequestGuard
from tests.live_server import Server, lykta_environment, set_up_instance

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LYKTA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("LYKTA_ARTIFACTS_DIR", REPO_ROOT / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[LiveServer]:
    """`lykta serve` (tests/live_server.py) with a fresh data directory and the demo network, stopped after
    the session."""
    workdir = tmp_path_factory.mktemp("lykta-live")
    environ = lykta_environment(workdir / "var")
    accounts = set_up_instance(environ, workdir)
    # One log per pytest-xdist worker: each worker runs a server of its own.
    log_path = artifacts_dir / f"server-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.log"
    # One worker, as `lykta serve` defaults to: it sizes the Argon2id concurrency from the cores itself.
    server = Server(environ, log_path, cwd=workdir)
    try:
        server.start()
        yield LiveServer(base_url=server.url, accounts=accounts, data_dir=workdir / "var", log_path=log_path)
    finally:
        server.stop()
    # A page that hid a server error behind a friendly message would pass the test that saw it.
    assert "Traceback" not in server.output(), f"the server logged an error, see {log_path}"


# Package scope, not session: Playwright's sync API keeps an event loop running in the main thread while it
# is open, and any later test of the same worker that calls asyncio.run() would fail ("cannot be called
# from a running event loop"). pytest closes it when a worker leaves tests/browser.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


class ContextFactory:
    """Opens browser contexts on the live server, each with a RequestGuard; `close_all` closes them and
    fails the test if any page asked for anything but the server under test."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser, self.server = browser, server
        self.opened: list[tuple[BrowserContext, RequestGuard]] = []

    def __call__(self, *, javascript: bool = False, **options: Any) -> BrowserContext:
        context = self.browser.new_context(
            base_url=self.server.base_url,
            java_script_enabled=javascript,
            viewport={"width": 1024, "height": 768},
            **options,
        )
        self.opened.append((context, RequestGuard(context, self.server.base_url)))
        return context

    def close_all(self, *, failure_dir: Path | None = None) -> None:
        for number, (context, _guard) in enumerate(self.opened):
            if failure_dir is not None:  # what the browser showed when the test failed, for the CI artifacts
                failure_dir.mkdir(parents=True, exist_ok=True)
                for page_number, page in enumerate(context.pages):
                    stem = failure_dir / f"context{number}-page{page_number}"
                    page.screenshot(path=stem.with_suffix(".png"), full_page=True)
                    stem.with_suffix(".html").write_text(page.content())
            context.close()
        for _context, guard in self.opened:
            guard.assert_only_loopback()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test itself failed, so `new_context` can keep what the browser showed."""
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def new_context(
    request: pytest.FixtureRequest, browser: Browser, live_server: LiveServer, artifacts_dir: Path
) -> Iterator[ContextFactory]:
    factory = ContextFactory(browser, live_server)
    yield factory
    failed = request.node.stash.get(_FAILED, False)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    factory.close_all(failure_dir=artifacts_dir / "failures" / name if failed else None)


@pytest.fixture
def resident_context(new_context: ContextFactory) -> BrowserContext:
    """A browser with JavaScript off, as many residents (Tor Browser "Safest") use it."""
    return new_context(javascript=False)


@pytest.fixture
def audit_context(new_context: ContextFactory) -> BrowserContext:
    """JavaScript on, and the page's CSP bypassed, only so the test can inject axe-core into the page; the
    pages themselves ship no script."""
    return new_context(javascript=True, bypass_csp=True)
