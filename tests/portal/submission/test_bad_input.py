"""Bad input (issue 3, section 7): a clear, translated message, what the resident typed kept, nothing stored.

Each case checks the three things a resident would notice: the page says what is wrong in their language
(the catalog's translation of the message id, so it stays right as translations land), the answers they
typed are still there to correct (files aside: a browser cannot refill a file input), and the database
holds not one more tip, file, chunk or message than before.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote_plus

import pytest
from itsdangerous.timed import TimestampSigner
from PIL import Image
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from starlette.testclient import TestClient

import crypto
from crypto import Argon2Params
from portal import csrf, formdata, ratelimit
from portal.settings import Settings
from portal.submission import forms, mailbox, uploads, views
from portal.web import Services
from tests.portal.submission.browser import (
    ANSWERS,
    app_client,
    file_fields,
    form_token,
    log_in,
    page_text,
    post_in_pieces,
    review,
    row_counts,
    send_reviewed,
    send_tip,
    translated,
)

LANGS = ["sv", "ar"]
BOUNDARY = "lyktatestboundary"
TYPED = {
    **ANSWERS,
    "what": "Det säljs narkotika vid torget varje kväll",
    "when": "Varje kväll efter klockan tio",
    "where": "Torget vid stationen",
    "who": "Två män i en svart bil",
    "contact": "Nås på 070-000 00 00",
}
TEXT_FIELDS = tuple(forms.TEXT_LIMITS)
MIB = 1024 * 1024


# --- checking a refusal -------------------------------------------------------------------------------------


@contextmanager
def stores_nothing(engine: Engine) -> Iterator[None]:
    before = row_counts(engine)
    yield
    assert row_counts(engine) == before, "a refused request stored something"


def assert_says(
    response: Any, lang: str, msgid: str, *, status: int, context: str = "", **variables: object
) -> None:
    assert response.status_code == status, (context, response.text[:2000])
    assert translated(lang, msgid, **variables) in page_text(response), context
    assert f'<html lang="{lang}"' in response.text


def assert_kept(
    response: Any, answers: dict[str, str], *, fields: tuple[str, ...] = TEXT_FIELDS, context: str = ""
) -> None:
    """The answers are on the page again, in the form or in the review (not lost to a retype)."""
    text = page_text(response)
    for name in fields:
        assert answers[name] in text, f"{context}: {name} was not kept"


# --- building request bodies by hand ------------------------------------------------------------------------


def field_part(name: str, value: bytes) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value


def file_part(
    name: str, filename: bytes, body: bytes, content_type: str = "application/octet-stream"
) -> bytes:
    return (
        f'Content-Disposition: form-data; name="{name}"; filename="'.encode()
        + filename
        + f'"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
        + body
    )


def multipart(parts: list[bytes]) -> bytes:
    out = b"".join(f"--{BOUNDARY}\r\n".encode() + part + b"\r\n" for part in parts)
    return out + f"--{BOUNDARY}--\r\n".encode()


def answer_parts(answers: dict[str, str], token: str, **extra: str) -> list[bytes]:
    fields = {**answers, "csrf": token, "confirm": "yes", **extra}
    return [field_part(name, value.encode()) for name, value in fields.items()]


def post_multipart(client: TestClient, path: str, body: bytes, boundary: str = BOUNDARY) -> Any:
    return client.post(
        path, content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )


def send_token(client: TestClient, lang: str, answers: dict[str, str] = TYPED) -> str:
    reviewed = review(client, lang, answers)
    assert reviewed.status_code == 200, reviewed.text
    return form_token(reviewed.text, f"/{lang}/tip/send")


def send_reviewed_with_token(
    client: TestClient,
    lang: str,
    answers: dict[str, str],
    token: str,
    files: list[tuple[str, bytes]] | None = None,
) -> Any:
    return client.post(
        f"/{lang}/tip/send", data={**answers, "csrf": token, "confirm": "yes"}, files=file_fields(files or [])
    )


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(out, format="JPEG")
    return out.getvalue()


# --- the tip form -------------------------------------------------------------------------------------------


def test_an_over_long_field_is_refused_and_kept(client: TestClient, services: Services) -> None:
    for lang in LANGS:
        for field in TEXT_FIELDS:
            limit = forms.TEXT_LIMITS[field]
            answers = {**TYPED, field: "ö" * limit + "x"}
            refused = review(client, lang, answers)
            assert_says(refused, lang, forms.ERROR_TOO_LONG, status=400, limit=limit, context=field)
            assert_kept(refused, answers, context=field)
            # One character less is fine: the limit is where the message says it is.
            assert review(client, lang, {**answers, field: "ö" * limit}).status_code == 200
        # Sent past the review (hidden fields are easy to change): refused, nothing stored.
        token = send_token(client, lang)
        answers = {**TYPED, "who": "ö" * (forms.TEXT_LIMITS["who"] + 1)}
        with stores_nothing(services.engine):
            refused = send_reviewed_with_token(client, lang, answers, token, [("notes.txt", b"hello")])
        assert_says(refused, lang, forms.ERROR_TOO_LONG, status=400, limit=forms.TEXT_LIMITS["who"])
        assert_kept(refused, answers)


def test_invalid_utf8_in_the_form_is_refused_and_the_rest_kept(client: TestClient) -> None:
    for lang in LANGS:
        token = form_token(client.get(f"/{lang}/tip").text, f"/{lang}/tip")
        for raw in (b"%FF%FE%FD", b"\xff\xfe\xfd", b"%C3%28", b"%ED%A0%80"):  # the last: a UTF-16 surrogate
            fields = {**TYPED, "csrf": token}
            body = b"&".join(
                name.encode() + b"=" + (raw if name == "who" else quote_plus(value).encode())
                for name, value in fields.items()
            )
            refused = client.post(
                f"/{lang}/tip", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
            )
            assert_says(refused, lang, formdata.ERROR_ENCODING, status=400, context=repr(raw))
            assert_kept(refused, TYPED, fields=("what", "when", "where", "contact"), context=repr(raw))


def test_invalid_utf8_in_a_multipart_field_or_file_name_stores_nothing(
    client: TestClient, services: Services
) -> None:
    for lang in LANGS:
        token = send_token(client, lang)
        latin1_field = [
            *(part for part in answer_parts(TYPED, token) if b'name="who"' not in part),
            field_part("who", b"Tv\xe5 m\xe4n"),  # Latin-1, not UTF-8
            file_part("files", b"notes.txt", b"hello"),
        ]
        latin1_name = [*answer_parts(TYPED, token), file_part("files", b"bild\xff\xfe.jpg", jpeg())]
        for case, parts, kept in [
            ("field", latin1_field, ("what", "when", "where", "contact")),
            ("file name", latin1_name, TEXT_FIELDS),
        ]:
            with stores_nothing(services.engine):
                refused = post_multipart(client, f"/{lang}/tip/send", multipart(parts))
            assert_says(refused, lang, formdata.ERROR_ENCODING, status=400, context=case)
            assert_kept(refused, TYPED, fields=kept, context=case)


def malformed_bodies(token: str) -> dict[str, tuple[str, bytes]]:
    """Bodies a browser would never send, each with the content type it comes with."""
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    whole = multipart([*answer_parts(TYPED, token), file_part("files", b"notes.bin", b"x" * 100_000)])
    return {
        "no boundary": ("multipart/form-data", whole),
        "empty boundary": ("multipart/form-data; boundary=", whole),
        "garbage": (content_type, bytes(range(256)) * 50),
        "empty body": (content_type, b""),
        "truncated in a file": (content_type, whole[: len(whole) - 50_000]),
        "truncated in a field": (content_type, whole[: whole.index(b'name="where"') + 40]),
        "no closing boundary": (content_type, whole[: whole.rindex(b"--" + BOUNDARY.encode())]),
        "part without content-disposition": (
            content_type,
            multipart([*answer_parts(TYPED, token), b"Content-Type: text/plain\r\n\r\nloose text"]),
        ),
        "part that is not form-data": (
            content_type,
            multipart([*answer_parts(TYPED, token), b'Content-Disposition: attachment; name="x"\r\n\r\nx']),
        ),
        "text/plain": ("text/plain", b"what=hello"),
        "json": ("application/json", b'{"what": "hello"}'),
        "urlencoded": ("application/x-www-form-urlencoded", b"what=hello&csrf=" + token.encode()),
        "no content type": ("", whole),
    }


def test_a_malformed_body_or_wrong_content_type_on_send_stores_nothing(
    client: TestClient, services: Services
) -> None:
    for lang in LANGS:
        token = send_token(client, lang)
        for case, (content_type, body) in malformed_bodies(token).items():
            headers = {"content-type": content_type} if content_type else {}
            with stores_nothing(services.engine):
                refused = client.post(f"/{lang}/tip/send", content=body, headers=headers)
            assert_says(refused, lang, formdata.ERROR_MALFORMED, status=400, context=case)
            if case == "truncated in a file":
                assert_kept(refused, TYPED, context=case)  # every answer had arrived
            if case == "truncated in a field":
                assert_kept(refused, TYPED, fields=("what", "when"), context=case)  # those that had arrived


def test_too_many_files_store_nothing(client: TestClient, services: Services) -> None:
    limit = services.settings.max_files
    files = [(f"file{i}.txt", b"some text %d" % i) for i in range(limit + 1)]
    for lang in LANGS:
        token = send_token(client, lang)
        with stores_nothing(services.engine):
            refused = send_reviewed_with_token(client, lang, TYPED, token, files)
        assert_says(refused, lang, formdata.ERROR_TOO_MANY_FILES, status=400, limit=limit)
        assert_kept(refused, TYPED)
    # As many as the limit is fine.
    accepted = send_reviewed(client, "sv", TYPED, files[:limit])
    assert accepted.status_code == 200
    assert row_counts(services.engine)["storedfile"] == limit


@pytest.fixture
def small_uploads(
    settings: Settings, demo_accounts: dict[str, Any], fast_argon2: Argon2Params
) -> Iterator[tuple[TestClient, Services]]:
    """The app with a 1 MiB upload limit."""
    with app_client(settings, fast_argon2, max_upload_bytes=MIB) as built:
        yield built


def test_files_over_the_upload_limit_store_nothing(small_uploads: tuple[TestClient, Services]) -> None:
    client, services = small_uploads
    files = [("one.bin", b"\x01" * (MIB // 2)), ("two.bin", b"\x02" * (MIB // 2 + 1))]
    for lang in LANGS:
        token = send_token(client, lang)
        with stores_nothing(services.engine):
            refused = send_reviewed_with_token(client, lang, TYPED, token, files)
        assert_says(refused, lang, views.ERROR_TOO_LARGE, status=413, limit=1)
        assert_kept(refused, TYPED)
    # Exactly the limit is accepted: the limit is the one the page states.
    accepted = send_reviewed(client, "sv", TYPED, [files[0], ("two.bin", files[1][1][:-1])])
    assert accepted.status_code == 200, accepted.text
    assert row_counts(services.engine)["storedfile"] == 2


def test_a_body_over_the_limit_stores_nothing(small_uploads: tuple[TestClient, Services]) -> None:
    """Longer than the body limit (files and fields): refused as declared, or once the limit is read."""
    client, services = small_uploads
    big = ("big.bin", b"\x03" * (3 * MIB), "application/octet-stream")
    for lang in LANGS:
        token = send_token(client, lang)
        for declared in (True, False):
            with stores_nothing(services.engine):
                refused = post_in_pieces(
                    client,
                    f"/{lang}/tip/send",
                    data={**TYPED, "csrf": token, "confirm": "yes"},
                    files=[("files", big)],
                    declare_length=declared,
                )
            context = f"{declared=}"
            assert_says(refused, lang, views.ERROR_TOO_LARGE, status=413, limit=1, context=context)
            assert_kept(refused, TYPED, context=context)
        # All at once, as the TestClient sends it: the first read is already over the limit.
        body = multipart([*answer_parts(TYPED, token), file_part("files", b"big.bin", big[1])])
        with stores_nothing(services.engine):
            refused = post_multipart(client, f"/{lang}/tip/send", body)
        assert_says(refused, lang, views.ERROR_TOO_LARGE, status=413, limit=1)
        assert_kept(refused, TYPED)


def test_an_unknown_municipality_or_category_stores_nothing(client: TestClient, services: Services) -> None:
    for lang in LANGS:
        token = send_token(client, lang)
        for changed in ({"municipality": "stockholm"}, {"category": "tax-evasion-abroad"}):
            answers = {**TYPED, **changed}
            refused = review(client, lang, answers)
            assert_says(refused, lang, forms.ERROR_UNKNOWN_CHOICE, status=400, context=str(changed))
            assert_kept(refused, answers)
            # Sent straight to /tip/send with a valid token: refused the same way.
            with stores_nothing(services.engine):
                sent = send_reviewed_with_token(client, lang, answers, token, [("notes.txt", b"hello")])
            assert_says(sent, lang, forms.ERROR_UNKNOWN_CHOICE, status=400, context=str(changed))
            assert_kept(sent, answers)


def test_the_emergency_category_shows_112_and_stores_nothing(client: TestClient, services: Services) -> None:
    answers = {**TYPED, "category": "emergency"}
    for lang in LANGS:
        with stores_nothing(services.engine):
            shown = review(client, lang, answers)
            assert shown.status_code == 200
            assert translated(lang, "Call 112 now") in page_text(shown)
            assert 'href="tel:112"' in shown.text
            assert f'action="/{lang}/tip/send"' not in shown.text  # no way on to sending it
            sent = send_reviewed_with_token(client, lang, answers, send_token(client, lang))
        assert sent.status_code == 400


# --- form tokens --------------------------------------------------------------------------------------------


@contextmanager
def issued_long_ago(monkeypatch: pytest.MonkeyPatch, seconds: int) -> Iterator[None]:
    """Tokens issued inside the block carry a timestamp `seconds` in the past."""
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda _self: int(time.time()) - seconds)
        yield


def bad_tokens(
    client: TestClient, lang: str, monkeypatch: pytest.MonkeyPatch, page: str, action: str
) -> dict[str, str]:
    """Tokens that must not be accepted for the form posting to `action` on `page`: every way to be wrong."""
    with issued_long_ago(monkeypatch, csrf.MAX_AGE_SECONDS + 60):
        expired = form_token(client.get(f"/{lang}/{page}").text, action)
    valid = form_token(client.get(f"/{lang}/{page}").text, action)
    other_page = "followup" if page == "tip" else "tip"
    other_purpose = form_token(client.get(f"/{lang}/{other_page}").text, f"/{lang}/{other_page}")
    with TestClient(client.app, base_url="http://testserver") as other_browser:
        other_browser_token = form_token(other_browser.get(f"/{lang}/{page}").text, action)
    return {
        "missing": "",
        "forged": "eyJhbGciOiJIUzI1NiJ9.forged.signature",
        # One character of the signature changed (not the last, whose low bits base64 ignores).
        "tampered": valid[:-5] + ("B" if valid[-5] != "B" else "C") + valid[-4:],
        "expired": expired,
        "other purpose": other_purpose,
        "other browser": other_browser_token,
    }


def test_a_bad_token_on_the_review_keeps_the_answers(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for lang in LANGS:
        for name, token in bad_tokens(client, lang, monkeypatch, "tip", f"/{lang}/tip").items():
            refused = client.post(f"/{lang}/tip", data={**TYPED, "csrf": token})
            assert_says(refused, lang, views.ERROR_FORM_EXPIRED, status=400, context=name)
            assert_kept(refused, TYPED, context=name)
    # A token a little younger than the limit still works: it is the age that was refused above.
    with issued_long_ago(monkeypatch, csrf.MAX_AGE_SECONDS - 60):
        token = form_token(client.get("/sv/tip").text, "/sv/tip")
    assert client.post("/sv/tip", data={**TYPED, "csrf": token}).status_code == 200


def test_a_bad_token_on_send_stores_nothing(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    for lang in LANGS:
        with issued_long_ago(monkeypatch, csrf.MAX_AGE_SECONDS + 60):
            expired = send_token(client, lang)
        tokens = {
            # The review form's tokens, all wrong for sending, and an expired token for sending.
            **bad_tokens(client, lang, monkeypatch, "tip", f"/{lang}/tip"),
            "expired send token": expired,
        }
        for name, token in tokens.items():
            with stores_nothing(services.engine):
                refused = send_reviewed_with_token(client, lang, TYPED, token, [("notes.txt", b"hello")])
            assert_says(refused, lang, views.ERROR_FORM_EXPIRED, status=400, context=name)
            assert_kept(refused, TYPED, context=name)


# --- the reply code -----------------------------------------------------------------------------------------


@pytest.fixture
def derivations(services: Services, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts reply-code derivations (Argon2id runs) the app starts."""
    calls: list[str] = []
    deriver = services.extras["deriver"]
    original = deriver.derive

    async def counted(code: crypto.ReplyCode) -> crypto.MailboxKeys:
        calls.append("derive")
        return await original(code)

    monkeypatch.setattr(deriver, "derive", counted)
    return calls


