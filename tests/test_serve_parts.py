"""`lykta serve --part`: the resident side alone holds no back office, and the back office alone no resident
pages, so the onion service and the internet can be pointed at a process that has no /staff/ at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.settings import Settings
from portal.web import Services
from tests.live_server import Server, lykta_environment, set_up_instance

RESIDENT_PAGES = ["/sv/", "/sv/tip", "/ar/followup", "/healthz"]
STAFF_PAGES = ["/staff/login", "/staff/healthz"]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, Server]]:
    environ = lykta_environment(tmp_path / "data")
    set_up_instance(environ, tmp_path)
    started = {
        part: Server(environ, tmp_path / f"{part}.log", cwd=tmp_path, part=part)
        for part in ("resident", "staff")
    }
    try:
        for server in started.values():
            server.start()
        yield started
    finally:
        for server in started.values():
            server.stop()


def _status(server: Server, path: str) -> int:
    return httpx.get(f"{server.url}{path}", follow_redirects=False, timeout=30).status_code


def test_each_part_serves_only_its_own_pages(servers: dict[str, Server]) -> None:
    resident, staff = servers["resident"], servers["staff"]
    for path in RESIDENT_PAGES:
        assert _status(resident, path) == 200, path
    for path in STAFF_PAGES:
        assert _status(resident, path) == 404, path
        assert _status(staff, path) == 200, path
    for path in RESIDENT_PAGES:
        assert _status(staff, path) == 404, path
    # The back office's pages keep their style sheet and fonts.
    assert _status(staff, "/static/css/lykta.css") == 200


def test_create_app_refuses_an_unknown_part(settings: Settings, services: Services) -> None:
    with pytest.raises(ValueError, match="parts"):
        create_app(settings, services=services, parts=("resident", "admin"))
    with pytest.raises(ValueError, match="parts"):
        create_app(settings, services=services, parts=())


def test_a_part_alone_keeps_the_security_headers(settings: Settings, services: Services) -> None:
    with TestClient(create_app(settings, services=services, parts=("resident",))) as client:
        refused = client.get("/staff/login")
    assert refused.status_code == 404
    assert refused.headers["referrer-policy"] == "no-referrer"
    assert "default-src" in refused.headers["content-security-policy"]
