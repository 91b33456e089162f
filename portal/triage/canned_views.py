"""The pages where a desk lead keeps the desk's canned replies (portal.triage.canned has the rules).

GET  /staff/desks/{id}/canned                         the replies, the languages each has and still lacks,
                                                       and the form for a new reply
POST /staff/desks/{id}/canned                         language, title, body: a new reply
GET  /staff/desks/{id}/canned/{key}/{lang}            one language version, to write or change
POST /staff/desks/{id}/canned/{key}/{lang}            title, body: save that version
POST /staff/desks/{id}/canned/{key}/{lang}/delete     delete that version
POST /staff/desks/{id}/canned/{key}/delete            confirm=yes: delete the reply in every language

Anyone but a desk lead who is a member of the desk gets the staff app's 404 (as for a desk that does not
exist), before a form is read; a logged-out visitor gets the login page.
"""

from __future__ import annotations

import functools
from typing import Any

from babel import Locale as BabelLocale
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import i18n
from portal.csrf import CsrfError
from portal.db import read_session, session_scope
from portal.formdata import FormError, parse_urlencoded
from portal.i18n import N_
from portal.middleware import BodyTooLargeError
from portal.network.models import Desk
from portal.triage import canned
from portal.triage.web import (
    Staff,
    check_staff_csrf,
    current_staff,
    login_redirect,
    render_staff,
    staff_locale,
)
from portal.web import services

ERROR_EXPIRED = N_("The form expired. Please try again.")
ERROR_FIELDS = N_("Please correct the marked fields.")
ERROR_UNREADABLE = N_("The form could not be read, or a field was far too long. Nothing was saved.")
ERROR_CONFIRM = N_("Nothing was deleted. Tick the box to confirm that the reply goes in every language.")
ERROR_CHANGED = N_(
    "This reply was changed or deleted meanwhile. Nothing was saved; please check and try again."
)
NOTICES = {
    "created": N_("The reply was saved. Add it in the other languages too."),
    "saved": N_("The reply was saved."),
    "deleted-version": N_("The reply in that language was deleted."),
    "deleted": N_("The reply was deleted in every language."),
}
PURPOSES = ("logout", "canned-create", "canned-save", "canned-delete")
FIELDS = ("language", "title", "body")


def _desk_id(request: Request) -> int:
    return int(request.path_params["desk_id"])


def _not_found(request: Request, staff: Staff) -> Response:
    return render_staff(request, "staff/not_found.html", staff=staff, status_code=404, purposes=("logout",))


def _lead(request: Request) -> Staff | Response:
    """The logged-in desk lead of this desk; else the login page, or a 404 that says nothing more."""
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    with read_session(services(request).engine) as db:
        allowed = canned.may_edit(db, desk_id=_desk_id(request), account=staff.account)
    return staff if allowed else _not_found(request, staff)


def _key_and_language(request: Request) -> tuple[str, str] | None:
    key = str(request.path_params.get("key", ""))
    language = str(request.path_params.get("language", ""))
    if not canned.is_key(key) or language not in i18n.BY_CODE:
        return None
    return key, language


async def _form(request: Request) -> dict[str, str] | None:
    """The posted fields; None for a body that is not a small, readable form."""
    try:
        return parse_urlencoded(await request.body())
    except (FormError, BodyTooLargeError):
        return None


async def _post(request: Request, purpose: str) -> tuple[Staff, dict[str, str]] | Response:
    """The desk lead and the form, or the response that ends the request with nothing changed."""
    checked = _lead(request)
    if isinstance(checked, Response):
        return checked
    form = await _form(request)
    if form is None:
        return _after_refusal(request, checked, ERROR_UNREADABLE)
    try:
        check_staff_csrf(request, form.get("csrf"), purpose=purpose)
    except CsrfError:
        return _after_refusal(request, checked, ERROR_EXPIRED, values=form)
    return checked, form


def _after_refusal(
    request: Request,
    staff: Staff,
    error: str,
    *,
    values: dict[str, str] | None = None,
    status_code: int = 400,
) -> Response:
    """The page the form was on, again, with the error (and what was typed); nothing was changed."""
    kept = {name: (values or {}).get(name, "") for name in FIELDS}
    if _key_and_language(request) is not None and not request.url.path.endswith("/delete"):
        return _version_page(request, staff, status_code=status_code, error=error, values=kept)
    return _list_page(request, staff, status_code=status_code, error=error, values=kept)


def _done(request: Request, result: str, suffix: str = "") -> Response:
    return RedirectResponse(f"/staff/desks/{_desk_id(request)}/canned{suffix}?done={result}", status_code=303)


@functools.cache
def language_names(staff_babel: str) -> dict[str, str]:
    """The launch languages named in the staff member's language ("arabiska", "persia (Afganistan)")."""
    return {
        loc.code: BabelLocale.parse(loc.babel).get_display_name(staff_babel) or loc.english_name
        for loc in i18n.LOCALES
    }


def _render(request: Request, template: str, staff: Staff, *, status_code: int, **context: Any) -> Response:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    if context.get("error") is None and status_code == 200:
        context["notice"] = NOTICES.get(request.query_params.get("done", ""))
    return render_staff(
        request,
        template,
        staff=staff,
        status_code=status_code,
        purposes=PURPOSES,
        resident_locales=i18n.LOCALES,
        language_names=language_names(staff_locale(request, staff.account).babel),
        max_title=canned.MAX_TITLE,
        max_body=canned.MAX_BODY,
        **context,
    )


