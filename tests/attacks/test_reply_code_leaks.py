"""A reply code never leaves the page it is shown on and the form it is typed into (issue 6, item 4).

A whole flow against a real `lykta serve`: a resident sends a tip and finishes, follows it up, answers and
logs out; an officer reads and answers; the resident reads the answer. Then: the code is in no URL the
browser asked for or was sent to, in no link or form action of any page, in no GET form, on no page without
`Referrer-Policy: no-referrer` (so a link followed from the mailbox gives nothing away), and in no line the
server wrote to stdout or stderr (its whole log), in any spacing. The case number may appear: it names the
tip, it opens nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.attacks.live import LiveLykta
from tests.portal.submission.browser import ANSWERS, form_token, log_in, send_tip

pytestmark = pytest.mark.live_server
OFFICER_ANSWER = "Tack, vi tittar på det. Vilken tid brukar bilen komma?"
TIPSTER_ANSWER = "Oftast runt klockan 22."


class Recorder:
    """Every response a browser received, redirects included."""

    def __init__(self) -> None:
        self.responses: list[httpx.Response] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.responses.append(response)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def recorded_browser(live: LiveLykta, recorder: Recorder) -> httpx.Client:
    return httpx.Client(
        base_url=live.url, follow_redirects=True, timeout=60, event_hooks={"response": [recorder]}
    )


def spellings(code: str) -> Iterator[str]:
    """The code as digits, grouped, and split by anything: searched in text with separators removed."""
    digits = re.sub(r"\D", "", code)
    assert len(digits) == 24
    yield digits
    yield " ".join(digits[i : i + 4] for i in range(0, 24, 4))
    yield "-".join(digits[i : i + 4] for i in range(0, 24, 4))


def contains_code(text: str, code: str) -> bool:
    squeezed = re.sub(r"[\s\-\u00a0\u200e\u200f_.+]", "", text.replace("%20", ""))
    return any(spelling in text for spelling in spellings(code)) or re.sub(r"\D", "", code) in squeezed


def test_a_reply_code_is_in_no_url_link_referer_or_log(live: LiveLykta, recorder: Recorder) -> None:
    live.let_the_rate_window_pass()
    log_start = len(live.output())
    with recorded_browser(live, recorder) as resident:
        code, case_number = send_tip(
            resident, "sv", {**ANSWERS, "category": "other"}, [("b.bin", b"B" * 3000)]
        )
        page = recorder.responses[-1].text
        assert contains_code(page, code)  # the search finds it where it must be: the confirmation page
        done = resident.post(
            "/sv/tip/done",
            data={
                "csrf": form_token(page, "/sv/tip/done"),
                "reply_code": code,
                "case_number": case_number,
                "saved": "yes",
            },
        )
        assert done.status_code == 200
        mailbox = log_in(resident, "sv", code)
        assert mailbox.url.path == "/sv/mailbox"
        answered = resident.post(
            "/sv/mailbox/reply",
            data={"message": TIPSTER_ANSWER, "csrf": form_token(mailbox.text, "/sv/mailbox/reply")},
            files={"files": ("", b"", "application/octet-stream")},
        )
        assert answered.status_code == 200 and TIPSTER_ANSWER in answered.text
        resident.post("/sv/logout", data={"csrf": form_token(answered.text, "/sv/logout")})

    officer_account = next(a for a in live.accounts["accounts"] if a["username"].startswith("sara.officer"))
    with recorded_browser(live, recorder) as officer:
        inbox = live.staff_login(officer, officer_account)
        assert inbox.status_code == 200 and case_number in inbox.text
        link = re.search(r'href="(/staff/tips/[0-9a-f]{32})"', inbox.text)
        assert link
        tip = officer.get(link.group(1))
        assert TIPSTER_ANSWER in tip.text
        officer.post(
            f"{link.group(1)}/reply",
            data={"text": OFFICER_ANSWER, "csrf": form_token(tip.text, f"{link.group(1)}/reply")},
        )
        officer.post("/staff/logout", data={"csrf": form_token(tip.text, "/staff/logout")})

    with recorded_browser(live, recorder) as resident:
        mailbox = log_in(resident, "sv", code)
        assert OFFICER_ANSWER in mailbox.text
        resident.get("/sv/no-such-page")  # an error page too

    assert len(recorder.responses) > 20
    for response in recorder.responses:
        where = f"{response.request.method} {response.request.url.path}"
        # In no URL asked for, redirected to, or carried by a Referer the browser would send from here.
        assert not contains_code(str(response.request.url), code), where
        assert not contains_code(response.headers.get("location", ""), code), where
        assert response.headers.get("referrer-policy") == "no-referrer", where
        html = response.text
        for attribute in re.findall(r'(?:href|src|action|formaction)="([^"]*)"', html):
            assert not contains_code(attribute, code), (where, attribute)
        # Any form that carries the code (typed or hidden) posts it.
        for form in re.findall(r"<form\b.*?</form>", html, re.S):
            if 'name="reply_code"' in form:
                assert re.search(r'<form[^>]*method="post"', form), (where, form[:200])
        for meta in re.findall(r"<meta[^>]*>", html):
            assert "referrer" not in meta or "no-referrer" in meta, (where, meta)

    log = live.output()[log_start:]
    assert "POST /{lang:lang}/followup" in log  # the access log is in the captured output ...
    assert not contains_code(log, code)  # ... and the code is nowhere in it, in any spelling
