"""Following a tip up (issue 3, section 4; DESIGN 3): typing the code, the global rate limit, the session.

The reply code opens the mailbox however it is typed (any script's digits, spaces, hyphens, direction
marks), only by POST and never into a URL, a redirect or a cookie. Guessing is bounded by one budget in the
database that every process shares. The session cookie alone opens nothing: without its row (after logout,
idle time or deletion) it is a random string.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import delete, update
from sqlmodel import Session, select
from starlette.testclient import TestClient

import crypto
from crypto import Argon2Params
from portal import ratelimit, sessions
from portal.db import session_scope, utcnow
from portal.network.models import Desk, Organisation
from portal.settings import Settings
from portal.submission import mailbox
from portal.submission import services as tips
from portal.submission.models import Message, Tip, TipRecipient
from portal.submission.uploads import new_id
from portal.web import Services
from tests.portal.submission.browser import (
    ANSWERS,
    app_client,
    form_token,
    log_in,
    page_text,
    row_counts,
    send_tip,
    translated,
)

ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"  # U+0660..U+0669
PERSIAN = "۰۱۲۳۴۵۶۷۸۹"  # U+06F0..U+06F9 (Extended Arabic-Indic)
RLM = "\u200f"


def in_digits(code: str, digits: str) -> str:
    return "".join(digits[int(c)] if c.isdigit() else c for c in code)


def session_rows(services: Services) -> list[sessions.SessionRow]:
    with Session(services.engine) as db:
        return list(db.exec(select(sessions.SessionRow)))


def is_mailbox(response: httpx.Response, case_number: str) -> bool:
    return (
        response.status_code == 200
        and case_number in response.text
        and 'action="/sv/logout"' in response.text
    )


@pytest.fixture
def sent(client: TestClient) -> tuple[str, str]:
    """A tip sent through the form: its reply code and case number."""
    return send_tip(client, "sv", ANSWERS, [("notes.txt", b"hello")])


# --- typing the code ----------------------------------------------------------------------------------------


def test_the_code_opens_the_mailbox_typed_in_any_script(client: TestClient, sent: tuple[str, str]) -> None:
    code, case_number = sent
    groups = code.split(" ")
    typed = {
        "Arabic-Indic digits with spaces": ("ar", in_digits(code, ARABIC_INDIC)),
        "Arabic-Indic digits, no spaces": ("ar", in_digits("".join(groups), ARABIC_INDIC)),
        "Persian digits, hyphens, RLM": ("fa", RLM + (RLM + "-").join(in_digits(g, PERSIAN) for g in groups)),
        "Persian digits, pasted with marks and non-breaking spaces": (
            "fa-AF",
            "\u2067" + "\u00a0".join(in_digits(g, PERSIAN) for g in groups) + "\u2069\u200e",
        ),
        "ASCII with hyphens and stray spaces": ("sv", "  " + "-".join(groups) + " "),
    }  # fmt: skip
    for name, (lang, text) in typed.items():
        opened = log_in(client, lang, text)
        assert opened.status_code == 200, name
        assert case_number in opened.text, name
        assert ANSWERS["what"] in page_text(opened), name
        assert f'action="/{lang}/logout"' in opened.text, name
        client.cookies.delete(mailbox.SESSION_COOKIE)
    # The same digits with one changed are a typing error, in any script.
    wrong = in_digits(code[:-1] + str((int(code[-1]) + 1) % 10), ARABIC_INDIC)
    refused = log_in(client, "ar", wrong)
    assert refused.status_code == 400
    assert translated("ar", mailbox.ERROR_CODE_TYPO) in page_text(refused)


# --- the global rate limit ----------------------------------------------------------------------------------


class FrozenClock:
    """Stands in for `time` in portal.ratelimit, so the test does not straddle a one-minute window."""

    def __init__(self) -> None:
        self.now = 1_900_000_020.0  # the start of a window

    def time(self) -> float:
        return self.now


def test_the_rate_limit_holds_across_processes_even_for_the_right_code(
    settings: Settings,
    demo_accounts: dict[str, Any],
    fast_argon2: Argon2Params,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FrozenClock()
    monkeypatch.setattr(ratelimit, "time", clock)
    limit = 3
    with app_client(settings, fast_argon2, followup_attempts_per_minute=limit) as (client, services):
        code, case_number = send_tip(client, "sv", ANSWERS, [])
        derivations: list[str] = []
        original = services.extras["deriver"].derive

        async def counted(reply_code: crypto.ReplyCode) -> crypto.MailboxKeys:
            derivations.append("derive")
            return await original(reply_code)

        monkeypatch.setattr(services.extras["deriver"], "derive", counted)
        assert is_mailbox(log_in(client, "sv", code), case_number)  # attempt 1
        client.cookies.delete(mailbox.SESSION_COOKIE)
        for _ in range(limit - 1):  # attempts 2 and 3: guesses
            guess = log_in(client, "sv", crypto.ReplyCode.generate().grouped())
            assert guess.status_code == 400
        assert len(derivations) == limit
        for lang in ("sv", "ar"):
            limited = log_in(client, lang, code)
            assert limited.status_code == 429
            assert translated(lang, mailbox.ERROR_RATE_LIMITED) in page_text(limited)
            assert mailbox.SESSION_COOKIE not in client.cookies
        assert len(derivations) == limit, "a refused attempt still ran Argon2id"

        # Another process on the same database shares the budget.
        with app_client(settings, fast_argon2, followup_attempts_per_minute=limit) as (other, _services):
            assert log_in(other, "sv", code).status_code == 429

        # The next minute has a new budget.
        clock.now += ratelimit.WINDOW_SECONDS
        assert is_mailbox(log_in(client, "sv", code), case_number)


# --- the session --------------------------------------------------------------------------------------------


def logged_in(client: TestClient, code: str, case_number: str) -> str:
    """Log in; the session cookie's value."""
    assert is_mailbox(log_in(client, "sv", code), case_number)
    cookie = client.cookies.get(mailbox.SESSION_COOKIE)
    assert cookie
    return cookie


