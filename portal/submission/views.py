"""Sending a tip: the form, the review of who receives it, sending, and the reply code.

    GET  /{lang}/tip        the form
    POST /{lang}/tip        check the answers; show the review (recipients, files) or the form with errors
    POST /{lang}/tip/send   the reviewed answers and the files, streamed and encrypted; the reply code
    POST /{lang}/tip/done   "have you saved it?"; the code again if not, else what happens next

The answers travel back to the browser in the review page's hidden fields rather than being kept on the
server between steps: nothing a resident wrote is stored before it is encrypted.
"""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

import crypto
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
from portal.network import services as network
from portal.network.catalogue import CATEGORIES, HOW_KNOWN
from portal.submission import forms
from portal.submission.replycodes import DerivationBusyError, MailboxDeriver
from portal.submission.services import store_tip
from portal.submission.uploads import EncryptingSink, new_id
from portal.web import check_csrf, locale_of, render, services, translate

PURPOSE_REVIEW = "tip-review"
PURPOSE_SEND = "tip-send"
PURPOSE_DONE = "tip-done"

ERROR_FORM_EXPIRED = N_(
    "This form has expired or was sent from another page. Please check it and send it again."
)
ERROR_TOO_LARGE = N_("What you sent is too large. Files may be at most %(limit)s MB together.")
ERROR_NO_RECIPIENT = N_(
    "We cannot receive this kind of tip for this municipality. Please choose another category."
)
ERROR_BUSY = N_("Many people are using the service right now. Please wait a minute and try again.")
AUTOMATIC_ACKNOWLEDGEMENT = N_(
    "Thank you for your tip. We have received it, and it will be read. If we have questions, you will find "
    "them here. This message was sent automatically."
)
ERROR_NOT_CONFIRMED = N_("Please confirm that you have checked who will receive your tip.")


def followup_url(request: Request) -> str:
    """Where to follow up, in full: the printed card must name the site, not just a path on it."""
    return f"{request.base_url}{locale_of(request).code}/followup"


def deriver(request: Request) -> MailboxDeriver:
    return services(request).extras["deriver"]  # type: ignore[no-any-return]


def _typed(fields: dict[str, str]) -> dict[str, str]:
    """The answers among the fields of a form, to fill it in again."""
    return {k: v for k, v in fields.items() if k in forms.TipAnswers.__dataclass_fields__}


def _municipality_codes(db: Session) -> frozenset[str]:
    return frozenset(m.code for m in network.municipalities(db))


def _form_page(
    request: Request,
    *,
    values: dict[str, str],
    errors: dict[str, forms.FieldError],
    status_code: int = 200,
    notice: str | None = None,
    notice_limit: int | None = None,
) -> Response:
    with session_scope(services(request).engine) as db:
        municipalities = network.municipalities(db)
    return render(
        request,
        "resident/tip_form.html",
        status_code=status_code,
        purposes=(PURPOSE_REVIEW,),
        values=values,
        # Missing keys read as "no error" in the template (which otherwise refuses undefined names).
        errors=defaultdict(lambda: None, errors),
        municipalities=municipalities,
        categories=CATEGORIES,
        how_known=HOW_KNOWN,
        limits=forms.TEXT_LIMITS,
        notice=notice,
        notice_limit=notice_limit,
    )


def _review_page(
    request: Request,
    *,
    answers: forms.TipAnswers,
    recipients: list[network.Recipient],
    status_code: int = 200,
    notice: str | None = None,
    notice_limit: int | None = None,
) -> Response:
    settings = services(request).settings
    return render(
        request,
        "resident/tip_review.html",
        status_code=status_code,
        purposes=(PURPOSE_SEND, PURPOSE_REVIEW),
        answers=answers,
        recipients=recipients,
        category_name=next(c.name for c in CATEGORIES if c.code == answers.category),
        how_known=dict(HOW_KNOWN),
        municipality_name=_municipality_name(request, answers.municipality),
        max_files=settings.max_files,
        max_upload_mb=settings.max_upload_bytes // (1024 * 1024),
        notice=notice,
        notice_limit=notice_limit,
    )


def _municipality_name(request: Request, code: str) -> str:
    with session_scope(services(request).engine) as db:
        municipality = network.municipality_by_code(db, code)
    return municipality.name if municipality else code


async def tip_form(request: Request) -> Response:
    return _form_page(
        request, values={"municipality": request.query_params.get("municipality", "")}, errors={}
    )


