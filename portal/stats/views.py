"""The statistics pages: the back office's (`/staff/statistics`) and the public one (`/{lang}/statistics`).

Staff: administrators, analysts and desk leads see the figures of the whole network (the steering group's
view, DESIGN 1); they hold nothing but counts. Officers and anyone else logged in get the staff app's 404,
as for the administration section, and a logged-out visitor the login page. The public page shows ended
quarters only, in every launch language, and works without JavaScript like every resident page.
"""

from __future__ import annotations

from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from portal import i18n
from portal.db import read_session, utcnow
from portal.network.catalogue import CATEGORIES
from portal.stats import figures
from portal.stats.charts import table_chart
from portal.stats.figures import Quarter
from portal.stats.suppression import THRESHOLD
from portal.triage.web import current_staff, login_redirect, render_staff, staff_locale
from portal.web import locale_of, render, services

# Who sees the back-office figures (issue 5): the steering group's roles, and desk leads for their work.
STATISTICS_ROLES = frozenset({"administrator", "analyst", "desk-lead"})


def _formatting(locale: i18n.Locale) -> dict[str, Any]:
    """Numbers, days and quarters in the page's language (Babel), and the chart drawer for its direction."""

    def number(value: int) -> str:
        return format_decimal(value, locale=locale.babel)

    def days(value: float) -> str:
        return format_decimal(value, format="#,##0.#", locale=locale.babel)

    def quarter_name(quarter: Quarter | str) -> str:
        chosen = Quarter.parse(quarter) if isinstance(quarter, str) else quarter
        return format_date(chosen.first_day, "QQQQ y", locale=locale.babel)

    def chart(table: figures.Table, **options: Any) -> Any:
        return table_chart(table, rtl=locale.direction == "rtl", **options)

    return {
        "number": number,
        "days": days,
        "quarter_name": quarter_name,
        "chart": chart,
        "threshold": THRESHOLD,
    }


def _chosen(request: Request, choices: list[Quarter], default: Quarter) -> Quarter | None:
    """The quarter named in the request, if it is one of `choices`; `default` if none is named."""
    named = request.path_params.get("quarter") or request.query_params.get("quarter")
    if not named:
        return default
    try:
        quarter = Quarter.parse(named)
    except ValueError:
        return None
    return quarter if quarter in choices else None


async def staff_statistics(request: Request) -> Response:
    staff = current_staff(request)
    if staff is None:
        return login_redirect()
    if staff.account.role not in STATISTICS_ROLES:
        raise HTTPException(status_code=404)
    with read_session(services(request).engine) as db:
        quarters = figures.staff_quarters(db, today=utcnow().date())
        quarter = _chosen(request, quarters, quarters[0])
        report = figures.staff_report(db, quarter or quarters[0])
    locale = staff_locale(request, staff.account)
    return render_staff(
        request,
        "staff/statistics.html",
        staff=staff,
        status_code=200 if quarter else 400,
        purposes=("logout",),
        report=report,
        quarters=quarters,
        bad_quarter=quarter is None,
        **_formatting(locale),
    )


async def public_statistics(request: Request) -> Response:
    with read_session(services(request).engine) as db:
        quarters = figures.published_quarters(db, today=utcnow().date())
        quarter = _chosen(request, quarters, quarters[0])
        if quarter is None:
            raise HTTPException(status_code=404)
        report = figures.public_report(db, quarter, quarters=quarters)
    return render(
        request,
        "resident/statistics.html",
        report=report,
        quarters=quarters,
        category_names={c.code: c.name for c in CATEGORIES},
        **_formatting(locale_of(request)),
    )
