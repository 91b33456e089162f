"""Following a tip up with the reply code: log in, read the conversation, answer, add files, log out.

    GET  /{lang}/followup         the reply-code form
    POST /{lang}/followup         check the code (typos before any expensive work), rate limit, derive
    GET  /{lang}/mailbox          status, the tip, the conversation, the reply form
    POST /{lang}/mailbox/reply    a message and files, streamed and encrypted
    POST /{lang}/logout           end the session

The tipster key is derived once at login and kept only sealed in the session row, under a key that only
the cookie holds (DESIGN 3).
"""

from __future__ import annotations

import datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

import crypto
from portal import ratelimit
from portal.csrf import CsrfError
from portal.db import session_scope
from portal.formdata import (
    FilePart,
    FileSink,
    FilesTooLargeError,
    FormError,
    multipart_boundary,
    parse_urlencoded,
    read_multipart,
)
from portal.i18n import N_
from portal.middleware import BodyTooLargeError
from portal.sessions import OpenSession
from portal.submission import handovers
from portal.submission import services as tips
from portal.submission.models import Tip
from portal.submission.replycodes import DerivationBusyError
from portal.submission.uploads import EncryptingSink, new_id
from portal.submission.views import deriver
from portal.web import check_csrf, delete_cookie, locale_of, render, services, set_cookie

SESSION_COOKIE = "lykta_mailbox"
SESSION_KIND = "tipster"
PURPOSE_LOGIN = "followup-login"
PURPOSE_REPLY = "mailbox-reply"
PURPOSE_LOGOUT = "mailbox-logout"
PURPOSE_CONSENT = "mailbox-consent"
FOLLOWUP_BUCKET = "followup"
MAX_MESSAGE_CHARS = 10_000

ERROR_CODE_FORMAT = N_("A reply code has 24 digits. Please check what you typed.")
ERROR_CODE_TYPO = N_("There is a typing error in the reply code. Please check each digit.")
ERROR_CODE_UNKNOWN = N_("We could not find a tip with this reply code. Please check the code.")
ERROR_RATE_LIMITED = N_("Too many attempts right now. Please wait a minute and try again.")
ERROR_BUSY = N_("Many people are using the service right now. Please wait a minute and try again.")
ERROR_EXPIRED = N_("This form has expired or was sent from another page. Please try again.")
ERROR_MESSAGE_EMPTY = N_("Please write a message or attach a file.")
ERROR_MESSAGE_TOO_LONG = N_("This text is too long. Please shorten it to at most %(limit)s characters.")
ERROR_TOO_LARGE = N_("What you sent is too large. Files may be at most %(limit)s MB together.")
NOTICE_LOGGED_OUT = N_("You have logged out. Keep your reply code to come back later.")
NOTICE_SENT = N_("Your message has been sent.")
NOTICE_SHARED = N_("Thank you. The authority you agreed to can now read your tip.")
NOTICE_NOT_SHARED = N_("Thank you. Your tip will not be shared with that authority.")

# What the tipster sees for each status: plain words, not workflow jargon.
STATUS_TEXT = {
    "new": N_("Received. Nobody has read your tip yet."),
    "acknowledged": N_("Received and read. Someone will look into it."),
    "in-progress": N_("Being looked into."),
    "closed": N_("Closed. We do not work on this tip any more. Thank you for telling us."),
}


def _idle(request: Request) -> datetime.timedelta:
    return datetime.timedelta(minutes=services(request).settings.tipster_idle_minutes)


def login_page(
    request: Request, *, status_code: int = 200, error: str | None = None, notice: str | None = None
) -> Response:
    return render(
        request,
        "resident/followup.html",
        status_code=status_code,
        purposes=(PURPOSE_LOGIN,),
        error=error,
        notice=notice,
    )


async def followup_form(request: Request) -> Response:
    return login_page(request)


