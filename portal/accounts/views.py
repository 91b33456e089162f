"""Enrolment views: the page behind an invitation link, and its form.

GET  /staff/enrol/{token}   passphrase (twice) and TOTP set-up: QR code, the secret as text, a first code
POST /staff/enrol/{token}

An unknown, used or expired link gets one translated page (404) that does not say which. Nothing is
written until every field is right; the passphrases are never sent back into the page.
"""

from __future__ import annotations

import asyncio
import hashlib

import anyio.to_thread
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

import crypto
from portal import ratelimit
from portal.accounts import enrolment
from portal.accounts.enrolment import EnrolmentError, InvalidInviteError, PendingEnrolment
from portal.accounts.passphrases import MIN_LENGTH
from portal.csrf import CsrfError
from portal.db import session_scope
from portal.i18n import N_
from portal.triage.web import check_staff_csrf, read_form, render_staff, staff_locale
from portal.web import services

CSRF_PURPOSE = "enrol"
ATTEMPTS_PER_MINUTE = 10  # per link: a re-enrolment checks the current passphrase, so bound the guessing

ERROR_EXPIRED = N_("The form expired. Please try again.")
ERROR_THROTTLED = N_("Too many attempts. Wait a minute and try again.")
NOTICE_ENROLLED = N_("You are enrolled. Log in with your passphrase and the next code your app shows.")

# Argon2id over 256 MiB for the key wrap, as at login: a few at a time per process.
_enrol_slots = asyncio.Semaphore(2)


def _token(request: Request) -> str:
    return str(request.path_params.get("token", ""))


def _invalid(request: Request) -> Response:
    return render_staff(request, "staff/enrol_invalid.html", staff=None, status_code=404)


def _grouped(secret: str) -> str:
    # Groups of four are easier to type into an app by hand.
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _form(
    request: Request,
    pending: PendingEnrolment,
    *,
    secret: str | None = None,
    status_code: int = 200,
    errors: dict[str, list[enrolment.Problem]] | None = None,
    error: str | None = None,
) -> Response:
    """The enrolment page; `secret` (already in the person's app, perhaps) is kept, else a new one."""
    secret = secret or enrolment.new_totp_secret()
    token = _token(request)
    signing_key = services(request).settings.signing_key
    return render_staff(
        request,
        "staff/enrol.html",
        staff=None,
        status_code=status_code,
        purposes=(CSRF_PURPOSE,),
        token=token,
        username=pending.account.username,
        renewing=pending.renewing,
        qr_code=Markup(enrolment.qr_svg(enrolment.totp_uri(secret, username=pending.account.username))),  # noqa: S704
        secret_text=_grouped(secret),
        signed_secret=enrolment.sign_totp_secret(secret, token=token, signing_key=signing_key),
        errors=errors or {},
        error=error,
        min_length=MIN_LENGTH,
    )


async def enrol_form(request: Request) -> Response:
    with session_scope(services(request).engine) as db:
        try:
            pending = enrolment.find_invite(db, _token(request))
        except InvalidInviteError:
            return _invalid(request)
    return _form(request, pending)


def _bucket(token: str) -> str:
    return "staff-enrol:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]


async def enrol(request: Request) -> Response:
    form = await read_form(request)
    token = _token(request)
    signing_key = services(request).settings.signing_key
    engine = services(request).engine
    with session_scope(engine) as db:
        try:
            pending = enrolment.find_invite(db, token)
        except InvalidInviteError:
            return _invalid(request)
        allowed = ratelimit.take(db, _bucket(token), limit=ATTEMPTS_PER_MINUTE)
    kept = enrolment.read_totp_secret(form.get("totp", ""), token=token, signing_key=signing_key)
    try:
        check_staff_csrf(request, form.get("csrf"), purpose=CSRF_PURPOSE)
    except CsrfError:
        return _form(request, pending, secret=kept, status_code=400, error=ERROR_EXPIRED)
    if not allowed:
        return _form(request, pending, secret=kept, status_code=429, error=ERROR_THROTTLED)
    params = services(request).extras.get("keywrap_params", crypto.KEYWRAP_PARAMS_V1)
    language = staff_locale(request).code
    try:
        with session_scope(engine) as db:
            async with _enrol_slots:
                await anyio.to_thread.run_sync(
                    lambda: enrolment.enrol(
                        db,
                        token=token,
                        passphrase=form.get("passphrase", ""),
                        repeated=form.get("repeat", ""),
                        signed_totp_secret=form.get("totp", ""),
                        totp_code=form.get("code", ""),
                        signing_key=signing_key,
                        language=language,
                        keywrap_params=params,
                    )
                )
    except InvalidInviteError:
        return _invalid(request)
    except EnrolmentError as refused:
        return _form(
            request,
            pending,
            secret=None if refused.new_secret else kept,
            status_code=400,
            errors=refused.problems,
        )
    return render_staff(request, "staff/login.html", staff=None, purposes=("login",), notice=NOTICE_ENROLLED)
