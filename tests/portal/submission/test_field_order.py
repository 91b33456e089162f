"""A browser sends a form's parts in the order of the page. On the review page the confirmation box sits
after the file input, next to the send button, so it arrives after the files; found by the browser tests
(tests/browser): the tip was refused as unconfirmed although the box was ticked."""

from __future__ import annotations

import io

from starlette.testclient import TestClient

from portal.web import Services
from tests.portal.submission.browser import ANSWERS, element_text, form_token, review, row_counts


def _send_in_page_order(client: TestClient, *, confirm: bool) -> tuple[int, str]:
    reviewed = review(client, "sv", ANSWERS)
    fields = {**ANSWERS, "csrf": form_token(reviewed.text, "/sv/tip/send")}
    parts: list[tuple[str, tuple[str | None, io.BytesIO | bytes, str | None]]] = [
        (name, (None, value.encode(), None)) for name, value in fields.items()
    ]
    parts.append(("files", ("foto.jpg", io.BytesIO(b"\xff" * 5000), "image/jpeg")))
    if confirm:
        parts.append(("confirm", (None, b"yes", None)))  # after the file, where the page puts it
    sent = client.post("/sv/tip/send", files=parts)
    return sent.status_code, sent.text


def test_the_confirmation_may_follow_the_files(client: TestClient) -> None:
    status, page = _send_in_page_order(client, confirm=True)
    assert status == 200, page
    assert element_text(page, "reply-code")


def test_without_the_confirmation_nothing_is_stored(client: TestClient, services: Services) -> None:
    before = row_counts(services.engine)
    status, page = _send_in_page_order(client, confirm=False)
    assert status == 400
    assert 'id="reply-code"' not in page
    assert row_counts(services.engine) == before
