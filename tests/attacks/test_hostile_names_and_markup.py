"""Script and HTML in every field and file name stay text everywhere; tricky file names stay harmless in the
download header and in the export (issue 6, item 4).

A resident types markup into every answer and sends files named with path tricks (`../../etc/passwd`,
`C:\\x`), a NUL, a right-to-left override (U+202E, which makes `exe.jpg` of `gpj.exe`), a very long name and
markup; an officer answers with markup, records a legal hold and a hand-over basis with markup. Every page
both sides see is then parsed: not one element, event handler or `javascript:` URL came from what was
typed, on the review and confirmation pages, the mailbox, the inbox, the tip, its print view. The download
header of every file is one clean header, and the names inside the age export are plain names under
`files/`. Inert markup on the admin pages and the canned replies has its own tests (tests/portal/admin,
tests/portal/triage/test_canned_replies.py).
"""

from __future__ import annotations

import io
import re
import tarfile
import unicodedata
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.testclient import TestClient

import crypto
from portal.formdata import MAX_FILE_NAME
from portal.web import Services
from tests.portal.accounts.people import PAX_DESK
from tests.portal.submission.browser import ANSWERS, element_text, form_token, log_in, row_counts
from tests.portal.triage.test_staff_flow import account, staff_login

HOSTILE = (
    '<script>alert(1)</script><img src=x onerror=alert(2)><svg onload=alert(3)><iframe src="//e.x">'
    '"\'><a href="javascript:alert(4)">x</a><meta http-equiv="refresh" content="0;url=//e.x">{{ 7*7 }}'
)
FILE_NAMES: list[bytes] = [
    b"../../etc/passwd",
    b"C:\\x\\evil.txt",
    b"..\\..\\..\\..\\windows\\evil.bat",
    b"nul\x00byte.txt",
    "foto\u202egpj.exe".encode(),
    "å".encode() * 2000 + b".txt",  # long, but in a header a browser could send: cut to 255 characters
    HOSTILE.replace('"', "'").encode(),
    "/abs/\u200fname\u2066.txt".encode(),
]
BOUNDARY = "hostileboundary"
BIDI_AND_CONTROL = {"Cc", "Cf", "Zl", "Zp"}


