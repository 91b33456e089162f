"""A desk's key holders, as a member holding the desk key sees them: grant, remove, rotate (issue 4).

GET  /staff/desks/{id}          members holding the key, members waiting for it
POST /staff/desks/{id}/grant    staff_id: seal the desk's keys to that member's personal key
POST /staff/desks/{id}/remove   staff_id, rotate=yes: end the membership, delete the grants, and (if asked)
                                make a new desk key for new tips

Only a member who holds the desk key gets these pages; anyone else gets the staff app's 404 (the same as for
a desk that does not exist), a logged-out visitor the login page. Granting needs the granter's keys
themselves, which is why an administrator without the key cannot grant (DESIGN 1).

The messages of this page are in staff/desk.html, chosen by a code: the page's strings stay in the
template, the one place the staff catalog is extracted from for this section.
"""

from __future__ import annotations

import dataclasses

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portal.accounts.models import StaffAccount
from portal.csrf import CsrfError
from portal.db import session_scope
from portal.i18n import N_
from portal.keyring import services as keyring
from portal.network.models import Desk, Organisation
from portal.triage.web import Staff, check_staff_csrf, current_staff, login_redirect, read_form, render_staff
from portal.web import services

PURPOSES = ("logout", "desk-grant", "desk-remove")
# The same msgid as the rest of the back office: translated by the staff catalog.
ERROR_EXPIRED = N_("The form expired. Please try again.")
DONE_CODES = ("granted", "already-granted", "removed", "rotated")


@dataclasses.dataclass(frozen=True)
class MemberRow:
    account: StaffAccount
    has_key: bool

    @property
    def enrolled(self) -> bool:
        return self.account.public_key is not None


def _desk_id(request: Request) -> int:
    return int(request.path_params["desk_id"])


def _not_found(request: Request, staff: Staff) -> Response:
    return render_staff(request, "staff/not_found.html", staff=staff, status_code=404, purposes=("logout",))


def _holder(request: Request) -> Staff | Response:
    """The logged-in staff member if they hold this desk's key; else the login page or a 404."""
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    if _desk_id(request) not in staff.desk_keys:
        return _not_found(request, staff)
    return staff


def _members(db: Session, desk_id: int) -> list[MemberRow]:
    holders = keyring.key_holders(db, desk_id)
    waiting = keyring.members_waiting(db, desk_id)
    return [MemberRow(a, True) for a in holders] + [MemberRow(a, False) for a in waiting]


def _page(
    request: Request,
    staff: Staff,
    *,
    status_code: int = 200,
    error: str | None = None,
    problem: str | None = None,
) -> Response:
    desk_id = _desk_id(request)
    with session_scope(services(request).engine) as db:
        desk = db.get(Desk, desk_id)
        if desk is None:
            return _not_found(request, staff)
        organisation = db.get(Organisation, desk.organisation_id)
        members = _members(db, desk_id)
    done = request.query_params.get("done", "")
    return render_staff(
        request,
        "staff/desk.html",
        staff=staff,
        status_code=status_code,
        purposes=PURPOSES,
        desk=desk,
        organisation=organisation,
        holders=[m for m in members if m.has_key],
        waiting=[m for m in members if not m.has_key],
        done=done if done in DONE_CODES and status_code == 200 else "",
        problem=problem,
        error=error,
    )


async def desk_page(request: Request) -> Response:
    checked = _holder(request)
    if isinstance(checked, Response):
        return checked
    return _page(request, checked)


async def _post(request: Request, purpose: str) -> tuple[Staff, int, dict[str, str]] | Response:
    """The key holder, the chosen staff id and the form, or the response that ends the request (nothing
    changed). A non-holder is refused before the form is read: with or without a token, the same 404."""
    checked = _holder(request)
    if isinstance(checked, Response):
        return checked
    form = await read_form(request)
    try:
        check_staff_csrf(request, form.get("csrf"), purpose=purpose)
    except CsrfError:
        return _page(request, checked, status_code=400, error=ERROR_EXPIRED)
    value = form.get("staff_id", "")
    if not value.isdigit() or len(value) > 12:
        return _page(request, checked, status_code=400, problem="not-a-member")
    return checked, int(value), form


def _done(request: Request, code: str) -> Response:
    return RedirectResponse(f"/staff/desks/{_desk_id(request)}?done={code}", status_code=303)


async def desk_grant(request: Request) -> Response:
    checked = await _post(request, "desk-grant")
    if isinstance(checked, Response):
        return checked
    staff, member_id, _form = checked
    desk_id = _desk_id(request)
    try:
        with session_scope(services(request).engine) as db:
            # All the desk's keys, not only the current one: the new member must read older tips too.
            ring = keyring.unlock_desk_keyring(db, staff_id=staff.id, personal=staff.personal).get(
                desk_id, []
            )
            granted = keyring.grant_desk(
                db, desk_id=desk_id, granter=ring, member_staff_id=member_id, actor=staff.actor
            )
    except keyring.NotEnrolledError:
        return _page(request, staff, status_code=400, problem="not-enrolled")
    except keyring.WrongKeyError:
        return _page(request, staff, status_code=409, problem="key-changed")
    except keyring.KeyringError:
        return _page(request, staff, status_code=400, problem="not-a-member")
    return _done(request, "granted" if granted else "already-granted")


async def desk_remove(request: Request) -> Response:
    checked = await _post(request, "desk-remove")
    if isinstance(checked, Response):
        return checked
    staff, member_id, form = checked
    desk_id = _desk_id(request)
    if member_id == staff.id:
        # Removing oneself could leave a desk with no holder but the recovery key: another member does it.
        return _page(request, staff, status_code=400, problem="not-yourself")
    rotate = form.get("rotate") == "yes"
    try:
        with session_scope(services(request).engine) as db:
            keyring.revoke_member(db, desk_id=desk_id, staff_id=member_id, actor=staff.actor)
            if rotate:
                ring = keyring.unlock_desk_keyring(db, staff_id=staff.id, personal=staff.personal)
                current = ring.get(desk_id, [])
                if not current:
                    raise keyring.WrongKeyError("the desk key is no longer held")
                keyring.rotate_desk_key(db, desk_id=desk_id, granter_identity=current[0], actor=staff.actor)
    except keyring.WrongKeyError:
        # Someone rotated the key since this request unlocked it: nothing was removed; try again.
        return _page(request, staff, status_code=409, problem="key-changed")
    except keyring.KeyringError:
        return _page(request, staff, status_code=400, problem="not-a-member")
    return _done(request, "rotated" if rotate else "removed")
