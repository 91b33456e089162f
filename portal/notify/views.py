"""E-mail notification pages of the back office.

GET/POST  /staff/notifications                  a staff member's own address and choice
GET       /staff/admin/notifications            administrators: delivery problems, and who gets e-mail
POST      /staff/admin/notifications/retry      administrators: try every failed notification again

The administrators' page names the staff account, the kind of event, the attempts and the class of the
last error; never a case, a desk or what a mail said.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portal.admin.web import ERROR_EXPIRED, administrator, administrator_post, render_admin
from portal.csrf import CsrfError
from portal.db import read_session, session_scope
from portal.i18n import N_
from portal.notify import preferences
from portal.notify.models import KIND_LABELS, MODE_LABELS, MODES
from portal.triage.web import (
    Staff,
    check_staff_csrf,
    current_staff,
    login_redirect,
    read_form,
    render_staff,
)
from portal.web import services

PURPOSE = "notifications"
ADMIN_PURPOSE = "admin-notifications"
ERROR_FIELDS = N_("Please correct the marked fields.")
NOTICE_SAVED = N_("Your choice was saved.")
NOTICE_RETRIED = N_("The failed e-mails are queued to be sent again.")


def _own_page(
    request: Request,
    staff: Staff,
    *,
    email: str,
    mode: str,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    notice: str | None = None,
) -> Response:
    return render_staff(
        request,
        "staff/notifications.html",
        staff=staff,
        status_code=status_code,
        purposes=("logout", PURPOSE),
        email=email,
        mode=mode,
        modes=MODES,
        mode_labels=MODE_LABELS,
        errors=errors or {},
        error=error,
        notice=notice,
    )


async def own_settings(request: Request) -> Response:
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    with read_session(services(request).engine) as db:
        setting = preferences.setting_of(db, staff.id)
    notice = NOTICE_SAVED if request.query_params.get("done") == "saved" else None
    return _own_page(request, staff, email=setting.email, mode=setting.mode, notice=notice)


async def own_settings_save(request: Request) -> Response:
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    form = await read_form(request)
    email, mode = form.get("email", "")[: preferences.MAX_EMAIL + 1], form.get("mode", "")
    try:
        check_staff_csrf(request, form.get("csrf"), purpose=PURPOSE)
    except CsrfError:
        return _own_page(request, staff, email=email, mode=mode, status_code=400, error=ERROR_EXPIRED)
    try:
        with session_scope(services(request).engine) as db:
            preferences.save(db, staff_id=staff.id, email=email, mode=mode)
    except preferences.PreferenceError as refused:
        return _own_page(
            request,
            staff,
            email=email,
            mode=mode,
            status_code=400,
            errors=refused.problems,
            error=ERROR_FIELDS,
        )
    return RedirectResponse("/staff/notifications?done=saved", status_code=303)


def _admin_page(request: Request, staff: Staff, *, status_code: int = 200, **context: object) -> Response:
    with read_session(services(request).engine) as db:
        troubles = preferences.troubles(db)
        recipients = preferences.recipients(db)
        counts = preferences.counts(db)
    return render_admin(
        request,
        "staff/admin/notifications.html",
        staff=staff,
        status_code=status_code,
        purposes=(ADMIN_PURPOSE,),
        troubles=troubles,
        recipients=recipients,
        counts=counts,
        notification_kinds=KIND_LABELS,
        mode_labels=MODE_LABELS,
        **context,
    )


async def admin_overview(request: Request) -> Response:
    staff = await administrator(request)
    if isinstance(staff, Response):
        return staff
    notice = NOTICE_RETRIED if request.query_params.get("done") == "retried" else None
    return _admin_page(request, staff, notice=notice)


async def admin_retry(request: Request) -> Response:
    checked = await administrator_post(request, ADMIN_PURPOSE)
    if isinstance(checked, Response):
        return checked
    staff, _form, csrf_ok = checked
    if not csrf_ok:
        return _admin_page(request, staff, status_code=400, error=ERROR_EXPIRED)
    with session_scope(services(request).engine) as db:
        preferences.retry_failed(db, actor=staff.actor)
    return RedirectResponse("/staff/admin/notifications?done=retried", status_code=303)