async def tip_review(request: Request) -> Response:
    """Check the answers; the emergency category shows 112 instead of a form."""
    raw: dict[str, str] = {}
    try:
        parse_urlencoded(await request.body(), into=raw)
    except BodyTooLargeError:
        return _form_page(
            request,
            values={},
            errors={},
            status_code=413,
            notice=forms.ERROR_TOO_LONG,
            notice_limit=forms.TEXT_LIMITS["what"],
        )
    except FormError as error:
        return _form_page(request, values=_typed(raw), errors={}, status_code=400, notice=error.message)
    values = _typed(raw)
    try:
        check_csrf(request, raw.get("csrf"), purpose=PURPOSE_REVIEW)
    except CsrfError:
        return _form_page(request, values=values, errors={}, status_code=400, notice=ERROR_FORM_EXPIRED)
    if raw.get("edit") == "yes":
        return _form_page(request, values=values, errors={})
    if forms.is_emergency(raw):
        return render(request, "resident/emergency.html")
    with session_scope(services(request).engine) as db:
        answers, errors = forms.validate(raw, municipalities=_municipality_codes(db))
        recipients = (
            network.recipients_for(db, municipality_code=answers.municipality, category=answers.category)
            if answers
            else []
        )
    if answers is None:
        return _form_page(request, values=values, errors=errors, status_code=400)
    if not recipients:
        return _form_page(
            request, values=values, errors={"category": forms.FieldError(ERROR_NO_RECIPIENT)}, status_code=400
        )
    return _review_page(request, answers=answers, recipients=recipients)


class _SendState:
    """What the streaming parse of /tip/send learns: the checked answers, keys and encrypted files."""

    def __init__(self) -> None:
        self.tip_id = new_id()
        self.answers: forms.TipAnswers | None = None
        self.recipients: list[network.Recipient] = []
        self.code: crypto.ReplyCode | None = None
        self.keys: crypto.MailboxKeys | None = None
        self.sinks: list[EncryptingSink] = []

    def discard(self) -> None:
        for sink in self.sinks:
            sink.discard()


