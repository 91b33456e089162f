"""Who reaches the administration: every admin route, GET and POST, for every role and for a visitor.

Only administrators get pages; officers, desk leads and analysts get the staff app's plain 404, even with a
valid form token, and change nothing; a logged-out visitor is sent to the login page. Every POST refuses a
missing, forged, borrowed or other-purpose CSRF token with a 400, keeps what was typed, and changes nothing.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from portal.admin.routes import ROUTES
from portal.admin.web import ERROR_EXPIRED
from portal.web import Services
from tests.portal.admin.pages import ids, log_in_as, mint_token, said, second_browser, snapshot, visible_text

NON_ADMINISTRATORS = ["officer", "desk-lead", "analyst"]


@dataclasses.dataclass(frozen=True)
class Call:
    method: str
    template: str  # the route's path, as in portal.admin.routes
    path: str
    purpose: str = ""  # the CSRF purpose of a POST
    fields: dict[str, str] = dataclasses.field(default_factory=dict)


def calls(known: dict[str, int]) -> list[Call]:
    """Every admin route with a request an administrator could really make (valid form data).

    Ordered so that each POST, made by an administrator in turn, is a real change: disable before enable.
    """
    officer, desk, other_desk = known["officer"], known["officer_desk"], known["other_desk"]
    staff_path = f"/staff/admin/staff/{officer}"
    return [
        Call("GET", "/admin", "/staff/admin"),
        Call("GET", "/admin/", "/staff/admin/"),
        Call("GET", "/admin/organisations", "/staff/admin/organisations"),
        Call("GET", "/admin/municipalities", "/staff/admin/municipalities"),
        Call("GET", "/admin/desks", "/staff/admin/desks"),
        Call("GET", "/admin/desks/{desk_id:int}", f"/staff/admin/desks/{desk}"),
        Call("GET", "/admin/routing", "/staff/admin/routing?municipality=nykvarn"),
        Call("GET", "/admin/staff", "/staff/admin/staff"),
        Call("GET", "/admin/staff/{staff_id:int}", staff_path),
        Call(
            "POST",
            "/admin/organisations",
            "/staff/admin/organisations",
            "admin-organisation",
            {"code": "matrix-org", "name": "Matrix organisation", "kind": "agency"},
        ),
        Call(
            "POST",
            "/admin/municipalities",
            "/staff/admin/municipalities",
            "admin-municipality",
            {"code": "matrix-kommun", "name": "Matrix kommun"},
        ),
        Call(
            "POST",
            "/admin/desks",
            "/staff/admin/desks",
            "admin-desk",
            {
                "organisation": str(known["organisation"]),
                "code": "matrix-desk",
                "name": "Matrix desk",
                "retention_days": "365",
            },
        ),
        Call(
            "POST",
            "/admin/desks/{desk_id:int}",
            f"/staff/admin/desks/{desk}",
            "admin-desk-edit",
            {"name": "Renamed desk", "retention_days": "400", "auto_acknowledge": "yes"},
        ),
        Call(
            "POST",
            "/admin/routing",
            "/staff/admin/routing",
            "admin-routing",
            {"municipality": "nykvarn", f"route:tax:{other_desk}": "primary"},
        ),
        Call(
            "POST",
            "/admin/staff",
            "/staff/admin/staff",
            "admin-invite",
            {"username": "matrix.person", "role": "officer", "desks": str(other_desk)},
        ),
        Call("POST", "/admin/staff/{staff_id:int}/disable", f"{staff_path}/disable", "admin-disable"),
        Call("POST", "/admin/staff/{staff_id:int}/enable", f"{staff_path}/enable", "admin-enable"),
        Call(
            "POST", "/admin/staff/{staff_id:int}/reset-totp", f"{staff_path}/reset-totp", "admin-reset-totp"
        ),
        Call(
            "POST",
            "/admin/staff/{staff_id:int}/role",
            f"{staff_path}/role",
            "admin-role",
            {"role": "desk-lead"},
        ),
        Call(
            "POST",
            "/admin/staff/{staff_id:int}/desks/add",
            f"{staff_path}/desks/add",
            "admin-member",
            {"desk": str(other_desk)},
        ),
        Call(
            "POST",
            "/admin/staff/{staff_id:int}/desks/remove",
            f"{staff_path}/desks/remove",
            "admin-member",
            {"desk": str(desk)},
        ),
    ]


# Addresses under /staff/admin/ that are no page: they must answer exactly like the real ones do.
PROBES = [
    ("GET", "/staff/admin/no-such-page"),
    ("GET", "/staff/admin/desks/"),
    ("GET", "/staff/admin/staff/1/disable"),
    ("PUT", "/staff/admin/desks"),
    ("DELETE", "/staff/admin/staff/1"),
]


def _request(client: TestClient, services: Services, call: Call) -> Any:
    if call.method == "GET":
        return client.get(call.path, follow_redirects=False)
    fields = {**call.fields, "csrf": mint_token(client, services, call.purpose)}
    return client.post(call.path, data=fields, follow_redirects=False)


def _without_tokens(page: str) -> str:
    return re.sub(r'name="csrf" value="[^"]*"', "", page)


def test_the_matrix_covers_every_admin_route(services: Services) -> None:
    routed = {
        (method, route.path)
        for route in ROUTES
        if isinstance(route, Route) and "{rest:path}" not in route.path
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert {(call.method, call.template) for call in calls(ids(services))} == routed


def test_a_visitor_is_sent_to_the_login_page(client: TestClient, services: Services) -> None:
    client.get("/staff/login")  # a CSRF cookie, so the POSTs below carry perfect tokens
    for call in calls(ids(services)):
        before = snapshot(services.engine)
        response = _request(client, services, call)
        assert (response.status_code, response.headers.get("location")) == (303, "/staff/login"), call
        assert snapshot(services.engine) == before, call


@pytest.mark.parametrize("role", NON_ADMINISTRATORS)
def test_other_roles_get_the_plain_not_found_page(
    client: TestClient, services: Services, demo_accounts: dict[str, Any], role: str
) -> None:
    log_in_as(client, demo_accounts, role)
    unknown = client.get("/staff/no-such-page")
    assert unknown.status_code == 404
    for call in calls(ids(services)):
        before = snapshot(services.engine)
        response = _request(client, services, call)
        assert response.status_code == 404, call
        # The same page, byte for byte, as an address that does not exist: nothing says "admin".
        assert _without_tokens(response.text) == _without_tokens(unknown.text), call
        assert snapshot(services.engine) == before, call
    for method, path in PROBES:
        probe = client.request(method, path, follow_redirects=False)
        assert (probe.status_code, _without_tokens(probe.text)) == (404, _without_tokens(unknown.text))


def test_administrators_reach_every_admin_route(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    log_in_as(client, demo_accounts, "administrator")
    for call in calls(ids(services)):
        before = snapshot(services.engine)
        response = _request(client, services, call)
        if call.method == "GET":
            assert response.status_code == 200, (call, response.text)
        else:
            # A saved form redirects to its page; the two one-time results (a recovery key, an enrolment
            # link) are the answer to the POST itself.
            assert response.status_code in (200, 303), (call, response.text)
            assert snapshot(services.engine) != before, call
    for method, path in PROBES:
        assert client.request(method, path, follow_redirects=False).status_code == 404


def _bad_tokens(client: TestClient, services: Services, call: Call) -> dict[str, str | None]:
    stranger = second_browser(client)
    stranger.get("/staff/login")
    return {
        "missing": None,
        "empty": "",
        "forged": "eyJmb3JnZWQiOnRydWV9.ZZZZZZ.forgedsignatureforgedsignature",
        "other purpose": mint_token(client, services, "logout"),
        "other browser": mint_token(stranger, services, call.purpose),
    }


def test_every_post_refuses_a_bad_csrf_token_and_changes_nothing(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    log_in_as(client, demo_accounts, "administrator")
    for call in calls(ids(services)):
        if call.method != "POST":
            continue
        for what, token in _bad_tokens(client, services, call).items():
            before = snapshot(services.engine)
            fields = dict(call.fields) if token is None else {**call.fields, "csrf": token}
            response = client.post(call.path, data=fields, follow_redirects=False)
            assert response.status_code == 400, (call, what)
            assert said(ERROR_EXPIRED) in visible_text(response), (call, what)
            for name in ("name", "username"):
                if name in call.fields:  # what was typed is still in the form
                    assert f'value="{call.fields[name]}"' in response.text, (call, what)
            assert snapshot(services.engine) == before, (call, what)
        # The same request with the page's own token goes through: the data above was valid.
        before = snapshot(services.engine)
        response = _request(client, services, call)
        assert response.status_code in (200, 303), call
        assert snapshot(services.engine) != before, call
