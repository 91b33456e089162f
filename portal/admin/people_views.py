"""Administration views for staff accounts.

GET/POST  /staff/admin/staff                         list (?desk=ID for one desk's members), invite
GET       /staff/admin/staff/{id}                    one account: state, desks and key grants
POST      /staff/admin/staff/{id}/disable | enable | reset-totp | role | desks/add | desks/remove

The enrolment link of an invitation or a TOTP reset is shown once, in the answer to the POST: only a hash
of its token is stored, so it cannot be shown again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from portal.admin import people
from portal.admin import services as admin
from portal.admin.forms import AdminForm, clean_id
from portal.admin.web import (
    Result,
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
    request: Request, staff: Staff, *, staff_id: int, status_code: int = 200, **context: object
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
    return await show(request, functools.partial(_member_page, staff_id=int(request.path_params["staff_id"])))


async def _on_member(
    request: Request, purpose: str, act: Callable[[Session, AdminForm, Staff, int], Result]
) -> tuple[Staff, Result] | Response:
    """Run `act` on the account the address names, as `submit` does; refusing to act on oneself is shown
    on the account's page."""
    staff_id = int(request.path_params["staff_id"])
    return await submit(
        request,
        purpose,
        functools.partial(_member_page, staff_id=staff_id),
        lambda db, form, staff: act(db, form, staff, staff_id),
        kept=lambda form: {"values": form.values("role", "desk")},
        refused={people.NotYourselfError: people.ERROR_NOT_YOURSELF},
    )


async def _member_change(
    request: Request, purpose: str, result: str, act: Callable[[Session, AdminForm, Staff, int], object]
) -> Response:
    """A change to the account; back to its page with `result` as the notice."""
    changed = await _on_member(request, purpose, act)
    if isinstance(changed, Response):
        return changed
    return done(f"staff/{request.path_params['staff_id']}", result)


async def staff_disable(request: Request) -> Response:
    return await _member_change(
        request,
        "admin-disable",
        "disabled",
        lambda db, _form, staff, staff_id: people.set_disabled(
            db, staff_id, disabled=True, by_staff_id=staff.id, actor=staff.actor
        ),
    )


async def staff_enable(request: Request) -> Response:
    return await _member_change(
        request,
        "admin-enable",
        "enabled",
        lambda db, _form, staff, staff_id: people.set_disabled(
            db, staff_id, disabled=False, by_staff_id=staff.id, actor=staff.actor
        ),
    )


def _reset_totp(db: Session, _form: AdminForm, staff: Staff, staff_id: int) -> tuple[people.StaffRow, str]:
    token = people.reset_totp(db, staff_id, by_staff_id=staff.id, actor=staff.actor)
    return people.one(db, staff_id), token


async def staff_reset_totp(request: Request) -> Response:
    reset = await _on_member(request, "admin-reset-totp", _reset_totp)
    if isinstance(reset, Response):
        return reset
    staff, (row, token) = reset
    return render_admin(
        request,
        "staff/admin/enrol_link.html",
        staff=staff,
        row=row,
        link=_enrol_link(request, token),
        reset=True,
    )


async def staff_role(request: Request) -> Response:
    return await _member_change(
        request,
        "admin-role",
        "role-changed",
        lambda db, form, staff, staff_id: people.change_role(
            db, staff_id, form, by_staff_id=staff.id, actor=staff.actor
        ),
    )


async def staff_desk_add(request: Request) -> Response:
    return await _member_change(
        request,
        "admin-member",
        "member-added",
        lambda db, form, staff, staff_id: people.add_membership(db, staff_id, form, actor=staff.actor),
    )


async def staff_desk_remove(request: Request) -> Response:
    return await _member_change(
        request,
        "admin-member",
        "member-removed",
        lambda db, form, staff, staff_id: people.remove_membership(db, staff_id, form, actor=staff.actor),
    )
