"""The legal hold on a tip, set and cleared by its desks from the tip page.

POST /staff/tips/{id}/hold   action=set with a reference (a citation or case reference), or action=clear
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.csrf import CsrfError
from portal.db import session_scope
from portal.i18n import N_
from portal.retention import services as retention
from portal.triage import services as triage
from portal.triage.views import form_expired, not_found, tip_page
from portal.triage.web import check_staff_csrf, current_staff, login_redirect, read_form
from portal.web import services

ERROR_REFERENCE = N_(
    "Write the reference of the hold on one line, at most 200 characters: a case number or a provision, "
    "never what the tip says."
)


async def tip_hold(request: Request) -> Response:
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    form = await read_form(request)
    try:
        check_staff_csrf(request, form.get("csrf"), purpose="hold")
    except CsrfError:
        return form_expired(request, staff)
    tip_id = str(request.path_params.get("tip_id", ""))
    tip_id = tip_id if re.fullmatch(r"[0-9a-f]{32}", tip_id) else ""
    action = form.get("action", "")
    try:
        with session_scope(services(request).engine) as db:
            # Only a desk of the tip holds its key: the same reach as reading it (docs/decisions.md).
            tip, _mine = triage.reachable_tip(db, tip_id, staff.desk_keys)
            if action == "set":
                retention.set_hold(
                    db, tip=tip, reference=form.get("reference", ""), staff_id=staff.id, actor=staff.actor
                )
            elif action == "clear":
                retention.clear_hold(db, tip=tip, actor=staff.actor)
            else:
                raise retention.HoldError(action)
    except triage.NotAllowedError:
        return not_found(request, staff)
    except retention.HoldError:
        return await tip_page(request, status_code=400, error=ERROR_REFERENCE)
    return RedirectResponse(f"/staff/tips/{tip_id}?saved=1", status_code=303)


ROUTES = [Route("/tips/{tip_id:str}/hold", tip_hold, methods=["POST"])]