def rate_counted(services: Services) -> int:
    with Session(services.engine) as db:
        return int(db.exec(select(func.coalesce(func.sum(ratelimit.RateCounter.count), 0))).one())


def mistyped(code: str) -> list[str]:
    """Typing errors the check digit catches: one digit wrong, two neighbours swapped."""
    digits = code.replace(" ", "")
    wrong_digit = digits[:5] + str((int(digits[5]) + 1) % 10) + digits[6:]
    i = next(i for i in range(len(digits) - 1) if digits[i] != digits[i + 1])
    swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
    return [wrong_digit, swapped]


def test_a_mistyped_reply_code_is_caught_before_any_expensive_work(
    client: TestClient, services: Services, derivations: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _case = send_tip(client, "sv", TYPED, [])
    derivations.clear()

    def no_argon2(*_args: object, **_kwargs: object) -> bytes:
        raise AssertionError("Argon2id ran for a code with a typing error")

    monkeypatch.setattr(crypto._replycode, "argon2id", no_argon2)
    for lang in LANGS:
        for typo in mistyped(code):
            with stores_nothing(services.engine):
                refused = log_in(client, lang, typo)
            assert_says(refused, lang, mailbox.ERROR_CODE_TYPO, status=400)
        for wrong_length in (code[:-1], code + "1", "1234", ""):
            refused = log_in(client, lang, wrong_length)
            assert_says(refused, lang, mailbox.ERROR_CODE_FORMAT, status=400, context=wrong_length)
    assert derivations == []
    assert rate_counted(services) == 0  # not even the rate limit was spent on them
    assert mailbox.SESSION_COOKIE not in client.cookies


def test_an_unknown_reply_code_is_not_found(
    client: TestClient, services: Services, derivations: list[str]
) -> None:
    send_tip(client, "sv", TYPED, [])
    derivations.clear()
    for lang in LANGS:
        unknown = crypto.ReplyCode.generate().grouped()
        with stores_nothing(services.engine):
            refused = log_in(client, lang, unknown)
        assert_says(refused, lang, mailbox.ERROR_CODE_UNKNOWN, status=400)
    assert derivations == ["derive"] * len(LANGS)
    assert mailbox.SESSION_COOKIE not in client.cookies


# --- the mailbox --------------------------------------------------------------------------------------------

DRAFT = "Bilen var en svart Volvo med skadad stötfångare"


def reply(
    client: TestClient, lang: str, message: str, files: list[tuple[str, bytes]], token: str | None = None
) -> Any:
    if token is None:
        token = form_token(client.get(f"/{lang}/mailbox").text, f"/{lang}/mailbox/reply")
    return client.post(
        f"/{lang}/mailbox/reply",
        data={"message": message, "csrf": token},
        files=file_fields(files),
        follow_redirects=False,
    )


def test_mailbox_refusals_keep_the_draft_and_store_nothing(client: TestClient, services: Services) -> None:
    code, _case = send_tip(client, "sv", TYPED, [])
    assert log_in(client, "sv", code).status_code == 200
    limit = services.settings.max_files
    too_long = "å" * (mailbox.MAX_MESSAGE_CHARS + 1)
    # case: (message, files, token or None for a valid one), the message id and its limit
    cases: dict[str, tuple[str, list[tuple[str, bytes]], str | None, str, int | None]] = {
        "too long": (too_long, [], None, mailbox.ERROR_MESSAGE_TOO_LONG, mailbox.MAX_MESSAGE_CHARS),
        "too many files": (
            DRAFT,
            [(f"{i}.txt", b"x") for i in range(limit + 1)],
            None,
            formdata.ERROR_TOO_MANY_FILES,
            limit,
        ),
        "bad token": (DRAFT, [("notes.txt", b"x")], "forged", mailbox.ERROR_EXPIRED, None),
        "empty": ("  \r\n ", [], None, mailbox.ERROR_MESSAGE_EMPTY, None),
    }
    for lang in LANGS:
        for name, (message, files, token, msgid, limit_shown) in cases.items():
            with stores_nothing(services.engine):
                refused = reply(client, lang, message, files, token)
            assert_says(refused, lang, msgid, status=400, context=name, limit=limit_shown)
            if message.strip():
                assert message in page_text(refused), f"{name}: the draft was lost"
        token = form_token(client.get(f"/{lang}/mailbox").text, f"/{lang}/mailbox/reply")
        latin1 = multipart([field_part("csrf", token.encode()), field_part("message", b"Svart \xff Volvo")])
        with stores_nothing(services.engine):
            refused = post_multipart(client, f"/{lang}/mailbox/reply", latin1)
        assert_says(refused, lang, formdata.ERROR_ENCODING, status=400)


def test_a_mailbox_upload_over_the_limit_keeps_the_draft(small_uploads: tuple[TestClient, Services]) -> None:
    client, services = small_uploads
    code, _case = send_tip(client, "sv", TYPED, [])
    assert log_in(client, "sv", code).status_code == 200
    for lang in LANGS:
        for size in (MIB + 1, 3 * MIB):  # over the files' limit, and over the body's
            with stores_nothing(services.engine):
                refused = reply(client, lang, DRAFT, [("big.bin", b"\x04" * size)])
            assert_says(refused, lang, mailbox.ERROR_TOO_LARGE, status=413, limit=1, context=str(size))
            assert DRAFT in page_text(refused)


# --- photos -------------------------------------------------------------------------------------------------


def test_a_photo_that_cannot_be_cleaned_is_refused_unless_kept_as_it_is(
    client: TestClient, services: Services
) -> None:
    corrupt = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00\x17 not a picture " * 200
    for lang in LANGS:
        token = send_token(client, lang)
        with stores_nothing(services.engine):
            refused = send_reviewed_with_token(client, lang, TYPED, token, [("bild.jpg", corrupt)])
        assert_says(refused, lang, uploads.ERROR_PHOTO_UNREADABLE, status=400)
        assert_kept(refused, TYPED)
    before = row_counts(services.engine)
    accepted = send_reviewed(client, "sv", TYPED, [("bild.jpg", corrupt)], keep_original=True)
    assert accepted.status_code == 200, accepted.text
    after = row_counts(services.engine)
    assert (after["tip"], after["storedfile"]) == (before["tip"] + 1, before["storedfile"] + 1)
