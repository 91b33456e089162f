"""Oversized and slow requests against a real `lykta serve` (issue 6, item 4).

A body over the limit (declared, or chunked with no length), a head over h11's limit, a request head sent a
byte a second ("slowloris") and a body that stops half-way: the server answers everyone else meanwhile,
drops the slow clients (head deadline in portal.protocol, body idle time in portal.middleware.BodyLimit),
and stores nothing half-written. Bounds are generous multiples of the configured timeouts; nothing here
asserts how fast anything is.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine

from portal.protocol import HEAD_TIMEOUT_SECONDS
from tests.attacks.live import BODY_IDLE_SECONDS, MAX_UPLOAD_BYTES, LiveLykta
from tests.portal.submission.browser import ANSWERS, form_token, row_counts

pytestmark = pytest.mark.live_server
MIB = 1024 * 1024
BOUNDARY = "attackboundary"


def counts(live: LiveLykta) -> dict[str, int]:
    engine = create_engine(live.database_url)
    try:
        return row_counts(engine)
    finally:
        engine.dispose()


def stored(live: LiveLykta) -> dict[str, int]:
    """What residents' requests leave behind, sessions aside (a tip's rows, its messages, files, chunks)."""
    return {name: n for name, n in counts(live).items() if name != "session"}


def send_token(browser: httpx.Client) -> str:
    reviewed = browser.post(
        "/sv/tip", data={**ANSWERS, "csrf": form_token(browser.get("/sv/tip").text, "/sv/tip")}
    )
    assert reviewed.status_code == 200, reviewed.text
    return form_token(reviewed.text, "/sv/tip/send")


def multipart_head(token: str) -> bytes:
    fields = {**ANSWERS, "csrf": token}
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
    )
    return b"".join(parts)


def multipart_tail() -> bytes:
    return (
        f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="confirm"\r\n\r\nyes\r\n--{BOUNDARY}--\r\n'
    ).encode()


def cookie_header(browser: httpx.Client) -> str:
    return "; ".join(f"{name}={value}" for name, value in browser.cookies.items())


def raw_connection(live: LiveLykta) -> socket.socket:
    return socket.create_connection(("127.0.0.1", live.port), timeout=5)


def closed_by_server(conn: socket.socket, *, within: float, trickle: bytes = b"") -> bool:
    """Keep sending `trickle` a byte a second (if given) until the server closes the connection or `within`
    seconds pass; whether it closed it. Whatever the server answered before closing is read and dropped."""
    deadline = time.monotonic() + within
    conn.settimeout(1)
    position = 0
    while time.monotonic() < deadline:
        try:
            if position < len(trickle):
                conn.sendall(trickle[position : position + 1])
                position += 1
            if conn.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def assert_serves_others(live: LiveLykta) -> None:
    with live.browser() as other:
        for path in ("/sv/", "/sv/followup", "/staff/login"):
            assert other.get(path).status_code == 200, path


@pytest.fixture
def nothing_stored(live: LiveLykta) -> Iterator[None]:
    before = stored(live)
    yield
    assert stored(live) == before
    assert live.alive(), live.output()


def test_a_body_over_the_limit_with_a_length_is_refused(live: LiveLykta, nothing_stored: None) -> None:
    with live.browser() as browser:
        token = send_token(browser)
        body = multipart_head(token) + b"x" * (MAX_UPLOAD_BYTES + 2 * MIB) + multipart_tail()
        response = browser.post(
            "/sv/tip/send",
            content=body,
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
    assert response.status_code == 413
    assert 'id="reply-code"' not in response.text
    assert_serves_others(live)


def test_a_chunked_body_over_the_limit_is_refused(live: LiveLykta, nothing_stored: None) -> None:
    with live.browser() as browser:
        token = send_token(browser)

        def chunks() -> Iterator[bytes]:  # no Content-Length: httpx sends it chunked
            yield multipart_head(token)
            for _ in range(MAX_UPLOAD_BYTES // MIB + 3):
                yield b"y" * MIB
            yield multipart_tail()

        response = browser.post(
            "/sv/tip/send",
            content=chunks(),
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert 'id="reply-code"' not in response.text
    assert_serves_others(live)


def test_a_small_form_with_a_huge_body_is_refused(live: LiveLykta, nothing_stored: None) -> None:
    with live.browser() as browser:
        token = form_token(browser.get("/sv/followup").text, "/sv/followup")
        body = f"csrf={token}&reply_code=".encode() + b"1" * (8 * MIB)
        response = browser.post(
            "/sv/followup", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 400
        staff = browser.post(
            "/staff/login",
            content=b"username=" + b"a" * (8 * MIB),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert staff.status_code == 400
    assert_serves_others(live)


def test_an_oversized_request_head_is_refused(live: LiveLykta) -> None:
    # h11 buffers at most 16 KiB of an incomplete head (portal.cli); a head that arrives whole in one read
    # may be longer (it costs no more than its own size), so the test sends heads far over any read.
    for extra in (b"X-Padding: " + b"p" * (2 * MIB) + b"\r\n", b"X-H: vvvvvvvvvvvvvvvvvvvv\r\n" * 80_000):
        conn = raw_connection(live)
        try:
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                conn.sendall(b"GET /sv/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n")
            answer = conn.recv(65536)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer[:100]
            assert closed_by_server(conn, within=10)
        finally:
            conn.close()
    assert_serves_others(live)


def test_a_slowloris_is_dropped_while_others_are_served(live: LiveLykta) -> None:
    slow = [raw_connection(live) for _ in range(20)]
    head = b"GET /sv/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n" + b"X-a: b\r\n" * 100 + b"\r\n"
    for conn in slow:
        conn.sendall(head[:10])
    # One more asks for a page first, then starts its next head slowly on the same (keep-alive) connection:
    # the next head gets the same deadline.
    kept_alive = raw_connection(live)
    kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        assert_serves_others(live)  # twenty half-open heads hold nothing up
        # The first keeps trickling a byte a second; the server closes it once the head deadline passes,
        # long before the head is complete.
        assert closed_by_server(slow[0], within=3 * HEAD_TIMEOUT_SECONDS, trickle=head[10:])
        # The silent ones are gone too, and so is the slow second head.
        assert all(closed_by_server(conn, within=5) for conn in slow[1:])
        assert closed_by_server(kept_alive, within=HEAD_TIMEOUT_SECONDS, trickle=b"GET /healthz HTTP/1.1\r\n")
        assert_serves_others(live)
    finally:
        for conn in [*slow, kept_alive]:
            conn.close()


def test_a_slow_body_is_dropped_and_stores_nothing(live: LiveLykta, nothing_stored: None) -> None:
    with live.browser() as browser:
        token = send_token(browser)
        cookies = cookie_header(browser)
    head = multipart_head(token)
    length = len(head) + 512 * 1024 + len(multipart_tail())
    conn = raw_connection(live)
    try:
        conn.sendall(
            (
                "POST /sv/tip/send HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Content-Length: {length}\r\nCookie: {cookies}\r\n\r\n"
            ).encode()
            + head
            + b"z" * (64 * 1024)  # a good start: the tip is being encrypted ...
        )
        # ... then the client goes quiet: the server gives up on it, answers and closes the connection.
        assert closed_by_server(conn, within=6 * BODY_IDLE_SECONDS + 10)
        assert_serves_others(live)
    finally:
        conn.close()
