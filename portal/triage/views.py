"""Staff views: log in and out, the inbox, a tip, and what an officer does with it.

GET/POST /staff/login          passphrase + TOTP
POST     /staff/logout
GET      /staff/               the inbox (filters and paging in the query string)
GET      /staff/tips/{id}      a tip, decrypted
POST     /staff/tips/{id}/reply | note | status | assign
GET      /staff/tips/{id}/files/{file}   a file, decrypted, always as a download
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlencode

import anyio.to_thread
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

import crypto
from portal import ratelimit
from portal.accounts.login import authenticate
from portal.accounts.models import DeskMembership, StaffAccount
from portal.audit import log as audit
from portal.csrf import CsrfError
from portal.db import read_session, session_scope, utcnow
from portal.i18n import N_
from portal.network import services as network
from portal.network.catalogue import CATEGORIES
from portal.network.models import Desk
from portal.retention import services as retention
from portal.triage import export, handover
from portal.triage import services as triage
from portal.triage.web import (
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    SESSION_KIND,
    STAFF_BY_CODE,
    Staff,
    check_staff_csrf,
    current_staff,
    login_redirect,
    read_form,
    render_staff,
)
from portal.web import delete_cookie, services, set_cookie

LOGIN_PER_ACCOUNT_PER_MINUTE = 5
LOGIN_GLOBAL_PER_MINUTE = 60
MAX_TEXT = 10_000

ERROR_LOGIN = N_("The username, passphrase or code is wrong, or the code was already used.")
ERROR_THROTTLED = N_("Too many attempts. Wait a minute and try again.")
ERROR_EXPIRED = N_("The form expired. Please try again.")
ERROR_EMPTY = N_("Please write something first.")
ERROR_TOO_LONG = N_("The text is too long.")
NOTICE_LOGGED_OUT = N_("You are logged out.")
NOTICE_SAVED = N_("Saved.")

_login_slots = asyncio.Semaphore(2)  # Argon2id over 256 MiB per login; two at a time per process


def not_found(request: Request, staff: Staff) -> Response:
    """One answer for "no such tip" and "not your tip": which one is not said."""
    return render_staff(request, "staff/not_found.html", staff=staff, status_code=404, purposes=("logout",))


def form_expired(request: Request, staff: Staff) -> Response:
    """The answer to a tip form whose CSRF token is missing, forged or old: the message and a link back.

    Not the tip page again: a forged request must not decrypt the tip into its response, mark it read or
    audit an opening in the officer's name (found by tests/attacks/test_csrf_everywhere.py).
    """
    try:
        with read_session(services(request).engine) as db:
            triage.reachable_tip(db, _tip_id(request), staff.desk_keys)
    except triage.NotAllowedError:
        return not_found(request, staff)  # as for a good token: whether the tip exists is not said
    return render_staff(
        request,
        "staff/form_expired.html",
        staff=staff,
        status_code=400,
        purposes=("logout",),
        error=ERROR_EXPIRED,
        back=f"/staff/tips/{_tip_id(request)}",
    )


def _account_bucket(username: str) -> str:
    folded = unicodedata.normalize("NFKC", username).strip().casefold()
    return "staff-login:" + hashlib.sha256(folded.encode("utf-8")).hexdigest()[:32]


async def login_form(request: Request) -> Response:
    if request.query_params.get("lang") in STAFF_BY_CODE:
        response = RedirectResponse("/staff/login", status_code=303)
        set_cookie(response, request, LANGUAGE_COOKIE, request.query_params["lang"], max_age=365 * 24 * 3600)
        return response
    return render_staff(request, "staff/login.html", staff=None, purposes=("login",))


async def login(request: Request) -> Response:
    form = await read_form(request)
    try:
        check_staff_csrf(request, form.get("csrf"), purpose="login")
    except CsrfError:
        return render_staff(
            request, "staff/login.html", staff=None, status_code=400, purposes=("login",), error=ERROR_EXPIRED
        )
    username = form.get("username", "")[:100]
    with session_scope(services(request).engine) as db:
        allowed = ratelimit.take(db, "staff-login", limit=LOGIN_GLOBAL_PER_MINUTE) and ratelimit.take(
            db, _account_bucket(username), limit=LOGIN_PER_ACCOUNT_PER_MINUTE
        )
    if not allowed:
        return render_staff(
            request,
            "staff/login.html",
            staff=None,
            status_code=429,
            purposes=("login",),
            error=ERROR_THROTTLED,
        )
    params = services(request).extras.get("keywrap_params", crypto.KEYWRAP_PARAMS_V1)
    with session_scope(services(request).engine) as db:
        async with _login_slots:
            result = await anyio.to_thread.run_sync(
                lambda: authenticate(
                    db,
                    username=username,
                    passphrase=form.get("passphrase", ""),
                    totp_code=form.get("code", "")[:12],
                    signing_key=services(request).settings.signing_key,
                    keywrap_params=params,
                )
            )
        if result is None:
            # Never the typed username itself: a passphrase typed into the wrong field would then sit in the
            # audit log in clear. Only which existing account was tried, if any.
            tried = db.exec(select(StaffAccount.id).where(StaffAccount.username == username.strip())).first()
            audit.record(db, "staff.login-failed", actor="anonymous", detail={"account": tried})
            failed = True
        else:
            failed = False
            assert result.account.id is not None
            cookie = services(request).sessions.start(
                db, kind=SESSION_KIND, subject=str(result.account.id), secret=result.identity.secret_bytes()
            )
            audit.record(db, "staff.login", actor=f"staff:{result.account.id}")
    if failed:
        return render_staff(
            request, "staff/login.html", staff=None, status_code=400, purposes=("login",), error=ERROR_LOGIN
        )
    response = RedirectResponse("/staff/", status_code=303)
    set_cookie(response, request, SESSION_COOKIE, cookie, max_age=None)
    return response


async def logout(request: Request) -> Response:
    form = await read_form(request)
    staff = current_staff(request)
    try:
        check_staff_csrf(request, form.get("csrf"), purpose="logout")
    except CsrfError:
        return login_redirect() if staff is None else RedirectResponse("/staff/", status_code=303)
    with session_scope(services(request).engine) as db:
        services(request).sessions.end(db, request.cookies.get(SESSION_COOKIE))
        if staff is not None:
            audit.record(db, "staff.logout", actor=staff.actor)
    response = render_staff(
        request, "staff/login.html", staff=None, purposes=("login",), notice=NOTICE_LOGGED_OUT
    )
    delete_cookie(response, request, SESSION_COOKIE)
    return response


async def inbox(request: Request) -> Response:
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    filters = triage.InboxFilter.from_query(request.query_params)
    # Only reads: on SQLite a read session takes no write lock, so tip submissions never wait for the inbox.
    with read_session(services(request).engine) as db:
        page = triage.inbox(db, staff_id=staff.id, desk_ids=list(staff.desk_keys), filters=filters)
        desks = list(db.exec(select(Desk).where(Desk.id.in_(list(staff.desk_keys) or [-1]))))  # type: ignore[union-attr]
        municipalities = network.municipalities(db)
        waiting = _waiting_for_grant(db, staff)
    return render_staff(
        request,
        "staff/inbox.html",
        staff=staff,
        purposes=("logout",),
        page=page,
        filters=filters,
        desks=desks,
        municipalities=municipalities,
        categories=CATEGORIES,
        statuses=triage.STATUSES,
        now=utcnow(),
        waiting=waiting,
        request_query=lambda **changes: urlencode(
            {k: v for k, v in {**dict(request.query_params), **changes}.items() if v not in ("", None)}
        ),
    )


def _waiting_for_grant(db: Session, staff: Staff) -> list[str]:
    """Desks this person is a member of but holds no key for yet: they wait for a grant."""
    memberships = db.exec(select(DeskMembership.desk_id).where(DeskMembership.staff_id == staff.id)).all()
    missing = [d for d in memberships if d not in staff.desk_keys]
    return [desk.name for desk in db.exec(select(Desk).where(Desk.id.in_(missing or [-1])))]  # type: ignore[union-attr]


def _tip_id(request: Request) -> str:
    value = str(request.path_params.get("tip_id", ""))
    return value if re.fullmatch(r"[0-9a-f]{32}", value) else ""


async def tip_page(
    request: Request, *, status_code: int = 200, error: str | None = None, notice: str | None = None
) -> Response:
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    try:
        with session_scope(services(request).engine) as db:
            opened = triage.open_tip(
                db, tip_id=_tip_id(request), staff_id=staff.id, actor=staff.actor, desk_keys=staff.desk_keys
            )
            trail = audit.trail(db, opened.tip.id)
            targets = handover.handover_targets(db, opened.tip.id)
            labels = triage.labels_of(db, opened.tip.id)
            canned = triage.canned_replies(
                db, desk_ids=[d.id for d in opened.desks if d.id is not None], language=opened.tip.language
            )
            chosen = next((c for c in canned if str(c.id) == request.query_params.get("canned")), None)
            past_handovers = handover.handovers_of(db, opened.tip.id)
            kept = retention.tip_retention(db, opened.tip)
            colleagues = list(
                db.exec(
                    select(StaffAccount)
                    .join(DeskMembership, DeskMembership.staff_id == StaffAccount.id)  # type: ignore[arg-type]
                    .where(DeskMembership.desk_id.in_([d.id for d in opened.desks]))  # type: ignore[attr-defined]
                    .distinct()
                )
            )
    except triage.NotAllowedError:
        return not_found(request, staff)
    return render_staff(
        request,
        "staff/tip.html",
        staff=staff,
        status_code=status_code,
        purposes=("logout", "reply", "note", "status", "assign", "handover", "export", "labels", "hold"),
        retention=kept,
        retention_grace_days=retention.ACTIVITY_GRACE.days,
        labels=labels,
        tip_labels=triage.TIP_LABELS,
        canned=canned,
        draft=chosen.body if chosen else "",
        handover_targets=targets,
        handovers=past_handovers,
        opened=opened,
        trail=trail,
        colleagues=colleagues,
        category=next((c for c in CATEGORIES if c.code == opened.tip.category), None),
        statuses=triage.STATUSES,
        outcomes=triage.OUTCOMES,
        error=error,
        notice=notice,
    )


async def tip_view(request: Request) -> Response:
    return await tip_page(request, notice=NOTICE_SAVED if request.query_params.get("saved") == "1" else None)


async def _tip_action(request: Request, purpose: str) -> tuple[Staff, dict[str, str]] | Response:
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    form = await read_form(request)
    try:
        check_staff_csrf(request, form.get("csrf"), purpose=purpose)
    except CsrfError:
        return form_expired(request, staff)
    return staff, form


def _saved(request: Request) -> Response:
    return RedirectResponse(f"/staff/tips/{_tip_id(request)}?saved=1", status_code=303)


async def _text_action(request: Request, purpose: str) -> Response:
    checked = await _tip_action(request, purpose)
    if isinstance(checked, Response):
        return checked
    staff, form = checked
    text = form.get("text", "").replace("\r\n", "\n").strip()
    if not text:
        return await tip_page(request, status_code=400, error=ERROR_EMPTY)
    if len(text) > MAX_TEXT:
        return await tip_page(request, status_code=400, error=ERROR_TOO_LONG)
    try:
        with session_scope(services(request).engine) as db:
            if purpose == "reply":
                desk = form.get("desk", "")
                triage.reply(
                    db,
                    tip_id=_tip_id(request),
                    text=text,
                    desk_id=int(desk) if desk.isdigit() else None,
                    actor=staff.actor,
                    desk_keys=staff.desk_keys,
                )
            else:
                triage.add_note(
                    db,
                    tip_id=_tip_id(request),
                    text=text,
                    staff_id=staff.id,
                    actor=staff.actor,
                    desk_keys=staff.desk_keys,
                )
    except triage.NotAllowedError:
        return not_found(request, staff)
    return _saved(request)


async def tip_reply(request: Request) -> Response:
    return await _text_action(request, "reply")


async def tip_note(request: Request) -> Response:
    return await _text_action(request, "note")


async def tip_status(request: Request) -> Response:
    checked = await _tip_action(request, "status")
    if isinstance(checked, Response):
        return checked
    staff, form = checked
    try:
        with session_scope(services(request).engine) as db:
            triage.set_status(
                db,
                tip_id=_tip_id(request),
                status=form.get("status", ""),
                outcome=form.get("outcome") or None,
                actor=staff.actor,
                desk_keys=staff.desk_keys,
            )
    except triage.NotAllowedError:
        return not_found(request, staff)
    except ValueError:
        return await tip_page(
            request, status_code=400, error=N_("Choose a status, and an outcome when you close a tip.")
        )
    return _saved(request)


async def tip_assign(request: Request) -> Response:
    checked = await _tip_action(request, "assign")
    if isinstance(checked, Response):
        return checked
    staff, form = checked
    value = form.get("assignee", "")
    try:
        with session_scope(services(request).engine) as db:
            assignee = int(value) if value.isdigit() else None
            if assignee is not None:
                _tip, mine = triage.reachable_tip(db, _tip_id(request), staff.desk_keys)
                member = db.exec(
                    select(DeskMembership).where(
                        DeskMembership.staff_id == assignee, col(DeskMembership.desk_id).in_(mine)
                    )
                ).first()
                if member is None:
                    raise triage.NotAllowedError()
            triage.assign(
                db,
                tip_id=_tip_id(request),
                assignee_id=assignee,
                actor=staff.actor,
                desk_keys=staff.desk_keys,
            )
    except triage.NotAllowedError:
        return not_found(request, staff)
    return _saved(request)


def _download_name(name: str) -> str:
    """An ASCII fallback and an RFC 5987 UTF-8 name, with nothing that could break the header."""
    cleaned = "".join(c for c in name if c.isprintable() and c not in '"\\/\r\n;') or "file"
    ascii_name = cleaned.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


async def tip_file(request: Request) -> Response:
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    engine = services(request).engine
    file_id = str(request.path_params.get("file_id", ""))
    try:
        with session_scope(engine) as db:
            meta, _chunks = triage.open_file(
                db, tip_id=_tip_id(request), file_id=file_id, actor=staff.actor, desk_keys=staff.desk_keys
            )
    except triage.NotAllowedError:
        return not_found(request, staff)

    def stream() -> Iterator[bytes]:
        # A read-only session for the body: rows are read one by one while the response is sent. The
        # download was audited once, above.
        with read_session(engine) as db:
            _meta, chunks = triage.open_file(
                db, tip_id=_tip_id(request), file_id=file_id, actor=None, desk_keys=staff.desk_keys
            )
            yield from chunks

    return StreamingResponse(
        stream(),
        media_type="application/octet-stream",
        headers={
            "content-disposition": _download_name(str(meta.get("name", "file"))),
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; sandbox",
        },
    )


ERROR_LEGAL_BASIS = N_("Write the legal provision that allows the hand-over, or ask the tipster instead.")


async def tip_handover(request: Request) -> Response:
    """Ask the tipster's consent to involve another desk, or hand over at once on a recorded legal basis."""
    checked = await _tip_action(request, "handover")
    if isinstance(checked, Response):
        return checked
    staff, form = checked
    target = form.get("desk", "")
    if not target.isdigit():
        return await tip_page(request, status_code=400, error=N_("Choose the desk to hand the tip to."))
    try:
        with session_scope(services(request).engine) as db:
            if form.get("basis") == "legal-basis":
                handover.hand_over_on_legal_basis(
                    db,
                    tip_id=_tip_id(request),
                    to_desk_id=int(target),
                    legal_basis=form.get("legal_basis", ""),
                    staff_id=staff.id,
                    actor=staff.actor,
                    desk_keys=staff.desk_keys,
                )
            else:
                handover.request_consent(
                    db,
                    tip_id=_tip_id(request),
                    to_desk_id=int(target),
                    staff_id=staff.id,
                    actor=staff.actor,
                    desk_keys=staff.desk_keys,
                )
    except triage.NotAllowedError:
        return not_found(request, staff)
    except ValueError:
        return await tip_page(request, status_code=400, error=ERROR_LEGAL_BASIS)
    return _saved(request)


