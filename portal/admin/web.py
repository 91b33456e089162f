"""What every administration view needs: the administrator or the right refusal, the form, a render.

Only the role "administrator" reaches `/staff/admin/...`. Anyone else who is logged in gets the staff app's
404, the very answer an unknown address gets, so the section's existence is not confirmed to an officer who
probes for it (not 403); a logged-out visitor is sent to the login page, as for every staff page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portal.accounts.models import ROLES
from portal.admin import routing
from portal.admin.forms import AdminForm
from portal.admin.services import KIND_LABELS, InvalidError, NotFoundError
from portal.csrf import CsrfError
from portal.db import session_scope
from portal.i18n import N_
from portal.middleware import BodyTooLargeError
from portal.triage.web import Staff, check_staff_csrf, current_staff, login_redirect, render_staff
from portal.web import services

ADMINISTRATOR = "administrator"
ERROR_EXPIRED = N_("The form expired. Please try again.")
ERROR_FIELDS = N_("Please correct the marked fields.")
# Results of a saved form, named in the redirect's query string (?done=...) and shown as a notice.
NOTICES = {
    "municipality-created": N_("The municipality was added."),
    "desk-created": N_("The desk was created. Its key exists, and the organisation's recovery key holds it."),
    "desk-saved": N_("The desk was saved."),
    "routing-saved": N_("The routing was saved."),
    "disabled": N_("The account was disabled and its sessions were ended."),
    "enabled": N_("The account was enabled."),
    "role-changed": N_("The role was changed."),
    "member-added": N_(
        "The desk was added. The person cannot read its tips until a desk member or the recovery key "
        "grants them the desk key."
    ),
    "member-removed": N_("The person was removed from the desk, and their copy of the desk key was deleted."),
}


async def administrator(request: Request) -> Staff | Response:
    """The logged-in administrator, or the response for everyone else (login page, or 404)."""
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    if staff.account.role != ADMINISTRATOR:
        # The staff app's own 404, byte for byte what an address that does not exist gets.
        raise HTTPException(status_code=404)
    return staff


async def read_form(request: Request) -> AdminForm:
    try:
        body = await request.body()
    except BodyTooLargeError:
        return AdminForm([])
    return AdminForm.parse(body, request.headers.get("content-type", ""))


async def administrator_post(request: Request, purpose: str) -> tuple[Staff, AdminForm, bool] | Response:
    """The administrator, the form, and whether its CSRF token is good (for `purpose`).

    Anyone but an administrator is refused before the body is read or the token checked, so a probe with
    a missing token looks exactly like one with a good token: 404.
    """
    staff = await administrator(request)
    if isinstance(staff, Response):
        return staff
    form = await read_form(request)
    try:
        check_staff_csrf(request, form.get("csrf") or None, purpose=purpose)
    except CsrfError:
        return staff, form, False
    return staff, form, True


# A section's page: (request, staff, *, status_code=..., **context) -> the rendered page.
AdminPage = Callable[..., Response]
Result = TypeVar("Result")


def list_page(template: str, purpose: str, rows_of: Callable[[Session], object]) -> AdminPage:
    """The page of a section that lists its rows above the form that adds one (form token `purpose`)."""

    def page(request: Request, staff: Staff, *, status_code: int = 200, **context: object) -> Response:
        with session_scope(services(request).engine) as db:
            rows = rows_of(db)
        return render_admin(
            request, template, staff=staff, status_code=status_code, purposes=(purpose,), rows=rows, **context
        )

    return page


async def show(request: Request, page: AdminPage) -> Response:
    """GET: the page for an administrator; the login page or the 404 for everyone else."""
    staff = await administrator(request)
    return staff if isinstance(staff, Response) else page(request, staff)


async def submit(
    request: Request,
    purpose: str,
    page: AdminPage,
    act: Callable[[Session, AdminForm, Staff], Result],
    *,
    kept: Callable[[AdminForm], dict[str, object]],
    refused: Mapping[type[Exception], str] | None = None,
) -> tuple[Staff, Result] | Response:
    """POST: check the administrator and the form token, then `act` in one transaction.

    An expired token, a refused form or one of the `refused` exceptions (shown with its message) shows
    `page` again (400) with what `kept` takes from the form, so nothing typed is lost and nothing is
    half-written; an unknown object gets the staff 404. Otherwise the administrator and what `act`
    returned, for the view to answer with.
    """
    checked = await administrator_post(request, purpose)
    if isinstance(checked, Response):
        return checked
    staff, form, csrf_ok = checked
    if not csrf_ok:
        return page(request, staff, status_code=400, error=ERROR_EXPIRED, **kept(form))
    try:
        with session_scope(services(request).engine) as db:
            return staff, act(db, form, staff)
    except NotFoundError:
        return render_admin(request, "staff/not_found.html", staff=staff, status_code=404)
    except InvalidError as invalid:
        return page(request, staff, status_code=400, error=ERROR_FIELDS, errors=invalid.errors, **kept(form))
    except tuple(refused or ()) as refusal:
        message = next(text for kind, text in (refused or {}).items() if isinstance(refusal, kind))
        return page(request, staff, status_code=400, error=message, **kept(form))


def render_admin(
    request: Request,
    template: str,
    *,
    staff: Staff,
    status_code: int = 200,
    purposes: tuple[str, ...] = (),
    **context: Any,
) -> Response:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    if context.get("notice") is None:
        context["notice"] = NOTICES.get(request.query_params.get("done", ""))
    return render_staff(
        request,
        template,
        staff=staff,
        status_code=status_code,
        purposes=("logout", *purposes),
        kind_labels=KIND_LABELS,
        choice_labels=routing.CHOICE_LABELS,
        roles=ROLES,
        **context,
    )


def done(path: str, result: str, *, query: dict[str, str] | None = None) -> Response:
    """After a saved form: back to a page that answers GET, with the result as a notice (no resubmit)."""
    return RedirectResponse(
        f"/staff/admin/{path}?{urlencode({**(query or {}), 'done': result})}", status_code=303
    )