def test_the_cookie_holds_no_key_that_works_without_the_database(
    client: TestClient,
    services: Services,
    settings: Settings,
    fast_argon2: Argon2Params,
    sent: tuple[str, str],
) -> None:
    code, case_number = sent
    cookie = logged_in(client, code, case_number)
    keys = crypto.derive_mailbox(
        crypto.parse_reply_code(code),
        instance_salt=settings.secrets.instance_salt,
        pepper=settings.pepper,
        params=fast_argon2,
    )
    tipster_secret = keys.tipster_identity.secret_bytes()
    opened = base64.urlsafe_b64decode(
        URLSafeSerializer(settings.signing_key, salt=sessions.COOKIE_SALT).loads(cookie)
    )
    assert tipster_secret not in opened
    with Session(services.engine) as db:
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
        # Whatever 32 bytes of the cookie one tries as a key, the tip stays closed.
        for start in range(0, len(opened) - 31):
            with pytest.raises(crypto.DecryptError):
                crypto.unseal(
                    tip.answers,
                    kind=tips.TIP_KIND,
                    subject=tip.id,
                    identities=[crypto.X25519Identity(opened[start : start + 32])],
                )
    # Nor does the database hold the key in the clear: the row has it sealed.
    [row] = session_rows(services)
    assert tipster_secret not in row.sealed_secret

    # Without its row the cookie opens nothing.
    with session_scope(services.engine) as db:
        db.exec(delete(sessions.SessionRow))
    gone = client.get("/sv/mailbox", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/sv/followup"
    assert ANSWERS["what"] not in client.get("/sv/mailbox").text


def test_idle_sessions_end(client: TestClient, services: Services, sent: tuple[str, str]) -> None:
    code, case_number = sent
    logged_in(client, code, case_number)

    def idle_for(minutes: int) -> None:
        with session_scope(services.engine) as db:
            db.exec(
                update(sessions.SessionRow).values(
                    last_seen_at=utcnow() - datetime.timedelta(minutes=minutes)
                )
            )

    idle_for(14)
    assert is_mailbox(client.get("/sv/mailbox"), case_number)  # and the visit counts as activity
    idle_for(16)
    ended = client.get("/sv/mailbox", follow_redirects=False)
    assert ended.status_code == 303 and ended.headers["location"] == "/sv/followup"
    assert session_rows(services) == []


def test_logout_deletes_the_session_and_an_old_cookie_opens_nothing(
    client: TestClient, services: Services, sent: tuple[str, str]
) -> None:
    code, case_number = sent
    cookie = logged_in(client, code, case_number)
    page = client.get("/sv/mailbox")
    assert len(session_rows(services)) == 1
    out = client.post("/sv/logout", data={"csrf": form_token(page.text, "/sv/logout")})
    assert out.status_code == 200
    assert translated("sv", mailbox.NOTICE_LOGGED_OUT) in page_text(out)
    assert session_rows(services) == []
    assert mailbox.SESSION_COOKIE not in client.cookies
    # A copy of the cookie taken before logging out (another tab, a stolen cookie) opens nothing.
    client.cookies.set(mailbox.SESSION_COOKIE, cookie)
    replayed = client.get("/sv/mailbox", follow_redirects=False)
    assert replayed.status_code == 303 and replayed.headers["location"] == "/sv/followup"
    # Logging out with a bad form token does not end the session (and says why).
    client.cookies.delete(mailbox.SESSION_COOKIE)
    logged_in(client, code, case_number)
    refused = client.post("/sv/logout", data={"csrf": "forged"})
    assert refused.status_code == 400
    assert len(session_rows(services)) == 1


# --- where the code goes ------------------------------------------------------------------------------------


def test_the_code_never_appears_in_a_url_a_redirect_or_a_cookie(
    client: TestClient, services: Services
) -> None:
    seen: list[str] = []

    def record_request(request: httpx.Request) -> None:
        seen.append(f"url {request.url}")

    def record_response(response: httpx.Response) -> None:
        seen.append(f"url {response.url}")
        for name in ("location", "set-cookie", "content-location", "refresh", "link"):
            seen.extend(f"{name} {value}" for value in response.headers.get_list(name))

    client.event_hooks = {"request": [record_request], "response": [record_response]}
    code, case_number = send_tip(client, "sv", ANSWERS, [])
    sent_page = client.get("/sv/followup")  # any page: then the whole follow-up round
    opened = log_in(client, "sv", code)
    assert is_mailbox(opened, case_number)
    reply = client.post(
        "/sv/mailbox/reply",
        data={"message": "Svart Volvo", "csrf": form_token(opened.text, "/sv/mailbox/reply")},
        files=[("files", ("", b"", "application/octet-stream"))],
    )
    assert reply.status_code == 200 and "Svart Volvo" in reply.text
    client.post("/sv/logout", data={"csrf": form_token(reply.text, "/sv/logout")})
    assert sent_page.status_code == 200
    digits = code.replace(" ", "")
    forms_of_code = [digits, code, code.replace(" ", "+"), code.replace(" ", "%20"), digits[:12], digits[12:]]
    assert any("location" in line for line in seen) and any("set-cookie" in line for line in seen)
    leaks = [line for line in seen for form in forms_of_code if form in line]
    assert leaks == []


def test_a_code_in_the_query_string_does_nothing(
    client: TestClient, services: Services, sent: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _case_number = sent
    derivations: list[str] = []

    async def counted(reply_code: crypto.ReplyCode) -> crypto.MailboxKeys:
        derivations.append("derive")
        raise AssertionError("a code in a URL was derived")

    monkeypatch.setattr(services.extras["deriver"], "derive", counted)
    before = row_counts(services.engine)
    for query in ({"reply_code": code}, {"reply_code": code.replace(" ", ""), "csrf": "x"}):
        page = client.get("/sv/followup", params=query, follow_redirects=False)
        assert page.status_code == 200
        assert code not in page.text and code.replace(" ", "") not in page.text
        assert 'name="reply_code"' in page.text  # the plain login form
        assert client.get("/sv/mailbox", follow_redirects=False).status_code == 303
    assert mailbox.SESSION_COOKIE not in client.cookies
    assert derivations == []
    assert row_counts(services.engine) == before
    with Session(services.engine) as db:
        assert db.exec(select(ratelimit.RateCounter)).all() == []


# --- the mailbox --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["sv", "ar"])
def test_the_mailbox_shows_a_desk_reply_decrypted(
    client: TestClient, services: Services, sent: tuple[str, str], lang: str
) -> None:
    code, case_number = sent
    question = "Vilken färg hade bilen? ما هو لون السيارة؟"
    with session_scope(services.engine) as db:
        tip = db.exec(select(Tip).where(Tip.case_number == case_number)).one()
        recipient = db.exec(select(TipRecipient).where(TipRecipient.tip_id == tip.id)).first()
        assert recipient is not None
        tips.store_message(
            db, tip=tip, message_id=new_id(), author="desk", text=question, desk_id=recipient.desk_id
        )
        organisation = db.exec(select(Organisation).join(Desk).where(Desk.id == recipient.desk_id)).one()
    with Session(services.engine) as db:
        assert all(question.encode() not in m.body for m in db.exec(select(Message)))
    opened = log_in(client, lang, code)
    assert opened.status_code == 200
    text = page_text(opened)
    assert question in text
    assert translated(lang, "From %(organisation)s", organisation=organisation.name) in text