def _list_page(request: Request, staff: Staff, *, status_code: int = 200, **context: Any) -> Response:
    with read_session(services(request).engine) as db:
        desk = db.get(Desk, _desk_id(request))
        replies = canned.replies_of(db, _desk_id(request))
    if desk is None:
        return _not_found(request, staff)
    return _render(
        request,
        "staff/canned_list.html",
        staff,
        status_code=status_code,
        desk=desk,
        replies=replies,
        staff_language=staff.account.language,
        **context,
    )


def _version_page(request: Request, staff: Staff, *, status_code: int = 200, **context: Any) -> Response:
    found = _key_and_language(request)
    if found is None:
        return _not_found(request, staff)
    key, language = found
    with read_session(services(request).engine) as db:
        desk = db.get(Desk, _desk_id(request))
        reply = canned.reply_of(db, desk_id=_desk_id(request), key=key)
    if desk is None or reply is None:
        return _not_found(request, staff)
    version = reply.versions.get(language)
    if "values" not in context:
        context["values"] = {"title": version.title, "body": version.body} if version else {}
    return _render(
        request,
        "staff/canned_edit.html",
        staff,
        status_code=status_code,
        desk=desk,
        reply=reply,
        version=version,
        language=i18n.BY_CODE[language],
        staff_language=staff.account.language,
        **context,
    )


async def canned_list(request: Request) -> Response:
    checked = _lead(request)
    return checked if isinstance(checked, Response) else _list_page(request, checked)


async def canned_version(request: Request) -> Response:
    checked = _lead(request)
    return checked if isinstance(checked, Response) else _version_page(request, checked)


async def canned_create(request: Request) -> Response:
    posted = await _post(request, "canned-create")
    if isinstance(posted, Response):
        return posted
    staff, form = posted
    draft = canned.check_draft(form.get("language", ""), form.get("title", ""), form.get("body", ""))
    if not isinstance(draft, canned.Draft):
        values = {name: form.get(name, "") for name in FIELDS}
        return _list_page(request, staff, status_code=400, error=ERROR_FIELDS, errors=draft, values=values)
    with session_scope(services(request).engine) as db:
        key = canned.create_reply(db, draft, desk_id=_desk_id(request), actor=staff.actor)
    return _done(request, "created", f"/{key}/{draft.language}")


async def canned_save(request: Request) -> Response:
    posted = await _post(request, "canned-save")
    if isinstance(posted, Response):
        return posted
    staff, form = posted
    found = _key_and_language(request)
    if found is None:
        return _not_found(request, staff)
    key, language = found
    draft = canned.check_draft(language, form.get("title", ""), form.get("body", ""))
    if not isinstance(draft, canned.Draft):
        values = {name: form.get(name, "") for name in FIELDS}
        return _version_page(request, staff, status_code=400, error=ERROR_FIELDS, errors=draft, values=values)
    try:
        with session_scope(services(request).engine) as db:
            canned.save_version(db, draft, desk_id=_desk_id(request), key=key, actor=staff.actor)
    except canned.CannedReplyError:
        return _list_page(request, staff, status_code=409, error=ERROR_CHANGED)
    return _done(request, "saved")


async def canned_delete_version(request: Request) -> Response:
    posted = await _post(request, "canned-delete")
    if isinstance(posted, Response):
        return posted
    staff, _form = posted
    found = _key_and_language(request)
    if found is None:
        return _not_found(request, staff)
    key, language = found
    try:
        with session_scope(services(request).engine) as db:
            canned.delete_version(
                db, desk_id=_desk_id(request), key=key, language=language, actor=staff.actor
            )
    except canned.CannedReplyError:
        return _list_page(request, staff, status_code=409, error=ERROR_CHANGED)
    return _done(request, "deleted-version")


async def canned_delete(request: Request) -> Response:
    posted = await _post(request, "canned-delete")
    if isinstance(posted, Response):
        return posted
    staff, form = posted
    key = str(request.path_params.get("key", ""))
    if not canned.is_key(key):
        return _not_found(request, staff)
    if form.get("confirm") != "yes":
        return _list_page(request, staff, status_code=400, error=ERROR_CONFIRM)
    try:
        with session_scope(services(request).engine) as db:
            canned.delete_reply(db, desk_id=_desk_id(request), key=key, actor=staff.actor)
    except canned.CannedReplyError:
        return _list_page(request, staff, status_code=409, error=ERROR_CHANGED)
    return _done(request, "deleted")


POST = ["POST"]
BASE = "/desks/{desk_id:int}/canned"
# The two-segment delete comes before the version routes, whose {language} would also match "delete".
ROUTES: list[Route] = [
    Route(BASE, canned_list),
    Route(BASE, canned_create, methods=POST),
    Route(BASE + "/{key:str}/delete", canned_delete, methods=POST),
    Route(BASE + "/{key:str}/{language:str}", canned_version),
    Route(BASE + "/{key:str}/{language:str}", canned_save, methods=POST),
    Route(BASE + "/{key:str}/{language:str}/delete", canned_delete_version, methods=POST),
]