async def followup_login(request: Request) -> Response:
    try:
        raw = parse_urlencoded(await request.body())
        check_csrf(request, raw.get("csrf"), purpose=PURPOSE_LOGIN)
    except (FormError, CsrfError, BodyTooLargeError):
        return login_page(request, status_code=400, error=ERROR_EXPIRED)
    try:
        code = crypto.parse_reply_code(raw.get("reply_code", ""))
    except crypto.ReplyCodeTypoError:
        return login_page(request, status_code=400, error=ERROR_CODE_TYPO)
    except crypto.ReplyCodeError:
        return login_page(request, status_code=400, error=ERROR_CODE_FORMAT)
    settings = services(request).settings
    with session_scope(services(request).engine) as db:
        allowed = ratelimit.take(db, FOLLOWUP_BUCKET, limit=settings.followup_attempts_per_minute)
    if not allowed:
        return login_page(request, status_code=429, error=ERROR_RATE_LIMITED)
    try:
        keys = await deriver(request).derive(code)
    except DerivationBusyError:
        return login_page(request, status_code=503, error=ERROR_BUSY)
    with session_scope(services(request).engine) as db:
        tip = tips.tip_by_mailbox(db, keys.mailbox_id)
        if tip is None:
            return login_page(request, status_code=400, error=ERROR_CODE_UNKNOWN)
        cookie = services(request).sessions.start(
            db, kind=SESSION_KIND, subject=tip.id, secret=keys.tipster_identity.secret_bytes()
        )
    response = RedirectResponse(f"/{locale_of(request).code}/mailbox", status_code=303)
    set_cookie(response, request, SESSION_COOKIE, cookie, max_age=None)
    return response


def _open_session(request: Request) -> OpenSession | None:
    with session_scope(services(request).engine) as db:
        return services(request).sessions.open(
            db, request.cookies.get(SESSION_COOKIE), kind=SESSION_KIND, idle=_idle(request)
        )


def _mailbox_page(
    request: Request,
    session: OpenSession,
    *,
    status_code: int = 200,
    error: str | None = None,
    error_limit: int | None = None,
    notice: str | None = None,
    draft: str = "",
) -> Response:
    identity = crypto.X25519Identity(session.secret)
    with session_scope(services(request).engine) as db:
        tip = db.get(Tip, session.subject)
        if tip is None:
            return login_page(request, status_code=400, error=ERROR_CODE_UNKNOWN)
        answers = tips.read_answers(tip, identity)
        entries = tips.conversation(db, tip, identity)
        files = tips.tip_files(db, tip, identity)
        requests = handovers.pending_requests(db, tip)
    settings = services(request).settings
    return render(
        request,
        "resident/mailbox.html",
        status_code=status_code,
        purposes=(PURPOSE_REPLY, PURPOSE_LOGOUT, PURPOSE_CONSENT),
        consent_requests=requests,
        tip=tip,
        status_text=STATUS_TEXT.get(tip.status, STATUS_TEXT["new"]),
        answers=answers,
        entries=entries,
        files=files,
        error=error,
        error_limit=error_limit,
        notice=notice,
        draft=draft,
        max_files=settings.max_files,
        max_upload_mb=settings.max_upload_bytes // (1024 * 1024),
        max_message_chars=MAX_MESSAGE_CHARS,
    )


async def mailbox(request: Request) -> Response:
    session = _open_session(request)
    if session is None:
        return RedirectResponse(f"/{locale_of(request).code}/followup", status_code=303)
    return _mailbox_page(
        request, session, notice=NOTICE_SENT if request.query_params.get("sent") == "1" else None
    )


