"""What a resident's browser does on the resident side, for tests: read form tokens, fill in and send forms.

Shared by the flow, canary, bad-input, follow-up and atomicity tests; `row_counts` is how they check that
a refused request stored nothing.
"""

from __future__ import annotations

import dataclasses
import html
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from starlette.testclient import TestClient
from starlette.types import Message as AsgiMessage

from crypto import Argon2Params
from portal import i18n
from portal.app import build_services, create_app
from portal.sessions import SessionRow
from portal.settings import Settings
from portal.submission.models import FileChunk, Message, StoredFile, Tip, TipRecipient
from portal.submission.replycodes import MailboxDeriver
from portal.web import Services

ANSWERS = {
    "municipality": "sodertalje",
    "category": "drugs",
    "what": "Försäljning vid busshållplatsen varje kväll.",
    "when": "Varje kväll efter 22",
    "where": "Busshållplatsen vid torget",
    "how_known": "saw",
    "who": "Två personer i en svart bil",
    "contact": "",
}
TABLES = {
    "tip": Tip,
    "tiprecipient": TipRecipient,
    "message": Message,
    "storedfile": StoredFile,
    "filechunk": FileChunk,
}
_CATALOGS = i18n.load_all()


def form_token(html_text: str, action: str) -> str:
    form = re.search(rf'<form[^>]*action="{re.escape(action)}".*?</form>', html_text, re.S)
    assert form, f"no form posting to {action}"
    token = re.search(r'name="csrf" value="([^"]+)"', form.group(0))
    assert token
    return token.group(1)


def element_text(html_text: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]+)<', html_text)
    assert match, element_id
    return match.group(1).strip()


def translated(lang: str, msgid: str, **variables: object) -> str:
    """What the page in `lang` must say for `msgid`: the catalog's translation (the msgid while missing)."""
    text = _CATALOGS[lang].gettext(msgid)
    return text % variables if variables else text


def page_text(response: httpx.Response) -> str:
    """The page with entities decoded, so a translation is found however the template escaped it."""
    return html.unescape(response.text)


def review(client: TestClient, lang: str, answers: dict[str, str]) -> httpx.Response:
    """Fill in the tip form and continue to the review step."""
    form = client.get(f"/{lang}/tip")
    assert form.status_code == 200
    return client.post(f"/{lang}/tip", data={**answers, "csrf": form_token(form.text, f"/{lang}/tip")})


def send_reviewed(
    client: TestClient,
    lang: str,
    answers: dict[str, str],
    files: list[tuple[str, bytes]],
    *,
    keep_original: bool = False,
) -> httpx.Response:
    """Review the answers, then send them with `files` (name, body) as the review page's form does."""
    reviewed = review(client, lang, answers)
    assert reviewed.status_code == 200, reviewed.text
    fields = {**answers, "csrf": form_token(reviewed.text, f"/{lang}/tip/send"), "confirm": "yes"}
    if keep_original:
        fields["keep_original"] = "yes"
    return client.post(f"/{lang}/tip/send", data=fields, files=file_fields(files))


def file_fields(files: list[tuple[str, bytes]]) -> list[tuple[str, tuple[str, io.BytesIO, str]]]:
    """The file input as a browser sends it: a part per file, or one empty part when none is chosen (so
    the body is multipart either way)."""
    chosen = files or [("", b"")]
    return [("files", (name, io.BytesIO(body), "application/octet-stream")) for name, body in chosen]


def send_tip(
    client: TestClient, lang: str, answers: dict[str, str], files: list[tuple[str, bytes]]
) -> tuple[str, str]:
    """Send a tip through the form; the reply code and case number shown on the confirmation page."""
    sent = send_reviewed(client, lang, answers, files)
    assert sent.status_code == 200, sent.text
    return element_text(sent.text, "reply-code"), element_text(sent.text, "case-number")


def log_in(client: TestClient, lang: str, code: str) -> httpx.Response:
    """Type `code` into the follow-up form; the mailbox (redirects followed) or the form with an error."""
    login = client.get(f"/{lang}/followup")
    return client.post(
        f"/{lang}/followup", data={"reply_code": code, "csrf": form_token(login.text, f"/{lang}/followup")}
    )


def row_counts(engine: Engine) -> dict[str, int]:
    """How many rows the tables that hold what residents send have (sessions too)."""
    with Session(engine) as db:
        return {
            name: db.exec(select(func.count()).select_from(model)).one()
            for name, model in [*TABLES.items(), ("session", SessionRow)]
        }


@contextmanager
def app_client(
    settings: Settings, argon2: Argon2Params, *, raise_server_exceptions: bool = True, **changes: Any
) -> Iterator[tuple[TestClient, Services]]:
    """A browser on an app built from `settings` with `changes` (Settings is frozen: a replaced copy)."""
    changed = dataclasses.replace(settings, **changes)
    built = build_services(changed)
    built.extras["deriver"] = MailboxDeriver(changed, params=argon2)
    try:
        app = create_app(changed, services=built)
        with TestClient(
            app, base_url="http://testserver", raise_server_exceptions=raise_server_exceptions
        ) as client:
            yield client, built
    finally:
        built.engine.dispose()


def post_in_pieces(
    client: TestClient,
    path: str,
    *,
    data: dict[str, str],
    files: list[tuple[str, tuple[str, bytes, str]]],
    between_pieces: Callable[[], None] = lambda: None,
    declare_length: bool = True,
    piece: int = 64 * 1024,
) -> httpx.Response:
    """POST a multipart form to the app in `piece`-sized messages, as a slow upload arrives, calling
    `between_pieces` while the app waits for the next one (it has parsed and encrypted what came so far).

    The TestClient hands the app the whole body at once; this drives the app's ASGI interface directly.
    Without `declare_length` the body has no Content-Length, as with chunked transfer encoding.
    """
    request = httpx.Request("POST", f"http://testserver{path}", data=data, files=files)
    body = request.read()
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    headers = [
        (b"host", b"testserver"),
        (b"content-type", request.headers["content-type"].encode()),
        (b"cookie", cookie.encode()),
    ]
    if declare_length:
        headers.append((b"content-length", str(len(body)).encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("testclient", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    pieces = [body[i : i + piece] for i in range(0, len(body), piece)]
    sent: list[AsgiMessage] = []
    taken = 0

    async def receive() -> AsgiMessage:
        nonlocal taken
        if taken >= len(pieces):
            return {"type": "http.disconnect"}
        if taken:
            between_pieces()
        taken += 1
        return {"type": "http.request", "body": pieces[taken - 1], "more_body": taken < len(pieces)}

    async def send(message: AsgiMessage) -> None:
        sent.append(message)

    async def run() -> None:
        await client.app(scope, receive, send)

    assert client.portal is not None
    client.portal.call(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    response_headers = [(k.decode(), v.decode()) for k, v in start["headers"]]
    return httpx.Response(start["status"], headers=response_headers, content=content, request=request)