class Elements(HTMLParser):
    """Every start tag and its attributes, as a browser would build them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_inert(html: str, where: str) -> None:
    parser = Elements()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in {"script", "iframe", "object", "embed", "base", "frame"}, (where, tag)
        assert not (tag == "meta" and any(k == "http-equiv" for k, _ in attrs)), (where, attrs)
        for name, value in attrs:
            assert not name.startswith("on"), (where, tag, name)
            if name in {"href", "src", "action", "formaction", "xlink:href"} and value:
                assert not value.strip().lower().startswith(("javascript:", "data:text")), (where, value)


def multipart(fields: dict[str, str], names: list[bytes]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    for index, name in enumerate(names):
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="'.encode()
            + name
            + b'"\r\nContent-Type: text/html\r\n\r\n'
            + f"file {index}: <script>alert(5)</script>".encode()
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def assert_clean_name(name: str, where: str) -> None:
    assert name and len(name) <= MAX_FILE_NAME, (where, name)
    assert "/" not in name and "\\" not in name and not name.startswith("."), (where, name)
    assert not any(unicodedata.category(c) in BIDI_AND_CONTROL for c in name), (where, ascii(name))


def assert_one_clean_header(response: httpx.Response) -> str:
    values = response.headers.get_list("content-disposition")
    assert len(values) == 1, values
    value = values[0]
    assert "\r" not in value and "\n" not in value and "\x00" not in value
    assert "x-injected" not in {k.lower() for k in response.headers}
    match = re.fullmatch(
        r"attachment; filename=\"([^\"\\]*)\"; filename\*=UTF-8''([A-Za-z0-9%._~!$&'()*+,=:@-]*)", value
    )
    assert match, value
    assert_clean_name(match.group(1), "ascii filename")
    assert_clean_name(unquote(match.group(2)), "utf-8 filename")
    return unquote(match.group(2))


def test_markup_and_tricky_names_are_inert_everywhere(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    answers = {
        **ANSWERS,
        "category": "other",
        **dict.fromkeys(("what", "when", "where", "who", "contact"), HOSTILE),
    }
    form = client.get("/sv/tip")
    review = client.post("/sv/tip", data={**answers, "csrf": form_token(form.text, "/sv/tip")})
    assert review.status_code == 200
    assert_inert(review.text, "review")
    body = multipart(
        {**answers, "csrf": form_token(review.text, "/sv/tip/send"), "confirm": "yes"}, FILE_NAMES
    )
    sent = client.post(
        "/sv/tip/send", content=body, headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    )
    assert sent.status_code == 200, sent.text
    assert_inert(sent.text, "confirmation")
    code, case_number = element_text(sent.text, "reply-code"), element_text(sent.text, "case-number")

    officer = account(demo_accounts, desk=PAX_DESK, role="officer")
    staff = TestClient(client.app, base_url="http://testserver")
    inbox = staff_login(staff, officer)
    assert_inert(inbox.text, "inbox")
    tip_path = re.search(r'href="(/staff/tips/[0-9a-f]{32})"', inbox.text)
    assert tip_path and case_number in inbox.text
    tip_url = tip_path.group(1)
    page = staff.get(tip_url).text
    for action, fields in (
        ("reply", {"text": HOSTILE}),
        ("note", {"text": HOSTILE}),
        ("hold", {"action": "set", "reference": HOSTILE[:200].replace("\n", " ")}),
    ):
        done = staff.post(
            f"{tip_url}/{action}", data={**fields, "csrf": form_token(page, f"{tip_url}/{action}")}
        )
        assert done.status_code == 200, (action, done.status_code)
        page = done.text
    target = re.search(r'<select id="handover-desk" name="desk"><option value="(\d+)"', page)
    assert target, "the tip page offers no desk to hand over to"
    handed = staff.post(
        f"{tip_url}/handover",
        data={
            "desk": target.group(1),
            "basis": "legal-basis",
            "legal_basis": HOSTILE,
            "csrf": form_token(page, f"{tip_url}/handover"),
        },
    )
    assert handed.status_code == 200, handed.status_code
    page = staff.get(tip_url).text
    assert_inert(page, "tip")
    assert page.count("&lt;script&gt;alert(1)") >= 7  # five answers, reply, note: shown, as text
    assert "{{ 7*7 }}" in page  # never evaluated as a template
    printed = staff.post(
        f"{tip_url}/export", data={"format": "print", "csrf": form_token(page, f"{tip_url}/export")}
    )
    assert printed.status_code == 200
    assert_inert(printed.text, "print view")

    # The names as stored and shown: cleaned once, on upload; every download header is one clean header.
    downloads = re.findall(rf'href="({tip_url}/files/[0-9a-f]{{32}})"', page)
    assert len(downloads) == len(FILE_NAMES)
    shown = set()
    for link in downloads:
        response = staff.get(link)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        assert "sandbox" in response.headers["content-security-policy"]
        shown.add(assert_one_clean_header(response))
    assert "passwd" in shown and "evil.txt" in shown and "foto" + "gpj.exe" in shown

    # The age export: every name a plain file under files/, nothing that climbs out when unpacked.
    officer_key = crypto.X25519Identity.generate()
    exported = staff.post(
        f"{tip_url}/export",
        data={
            "format": "age",
            "recipient": str(officer_key.recipient),
            "csrf": form_token(page, f"{tip_url}/export"),
        },
    )
    assert exported.status_code == 200
    assert_one_clean_header(exported)
    with tarfile.open(fileobj=io.BytesIO(crypto.decrypt(exported.content, [officer_key]))) as archive:
        names = archive.getnames()
    assert "tip.txt" in names and len(names) == 1 + len(FILE_NAMES)
    for name in names:
        if name == "tip.txt":
            continue
        folder, _, base = name.partition("/")
        assert folder == "files", name
        assert_clean_name(base, f"export {name!r}")
        assert len(base.encode()) <= 255, name  # what a file system takes: `tar -x` can make it

    # The tipster's side: the officer's reply with markup, their own files, all inert.
    tipster = TestClient(client.app, base_url="http://testserver")
    mailbox = log_in(tipster, "sv", code)
    assert mailbox.url.path == "/sv/mailbox"
    assert_inert(mailbox.text, "mailbox")
    assert mailbox.text.count("&lt;script&gt;alert(1)") >= 5  # what they wrote, and the reply


def test_a_file_name_longer_than_any_browser_sends_is_refused_and_stores_nothing(
    client: TestClient, services: Services
) -> None:
    form = client.get("/sv/tip")
    answers = {**ANSWERS, "category": "other"}
    review = client.post("/sv/tip", data={**answers, "csrf": form_token(form.text, "/sv/tip")})
    before = row_counts(services.engine)
    token = form_token(review.text, "/sv/tip/send")
    body = multipart({**answers, "csrf": token, "confirm": "yes"}, [b"n" * 20_000 + b".txt"])
    refused = client.post(
        "/sv/tip/send", content=body, headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    )
    assert refused.status_code == 400
    assert 'id="reply-code"' not in refused.text
    assert row_counts(services.engine) == before