async def mailbox_reply(request: Request) -> Response:
    session = _open_session(request)
    if session is None:
        return RedirectResponse(f"/{locale_of(request).code}/followup", status_code=303)
    with session_scope(services(request).engine) as db:
        tip = db.get(Tip, session.subject)
        if tip is None:  # deleted while the session lived (retention): nothing left to answer
            return login_page(request, status_code=400, error=ERROR_CODE_UNKNOWN)
        tip_id, recipients = tip.id, tips.tip_recipients(db, tip)
    sinks: list[EncryptingSink] = []
    settings = services(request).settings

    async def open_sink(part: FilePart, fields: dict[str, str]) -> FileSink:
        check_csrf(request, fields.get("csrf"), purpose=PURPOSE_REPLY)
        sink = EncryptingSink(
            part, tip_id=tip_id, recipients=recipients, keep_original=fields.get("keep_original") == "yes"
        )
        sinks.append(sink)
        return sink

    fields: dict[str, str] = {}
    try:
        try:
            boundary = multipart_boundary(request.headers.get("content-type", ""))
            # What was read goes into `fields` as it arrives: a refusal still shows the draft.
            await read_multipart(
                request.stream(),
                boundary=boundary,
                open_sink=open_sink,
                max_files=settings.max_files,
                max_file_bytes=settings.max_upload_bytes,
                into=fields,
            )
            check_csrf(request, fields.get("csrf"), purpose=PURPOSE_REPLY)
        except CsrfError:
            return _mailbox_page(
                request, session, status_code=400, error=ERROR_EXPIRED, draft=fields.get("message", "")
            )
        except (BodyTooLargeError, FilesTooLargeError):
            return _mailbox_page(
                request,
                session,
                status_code=413,
                error=ERROR_TOO_LARGE,
                error_limit=settings.max_upload_bytes // (1024 * 1024),
                draft=fields.get("message", ""),
            )
        except FormError as error:
            return _mailbox_page(
                request,
                session,
                status_code=400,
                error=error.message,
                error_limit=error.limit,
                draft=fields.get("message", ""),
            )
        text = (fields.get("message") or "").replace("\r\n", "\n").strip()
        files = [s.result for s in sinks if s.result is not None]
        if not text and not files:
            return _mailbox_page(request, session, status_code=400, error=ERROR_MESSAGE_EMPTY)
        if len(text) > MAX_MESSAGE_CHARS:
            return _mailbox_page(
                request,
                session,
                status_code=400,
                error=ERROR_MESSAGE_TOO_LONG,
                error_limit=MAX_MESSAGE_CHARS,
                draft=text,
            )
        with session_scope(services(request).engine) as db:
            tip = db.get(Tip, session.subject)
            assert tip is not None
            tips.store_message(db, tip=tip, message_id=new_id(), author="tipster", text=text, files=files)
    finally:
        for sink in sinks:
            sink.discard()
    # Post/redirect/get: a reload does not send the message twice.
    return RedirectResponse(f"/{locale_of(request).code}/mailbox?sent=1", status_code=303)


async def logout(request: Request) -> Response:
    try:
        raw = parse_urlencoded(await request.body())
        check_csrf(request, raw.get("csrf"), purpose=PURPOSE_LOGOUT)
    except (FormError, CsrfError, BodyTooLargeError):
        session = _open_session(request)
        if session is None:
            return login_page(request)
        return _mailbox_page(request, session, status_code=400, error=ERROR_EXPIRED)
    with session_scope(services(request).engine) as db:
        services(request).sessions.end(db, request.cookies.get(SESSION_COOKIE))
    response = login_page(request, notice=NOTICE_LOGGED_OUT)
    delete_cookie(response, request, SESSION_COOKIE)
    return response


async def mailbox_consent(request: Request) -> Response:
    """The tipster's answer to a request to share the tip with another desk."""
    session = _open_session(request)
    if session is None:
        return RedirectResponse(f"/{locale_of(request).code}/followup", status_code=303)
    try:
        raw = parse_urlencoded(await request.body())
        check_csrf(request, raw.get("csrf"), purpose=PURPOSE_CONSENT)
        request_id = int(raw.get("request", ""))
    except (FormError, CsrfError, BodyTooLargeError, ValueError):
        return _mailbox_page(request, session, status_code=400, error=ERROR_EXPIRED)
    approve = raw.get("decision") == "approve"
    with session_scope(services(request).engine) as db:
        tip = db.get(Tip, session.subject)
        decided = tip is not None and handovers.decide(
            db, tip=tip, request_id=request_id, approve=approve, tipster=crypto.X25519Identity(session.secret)
        )
    if not decided:
        return _mailbox_page(request, session, status_code=400, error=ERROR_EXPIRED)
    return _mailbox_page(request, session, notice=NOTICE_SHARED if approve else NOTICE_NOT_SHARED)