class _Rejected(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def _prepare(request: Request, state: _SendState, fields: dict[str, str], *, body_read: bool) -> None:
    """Check the reviewed fields and derive the reply code keys: needed before any file is encrypted.

    A browser sends the parts in the order of the page, and the page puts the confirmation next to the send
    button, after the file input: before the first file (`body_read` false) it cannot be known yet, so it
    is checked once the whole body is read. Nothing is stored before that.
    """
    if state.answers is not None:
        if body_read:
            _check_confirmed(request, fields, answers=state.answers, recipients=state.recipients)
        return
    values = _typed(fields)
    try:
        check_csrf(request, fields.get("csrf"), purpose=PURPOSE_SEND)
    except CsrfError:
        raise _Rejected(
            _form_page(request, values=values, errors={}, status_code=400, notice=ERROR_FORM_EXPIRED)
        ) from None
    # The refusal pages read the database themselves: render them after this transaction ends (on SQLite
    # it holds the write lock, and a second one would wait for it until the busy timeout).
    with session_scope(services(request).engine) as db:
        answers, errors = forms.validate(fields, municipalities=_municipality_codes(db))
        recipients = (
            network.recipients_for(db, municipality_code=answers.municipality, category=answers.category)
            if answers
            else []
        )
    if answers is None:
        raise _Rejected(_form_page(request, values=values, errors=errors, status_code=400))
    if not recipients:
        raise _Rejected(
            _form_page(
                request,
                values=values,
                errors={"category": forms.FieldError(ERROR_NO_RECIPIENT)},
                status_code=400,
            )
        )
    if body_read:
        _check_confirmed(request, fields, answers=answers, recipients=recipients)
    code = crypto.ReplyCode.generate()
    try:
        keys = await deriver(request).derive(code)
    except DerivationBusyError:
        raise _Rejected(
            _review_page(request, answers=answers, recipients=recipients, status_code=503, notice=ERROR_BUSY)
        ) from None
    state.answers, state.recipients, state.code, state.keys = answers, recipients, code, keys


def _check_confirmed(
    request: Request,
    fields: dict[str, str],
    *,
    answers: forms.TipAnswers,
    recipients: list[network.Recipient],
) -> None:
    if fields.get("confirm") != "yes":
        raise _Rejected(
            _review_page(
                request, answers=answers, recipients=recipients, status_code=400, notice=ERROR_NOT_CONFIRMED
            )
        )


def _file_recipients(state: _SendState) -> list[crypto.X25519Recipient]:
    assert state.keys is not None
    desks = [crypto.X25519Recipient.parse(r.public_key) for r in state.recipients]
    return [*desks, state.keys.tipster_identity.recipient]


async def tip_send(request: Request) -> Response:
    state = _SendState()
    settings = services(request).settings

    async def open_sink(part: FilePart, fields: dict[str, str]) -> FileSink:
        await _prepare(request, state, fields, body_read=False)
        sink = EncryptingSink(
            part,
            tip_id=state.tip_id,
            recipients=_file_recipients(state),
            keep_original=fields.get("keep_original") == "yes",
        )
        state.sinks.append(sink)
        return sink

    fields: dict[str, str] = {}
    try:
        try:
            boundary = multipart_boundary(request.headers.get("content-type", ""))
            # What was read goes into `fields` as it arrives: a refusal still shows what the resident typed.
            await read_multipart(
                request.stream(),
                boundary=boundary,
                open_sink=open_sink,
                max_files=settings.max_files,
                max_file_bytes=settings.max_upload_bytes,
                into=fields,
            )
            await _prepare(request, state, fields, body_read=True)
        except (BodyTooLargeError, FilesTooLargeError):
            return _resend_page(
                request,
                state,
                fields,
                status_code=413,
                notice=ERROR_TOO_LARGE,
                notice_limit=settings.max_upload_bytes // (1024 * 1024),
            )
        except FormError as error:
            return _resend_page(
                request, state, fields, status_code=400, notice=error.message, notice_limit=error.limit
            )
        except _Rejected as rejected:
            return rejected.response
        assert state.answers is not None and state.keys is not None and state.code is not None
        files = [sink.result for sink in state.sinks if sink.result is not None]
        with session_scope(services(request).engine) as db:
            municipality = network.municipality_by_code(db, state.answers.municipality)
            assert municipality is not None and municipality.id is not None  # checked in _prepare
            tip = store_tip(
                db,
                tip_id=state.tip_id,
                answers=state.answers,
                municipality_id=municipality.id,
                language=locale_of(request).code,
                desks=state.recipients,
                keys=state.keys,
                kdf=deriver(request).params.name,
                files=files,
                acknowledgement=str(translate(request, AUTOMATIC_ACKNOWLEDGEMENT)),
            )
            case_number = tip.case_number
    finally:
        state.discard()
    return render(
        request,
        "resident/tip_sent.html",
        purposes=(PURPOSE_DONE,),
        reply_code=state.code.grouped(),
        case_number=case_number,
        file_count=len(files),
        followup_url=followup_url(request),
    )


def _resend_page(
    request: Request,
    state: _SendState,
    fields: dict[str, str],
    *,
    status_code: int,
    notice: str,
    notice_limit: int | None = None,
) -> Response:
    """After a failed send: the review again if the answers were fine (files must be chosen again)."""
    if state.answers is not None:
        return _review_page(
            request,
            answers=state.answers,
            recipients=state.recipients,
            status_code=status_code,
            notice=notice,
            notice_limit=notice_limit,
        )
    values = _typed(fields)
    return _form_page(
        request, values=values, errors={}, status_code=status_code, notice=notice, notice_limit=notice_limit
    )


async def tip_done(request: Request) -> Response:
    """The "have you saved it?" step. The code comes back in the POST body only, never in a URL."""
    try:
        raw = parse_urlencoded(await request.body())
        check_csrf(request, raw.get("csrf"), purpose=PURPOSE_DONE)
        code = crypto.parse_reply_code(raw.get("reply_code", ""))
    except (FormError, CsrfError, crypto.ReplyCodeError, BodyTooLargeError):
        return render(request, "resident/tip_done.html", status_code=400)
    if raw.get("saved") != "yes":
        return render(
            request,
            "resident/tip_sent.html",
            status_code=400,
            purposes=(PURPOSE_DONE,),
            reply_code=code.grouped(),
            case_number=raw.get("case_number", "")[:16],
            file_count=None,
            followup_url=followup_url(request),
            notice=N_("Please save your reply code before you leave this page. Tick the box when you have."),
        )
    return render(request, "resident/tip_done.html")