ERROR_RECIPIENT = N_("That is not an age recipient. It starts with age1.")


async def tip_export(request: Request) -> Response:
    """The tip and its files as an age file to a recipient the officer gives, or as a page to print."""
    checked = await _tip_action(request, "export")
    if isinstance(checked, Response):
        return checked
    staff, form = checked
    if form.get("format") == "print":
        try:
            with session_scope(services(request).engine) as db:
                opened = triage.open_tip(
                    db,
                    tip_id=_tip_id(request),
                    staff_id=staff.id,
                    actor=staff.actor,
                    desk_keys=staff.desk_keys,
                )
                audit.record(db, "tip.printed", actor=staff.actor, tip_id=opened.tip.id)
        except triage.NotAllowedError:
            return not_found(request, staff)
        return render_staff(request, "staff/tip_print.html", staff=staff, purposes=("logout",), opened=opened)
    try:
        recipient = crypto.X25519Recipient.parse(form.get("recipient", "")[:200])
    except crypto.KeyFormatError:
        return await tip_page(request, status_code=400, error=ERROR_RECIPIENT)
    try:
        with session_scope(services(request).engine) as db:
            case_number, archive = export.export_to_age(
                db, tip_id=_tip_id(request), recipient=recipient, staff_id=staff.id, actor=staff.actor,
                desk_keys=staff.desk_keys,
            )  # fmt: skip
    except triage.NotAllowedError:
        return not_found(request, staff)

    def stream() -> Iterator[bytes]:
        with archive:
            while data := archive.read(crypto.CHUNK_SIZE):
                yield data

    return StreamingResponse(
        stream(),
        media_type="application/octet-stream",
        headers={"content-disposition": _download_name(f"{case_number}.tar.age")},
    )


async def tip_labels(request: Request) -> Response:
    checked = await _tip_action(request, "labels")
    if isinstance(checked, Response):
        return checked
    staff, _form = checked
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    try:
        with session_scope(services(request).engine) as db:
            triage.set_labels(
                db,
                tip_id=_tip_id(request),
                labels=form.get("label", []),
                actor=staff.actor,
                desk_keys=staff.desk_keys,
            )
    except triage.NotAllowedError:
        return not_found(request, staff)
    return _saved(request)
