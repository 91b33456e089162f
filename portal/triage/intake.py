"""Assisted intake: an officer takes a tip on the phone (114 14) and files it for the caller.

The tip is routed, encrypted and stored exactly as one sent through the form, marked as taken by phone;
the officer reads the case number and a new reply code out to the caller, who can then follow it up
like anyone else. The officer does not keep the code: it is shown once, on the page after filing.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

import crypto
from portal import i18n
from portal.audit import log as audit
from portal.csrf import CsrfError
from portal.db import session_scope
from portal.i18n import N_
from portal.network import services as network
from portal.network.catalogue import CATEGORIES, HOW_KNOWN
from portal.submission import forms
from portal.submission.replycodes import DerivationBusyError, MailboxDeriver
from portal.submission.services import store_tip
from portal.submission.uploads import new_id
from portal.triage.views import not_found
from portal.triage.web import Staff, check_staff_csrf, current_staff, login_redirect, read_form, render_staff
from portal.web import services

INTAKE_ROLES = frozenset({"officer", "desk-lead"})
ERROR_NO_RECIPIENT = N_("No desk receives this category for this municipality. Choose another category.")
ERROR_BUSY = N_("The server is busy. Try again in a moment.")
ERROR_EXPIRED = N_("The form expired. Please try again.")


def no_errors(errors: dict[str, forms.FieldError] | None = None) -> defaultdict[str, forms.FieldError | None]:
    """Field errors for the template, where a field without one reads as None."""
    return defaultdict(lambda: None, errors or {})


def _page(request: Request, staff: Staff, **context: Any) -> Response:
    with session_scope(services(request).engine) as db:
        municipalities = network.municipalities(db)
    context.setdefault("values", {})
    context.setdefault("errors", no_errors())
    return render_staff(
        request,
        "staff/intake.html",
        staff=staff,
        purposes=("logout", "intake"),
        municipalities=municipalities,
        categories=[c for c in CATEGORIES if not c.emergency],
        how_known=HOW_KNOWN,
        languages=i18n.LOCALES,
        limits=forms.TEXT_LIMITS,
        **context,
    )


async def intake_form(request: Request) -> Response:
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    if staff.account.role not in INTAKE_ROLES:
        return not_found(request, staff)
    return _page(request, staff)


async def intake_submit(request: Request) -> Response:
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    if staff.account.role not in INTAKE_ROLES:
        return not_found(request, staff)
    form = await read_form(request)
    values = {k: v for k, v in form.items() if k in forms.TipAnswers.__dataclass_fields__}
    try:
        check_staff_csrf(request, form.get("csrf"), purpose="intake")
    except CsrfError:
        return _page(request, staff, values=values, error=ERROR_EXPIRED)
    language = form.get("language", "sv") if form.get("language") in i18n.BY_CODE else "sv"
    with session_scope(services(request).engine) as db:
        municipality_codes = frozenset(m.code for m in network.municipalities(db))
        answers, errors = forms.validate(form, municipalities=municipality_codes)
        recipients = (
            network.recipients_for(db, municipality_code=answers.municipality, category=answers.category)
            if answers
            else []
        )
    if answers is None:
        return _page(request, staff, values=values, errors=no_errors(errors))
    if not recipients:
        return _page(request, staff, values=values, error=ERROR_NO_RECIPIENT)
    deriver: MailboxDeriver = services(request).extras["deriver"]
    code = crypto.ReplyCode.generate()
    try:
        keys = await deriver.derive(code)
    except DerivationBusyError:
        return _page(request, staff, values=values, error=ERROR_BUSY)
    with session_scope(services(request).engine) as db:
        municipality = network.municipality_by_code(db, answers.municipality)
        assert municipality is not None and municipality.id is not None  # validated above
        tip = store_tip(
            db,
            tip_id=new_id(),
            answers=answers,
            municipality_id=municipality.id,
            language=language,
            desks=recipients,
            keys=keys,
            kdf=deriver.params.name,
            files=[],
            taken_by_phone=True,
        )
        audit.record(db, "tip.taken-by-phone", actor=staff.actor, tip_id=tip.id)
        case_number = tip.case_number
    return render_staff(
        request,
        "staff/intake_done.html",
        staff=staff,
        purposes=("logout",),
        case_number=case_number,
        reply_code=code.grouped(),
        recipients=recipients,
    )
