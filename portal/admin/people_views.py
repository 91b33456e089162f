"""Administration views for staff accounts.

GET/POST  /staff/admin/staff                         list (?desk=ID for one desk's members), invite
GET       /staff/admin/staff/{id}                    one account: state, desks and key grants
POST      /staff/admin/staff/{id}/disable | enable | reset-totp | role | desks/add | desks/remove

The enrolment link of an invitation or a TOTP reset is shown once, in the answer to the POST: only a hash
of its token is stored, so it cannot be shown again.
"""

from __future__ import annotations

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from portal.admin import people
from portal.admin import services as admin
from portal.admin.forms import AdminForm, clean_id
from portal.admin.web import (
    ERROR_EXPIRED,
    ERROR_FIELDS,
    administrator,
    administrator_post,
    done,
    render_admin,
    show,
    submit,
)
from portal.db import session_scope
from portal.triage.web import Staff
from portal.web import services

INVITE_FIELDS = ("username", "role", "organisation")


def _enrol_link(request: Request, token: str) -> str:
    # Behind the reverse proxy the app sees plain http, so the configured public address wins; without one
    # (a single machine), the host the administrator uses. The back office is mounted at /staff/.
    public = services(request).settings.public_staff_url
    if public:
        return f"{public.rstrip('/')}/enrol/{token}"
    return str(request.url.replace(path=f"/staff/enrol/{token}", query=""))


def _staff_page(
    request: Request,
    staff: Staff,
    *,
    status_code: int = 200,
    chosen_desks: list[str] | None = None,
    **context: object,
) -> Response:
    desk_filter = clean_id(request.query_params.get("desk", ""))
    with session_scope(services(request).engine) as db:
        rows = people.staff(db, desk_id=desk_filter)
        desk_rows = admin.desks(db)
        organisation_rows = admin.organisations(db)
    filtered_desk = next((row.desk for row in desk_rows if row.desk.id == desk_filter), None)
    return render_admin(
        request,
        "staff/admin/staff.html",
        staff=staff,
        status_code=status_code,
        purposes=("admin-invite",),
        rows=rows,
        desk_rows=desk_rows,
        organisations=[row.organisation for row in organisation_rows],
        filtered_desk=filtered_desk,
        chosen_desks=chosen_desks or [],
        state_labels=people.STATE_LABELS,
        **context,
    )


async def staff_list(request: Request) -> Response:
    return await show(request, _staff_page)


def _invite(db: Session, form: AdminForm, staff: Staff) -> tuple[people.StaffRow, str]:
    staff_id, token = people.invite(db, form, created_by=staff.id, actor=staff.actor)
    return people.one(db, staff_id), token


async def staff_invite(request: Request) -> Response:
    submitted = await submit(
        request,
        "admin-invite",
        _staff_page,
        _invite,
        kept=lambda form: {"values": form.values(*INVITE_FIELDS), "chosen_desks": form.get_all("desks")},
    )
    if isinstance(submitted, Response):
        return submitted
    staff, (row, token) = submitted
    return render_admin(
        request,
        "staff/admin/enrol_link.html",
        staff=staff,
        row=row,
        link=_enrol_link(request, token),
        reset=False,
    )


def _member_page(
    request: Request, staff: Staff, staff_id: int, *, status_code: int = 200, **context: object
) -> Response:
    with session_scope(services(request).engine) as db:
        try:
            row = people.one(db, staff_id)
        except admin.NotFoundError:
            return render_admin(request, "staff/not_found.html", staff=staff, status_code=404)
        desk_rows = admin.desks(db)
    member_of = {m.desk.id for m in row.memberships}
    return render_admin(
        request,
        "staff/admin/staff_member.html",
        staff=staff,
        status_code=status_code,
        purposes=("admin-disable", "admin-enable", "admin-reset-totp", "admin-role", "admin-member"),
        row=row,
        other_desks=[d for d in desk_rows if d.desk.id not in member_of],
        state_labels=people.STATE_LABELS,
        myself=staff_id == staff.id,
        **context,
    )


async def staff_member(request: Request) -> Response:
    staff = await administrator(request)
    if isinstance(staff, Response):
        return staff
    return _member_page(request, staff, int(request.path_params["staff_id"]))


