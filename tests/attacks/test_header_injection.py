"""No value a client sends reaches a response header unescaped (issue 6, item 4).

Percent-encoded CR, LF and NUL, and characters a header cannot carry, in every place a value could travel
into a header: the path (the Onion-Location header repeats it), path parameters that redirects are built
from (language, tip id, desk id), query parameters (`lang`, `next`, `done`), cookies (the language cookies,
Python's cookie parser even decodes octal escapes such as \\015\\012), and file names on download (tested
with the other file-name tricks in test_hostile_names_and_markup.py). Every response must be a normal one
(no 500: a header the server cannot send is an error page for everyone who follows the link) with no
control character in any header and no header the client wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from crypto import Argon2Params
from portal.settings import Settings
from tests.portal.submission.browser import app_client
from tests.portal.triage.test_staff_flow import account, staff_login

ONION = "lyktaexampleonionaddressxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion"
INJECTIONS = ["%0d%0aX-Injected:%201", "%0aX-Injected:1", "%00", "%E2%80%AE", "%C3%A5", "%FF"]


@pytest.fixture
def onion_client(
    settings: Settings, fast_argon2: Argon2Params, demo_accounts: dict[str, Any]
) -> Iterator[TestClient]:
    with app_client(settings, fast_argon2, raise_server_exceptions=False, onion_address=ONION) as (client, _):
        yield client


def assert_clean(response: Any, where: str) -> None:
    assert response.status_code < 500, (where, response.status_code)
    # Every answer, even to a path no route can match (a decoded newline), carries the site's headers.
    assert response.headers.get("referrer-policy") == "no-referrer", where
    for name, value in response.headers.raw:
        assert name.lower() != b"x-injected", where
        assert not any(byte in value for byte in b"\r\n\x00"), (where, name, value)


def probes(injection: str) -> Iterator[str]:
    yield f"/sv/{injection}"
    yield f"/sv/tip{injection}"
    yield f"/{injection}/tip"
    yield f"/sv/followup?next=/{injection}&lang={injection}"
    yield f"/staff/login?lang={injection}&next={injection}"
    yield f"/staff/tips/{injection}"
    yield f"/staff/tips/{'a' * 32}{injection}/"
    yield f"/staff/desks/1{injection}/canned?done={injection}"
    yield f"/staff/admin/routing?municipality={injection}&done={injection}"
    yield f"/static/{injection}"


def test_no_client_value_reaches_a_header(onion_client: TestClient, demo_accounts: dict[str, Any]) -> None:
    staff = TestClient(onion_client.app, base_url="http://testserver")
    staff_login(staff, account(demo_accounts, role="administrator"))
    for browser in (onion_client, staff):
        for injection in INJECTIONS:
            for path in probes(injection):
                assert_clean(browser.get(path, follow_redirects=False), path)
                assert_clean(
                    browser.post(path, data={"next": injection}, follow_redirects=False), f"POST {path}"
                )
    ordinary = onion_client.get("/sv/tip")
    assert ordinary.headers["onion-location"] == f"http://{ONION}/sv/tip"
    assert "onion-location" not in onion_client.get("/staff/login").headers  # the back office stays inside


@pytest.mark.parametrize("cookie", ["lykta_lang", "lykta_staff_lang", "lykta_csrf"])
def test_no_cookie_value_reaches_a_header(onion_client: TestClient, cookie: str) -> None:
    for value in ['"sv\\015\\012X-Injected: 1"', '"\\000"', "sv%0d%0aX-Injected:1"]:
        onion_client.cookies.clear()
        onion_client.cookies.set(cookie, value)
        for path in ("/", "/sv/", "/sv/tip", "/staff/login", "/staff/"):
            assert_clean(onion_client.get(path, follow_redirects=False), f"{cookie}={value} {path}")
