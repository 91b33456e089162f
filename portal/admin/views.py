"""Administration views for the network: organisations, municipalities, desks and routing.

GET       /staff/admin/                    overview
GET/POST  /staff/admin/organisations       list, create (the recovery key is shown once, never stored)
GET/POST  /staff/admin/municipalities      list, create
GET/POST  /staff/admin/desks               list per organisation with tip counts, create
GET/POST  /staff/admin/desks/{id}          edit name, retention, automatic acknowledgement
GET/POST  /staff/admin/routing             category x desk grid of one municipality, with the resident's view

Views parse, call portal.admin services, and render; none of them touches tip content (the services
cannot either: they read tips only as counts).
"""

from __future__ import annotations

import functools

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from portal.admin import routing
from portal.admin import services as admin
from portal.admin.forms import AdminForm
from portal.admin.web import (
    ERROR_EXPIRED,
    ERROR_FIELDS,
    administrator,
    administrator_post,
    done,
    list_page,
    render_admin,
    show,
    submit,
)
from portal.db import session_scope
from portal.network.catalogue import CATEGORIES
from portal.notify import preferences as notify_preferences
from portal.retention import rules as retention_rules
from portal.submission.models import STATUSES
from portal.triage.services import OUTCOMES
from portal.triage.web import Staff
from portal.web import services

ORGANISATION_FIELDS = ("code", "name", "kind")
MUNICIPALITY_FIELDS = ("code", "name", "finnish")
DESK_FIELDS = ("organisation", "code", "name", "retention_days", "auto_acknowledge", *admin.OUTCOME_FIELDS)
DESK_EDIT_FIELDS = ("name", "retention_days", "auto_acknowledge", *admin.OUTCOME_FIELDS)


async def overview(request: Request) -> Response:
    staff = await administrator(request)
    if isinstance(staff, Response):
        return staff
    with session_scope(services(request).engine) as db:
        figures = admin.overview(db)
        gaps = routing.gaps(db)
        notifications = notify_preferences.counts(db)  # failed e-mails must not go unnoticed (issue 5)
    return render_admin(
        request,
        "staff/admin/overview.html",
        staff=staff,
        figures=figures,
        gaps=gaps,
        statuses=STATUSES,
        notifications=notifications,
    )


async def nothing_here(request: Request) -> Response:
    """Any unknown address (or method) under /staff/admin/: the login page or 404, as for a real page."""
    staff = await administrator(request)
    if isinstance(staff, Response):
        return staff
    raise HTTPException(status_code=404)


# ---------------------------------------------------------------------------------------------------------
# Organisations


_organisations_page = list_page("staff/admin/organisations.html", "admin-organisation", admin.organisations)


async def organisations(request: Request) -> Response:
    return await show(request, _organisations_page)


async def organisation_create(request: Request) -> Response:
    submitted = await submit(
        request,
        "admin-organisation",
        _organisations_page,
        lambda db, form, staff: admin.create_organisation(db, form, actor=staff.actor),
        kept=lambda form: {"values": form.values(*ORGANISATION_FIELDS)},
    )
    if isinstance(submitted, Response):
        return submitted
    staff, (organisation, sheet) = submitted
    # Rendered as the answer to the POST itself, not after a redirect: there is no page to come back to,
    # because the private key exists only in this response (and the middleware marks it no-store).
    return render_admin(
        request,
        "staff/admin/organisation_created.html",
        staff=staff,
        organisation=organisation,
        identity_text=sheet.identity_text,
        # segno's SVG holds only the key's QR modules, no text of anyone's: safe to insert as it is.
        qr_svg=Markup(sheet.qr_svg),  # noqa: S704
    )


# ---------------------------------------------------------------------------------------------------------
# Municipalities


_municipalities_page = list_page(
    "staff/admin/municipalities.html", "admin-municipality", admin.municipalities
)


async def municipalities(request: Request) -> Response:
    return await show(request, _municipalities_page)


async def municipality_create(request: Request) -> Response:
    submitted = await submit(
        request,
        "admin-municipality",
        _municipalities_page,
        lambda db, form, staff: admin.create_municipality(db, form, actor=staff.actor),
        kept=lambda form: {"values": form.values(*MUNICIPALITY_FIELDS)},
    )
    return submitted if isinstance(submitted, Response) else done("municipalities", "municipality-created")


# ---------------------------------------------------------------------------------------------------------
# Desks


def retention_context() -> dict[str, object]:
    """What the retention fields of the desk settings need: the outcomes and their built-in defaults."""
    return {
        "retention_outcomes": [(o, admin.OUTCOME_FIELD_PREFIX + o) for o in OUTCOMES],
        "retention_outcome_defaults": retention_rules.DEFAULT_OUTCOME_DAYS,
        "outcome_min": retention_rules.MIN_DAYS,
        "outcome_max": retention_rules.MAX_DAYS,
        "activity_grace_days": retention_rules.ACTIVITY_GRACE.days,
    }


def _desks_page(request: Request, staff: Staff, *, status_code: int = 200, **context: object) -> Response:
    with session_scope(services(request).engine) as db:
        rows = admin.desks(db)
        organisation_rows = admin.organisations(db)
    context.setdefault("values", {"retention_days": str(admin.DEFAULT_RETENTION_DAYS)})
    return render_admin(
        request,
        "staff/admin/desks.html",
        staff=staff,
        status_code=status_code,
        purposes=("admin-desk",),
        rows=rows,
        organisations=[row.organisation for row in organisation_rows],
        statuses=STATUSES,
        retention_min=admin.RETENTION_MIN_DAYS,
        retention_max=admin.RETENTION_MAX_DAYS,
        **retention_context(),
        **context,
    )