async def _member_action(request: Request, purpose: str) -> tuple[Staff, AdminForm, int] | Response:
    """The administrator, the form and the account id, or the page to answer with (CSRF failed)."""
    checked = await administrator_post(request, purpose)
    if isinstance(checked, Response):
        return checked
    staff, form, csrf_ok = checked
    staff_id = int(request.path_params["staff_id"])
    if not csrf_ok:
        return _member_page(
            request, staff, staff_id, status_code=400, error=ERROR_EXPIRED, values=form.values("role", "desk")
        )
    return staff, form, staff_id


def _member_done(staff_id: int, result: str) -> Response:
    return done(f"staff/{staff_id}", result)


async def _set_disabled(request: Request, *, disabled: bool) -> Response:
    checked = await _member_action(request, "admin-disable" if disabled else "admin-enable")
    if isinstance(checked, Response):
        return checked
    staff, _form, staff_id = checked
    try:
        with session_scope(services(request).engine) as db:
            people.set_disabled(db, staff_id, disabled=disabled, by_staff_id=staff.id, actor=staff.actor)
    except admin.NotFoundError:
        return render_admin(request, "staff/not_found.html", staff=staff, status_code=404)
    except people.NotYourselfError:
        return _member_page(request, staff, staff_id, status_code=400, error=people.ERROR_NOT_YOURSELF)
    return _member_done(staff_id, "disabled" if disabled else "enabled")


async def staff_disable(request: Request) -> Response:
    return await _set_disabled(request, disabled=True)


async def staff_enable(request: Request) -> Response:
    return await _set_disabled(request, disabled=False)


async def staff_reset_totp(request: Request) -> Response:
    checked = await _member_action(request, "admin-reset-totp")
    if isinstance(checked, Response):
        return checked
    staff, _form, staff_id = checked
    try:
        with session_scope(services(request).engine) as db:
            token = people.reset_totp(db, staff_id, by_staff_id=staff.id, actor=staff.actor)
            row = people.one(db, staff_id)
    except admin.NotFoundError:
        return render_admin(request, "staff/not_found.html", staff=staff, status_code=404)
    return render_admin(
        request,
        "staff/admin/enrol_link.html",
        staff=staff,
        row=row,
        link=_enrol_link(request, token),
        reset=True,
    )


async def staff_role(request: Request) -> Response:
    checked = await _member_action(request, "admin-role")
    if isinstance(checked, Response):
        return checked
    staff, form, staff_id = checked
    try:
        with session_scope(services(request).engine) as db:
            people.change_role(db, staff_id, form, by_staff_id=staff.id, actor=staff.actor)
    except admin.NotFoundError:
        return render_admin(request, "staff/not_found.html", staff=staff, status_code=404)
    except people.NotYourselfError:
        return _member_page(request, staff, staff_id, status_code=400, error=people.ERROR_NOT_YOURSELF)
    except admin.InvalidError as invalid:
        return _member_page(
            request, staff, staff_id, status_code=400, error=ERROR_FIELDS, errors=invalid.errors
        )
    return _member_done(staff_id, "role-changed")


async def staff_desk_add(request: Request) -> Response:
    checked = await _member_action(request, "admin-member")
    if isinstance(checked, Response):
        return checked
    staff, form, staff_id = checked
    try:
        with session_scope(services(request).engine) as db:
            people.add_membership(db, staff_id, form, actor=staff.actor)
    except admin.NotFoundError:
        return render_admin(request, "staff/not_found.html", staff=staff, status_code=404)
    except admin.InvalidError as invalid:
        return _member_page(
            request, staff, staff_id, status_code=400, error=ERROR_FIELDS, errors=invalid.errors
        )
    return _member_done(staff_id, "member-added")


async def staff_desk_remove(request: Request) -> Response:
    checked = await _member_action(request, "admin-member")
    if isinstance(checked, Response):
        return checked
    staff, form, staff_id = checked
    try:
        with session_scope(services(request).engine) as db:
            people.remove_membership(db, staff_id, form, actor=staff.actor)
    except admin.NotFoundError:
        return render_admin(request, "staff/not_found.html", staff=staff, status_code=404)
    return _member_done(staff_id, "member-removed")