async def desks(request: Request) -> Response:
    return await show(request, _desks_page)


async def desk_create(request: Request) -> Response:
    submitted = await submit(
        request,
        "admin-desk",
        _desks_page,
        lambda db, form, staff: admin.create_desk(db, form, actor=staff.actor),
        kept=lambda form: {"values": form.values(*DESK_FIELDS)},
    )
    if isinstance(submitted, Response):
        return submitted
    _staff, desk = submitted
    return done(f"desks/{desk.id}", "desk-created")


def _desk_page(
    request: Request, staff: Staff, *, desk_id: int, status_code: int = 200, **context: object
) -> Response:
    with session_scope(services(request).engine) as db:
        try:
            row = admin.desk_row(db, desk_id)
        except admin.NotFoundError:
            return render_admin(request, "staff/not_found.html", staff=staff, status_code=404)
        outcome_values = admin.outcome_values(db, desk_id)
    context.setdefault(
        "values",
        {
            "name": row.desk.name,
            "retention_days": str(row.desk.retention_days),
            "auto_acknowledge": "yes" if row.desk.auto_acknowledge else "",
            **outcome_values,
        },
    )
    return render_admin(
        request,
        "staff/admin/desk.html",
        staff=staff,
        status_code=status_code,
        purposes=("admin-desk-edit",),
        row=row,
        statuses=STATUSES,
        retention_min=admin.RETENTION_MIN_DAYS,
        retention_max=admin.RETENTION_MAX_DAYS,
        **retention_context(),
        **context,
    )


async def desk(request: Request) -> Response:
    return await show(request, functools.partial(_desk_page, desk_id=int(request.path_params["desk_id"])))


async def desk_update(request: Request) -> Response:
    desk_id = int(request.path_params["desk_id"])
    submitted = await submit(
        request,
        "admin-desk-edit",
        functools.partial(_desk_page, desk_id=desk_id),
        lambda db, form, staff: admin.update_desk(db, desk_id, form, actor=staff.actor),
        kept=lambda form: {"values": form.values(*DESK_EDIT_FIELDS)},
    )
    return submitted if isinstance(submitted, Response) else done(f"desks/{desk_id}", "desk-saved")


# ---------------------------------------------------------------------------------------------------------
# Routing


def _routing_page(
    request: Request,
    staff: Staff,
    *,
    municipality_code: str,
    show_all: bool,
    status_code: int = 200,
    submitted: AdminForm | None = None,
    **context: object,
) -> Response:
    with session_scope(services(request).engine) as db:
        all_municipalities = admin.municipalities(db)
        chosen = next((m for m in all_municipalities if m.code == municipality_code), None)
        if chosen is None and all_municipalities:
            chosen = all_municipalities[0]
        grid = routing.grid(db, chosen, show_all=show_all) if chosen is not None else None
        preview_category = request.query_params.get("category", "")
        if preview_category not in routing.ROUTABLE_CODES:
            preview_category = routing.ROUTABLE[0].code
        recipients = routing.preview(db, chosen, preview_category) if chosen is not None else []
    # A form shown again after an error keeps what was chosen in it, not what is stored.
    chosen_cells = submitted.with_prefix(routing.CELL_PREFIX) if submitted is not None else {}
    return render_admin(
        request,
        "staff/admin/routing.html",
        staff=staff,
        status_code=status_code,
        purposes=("admin-routing",),
        municipalities=all_municipalities,
        grid=grid,
        chosen_cells=chosen_cells,
        categories=routing.ROUTABLE,
        all_categories=CATEGORIES,
        preview_category=preview_category,
        recipients=recipients,
        cell_prefix=routing.CELL_PREFIX,
        **context,
    )


async def routing_table(request: Request) -> Response:
    staff = await administrator(request)
    if isinstance(staff, Response):
        return staff
    return _routing_page(
        request,
        staff,
        municipality_code=request.query_params.get("municipality", ""),
        show_all=request.query_params.get("all") == "1",
    )


async def routing_save(request: Request) -> Response:
    checked = await administrator_post(request, "admin-routing")
    if isinstance(checked, Response):
        return checked
    staff, form, csrf_ok = checked
    code = form.get("municipality")
    show_all = form.get("all") == "1"
    if not csrf_ok:
        return _routing_page(
            request,
            staff,
            municipality_code=code,
            show_all=show_all,
            status_code=400,
            submitted=form,
            error=ERROR_EXPIRED,
        )
    try:
        with session_scope(services(request).engine) as db:
            municipality = routing.municipality_by_code(db, code)
            routing.save(db, municipality, form, actor=staff.actor)
    except admin.NotFoundError:
        return render_admin(request, "staff/not_found.html", staff=staff, status_code=404)
    except admin.InvalidError as invalid:
        return _routing_page(
            request,
            staff,
            municipality_code=code,
            show_all=show_all,
            status_code=400,
            submitted=form,
            error=ERROR_FIELDS,
            errors=invalid.errors,
        )
    query = {"municipality": code, **({"all": "1"} if show_all else {})}
    return done("routing", "routing-saved", query=query)
