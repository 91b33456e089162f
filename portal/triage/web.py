"""What every staff view needs: who is logged in, the desk keys they unlocked, a form token, a render.

Staff pages are in the staff member's language (sv, en or fi); before login, in the language of the
`lykta_staff_lang` cookie or the browser's. Sessions follow DESIGN 3: the personal private key is sealed in
the session row under a key only the cookie holds; idle after 30 minutes, over after 12 hours.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

import crypto
from portal import i18n
from portal.accounts.models import ROLE_LABELS, StaffAccount
from portal.db import session_scope
from portal.formdata import FormError, parse_urlencoded
from portal.keyring.services import unlock_desk_keyring
from portal.middleware import BodyTooLargeError
from portal.network.catalogue import CATEGORIES
from portal.triage.services import HANDOVER_LABELS, OUTCOME_LABELS, STATUS_LABELS
from portal.web import check_csrf, csrf_cookie, services, set_cookie

SESSION_COOKIE = "lykta_staff"
SESSION_KIND = "staff"
LANGUAGE_COOKIE = "lykta_staff_lang"
IDLE = datetime.timedelta(minutes=30)
ABSOLUTE = datetime.timedelta(hours=12)
STAFF_BY_CODE = {locale.code: locale for locale in i18n.STAFF_LOCALES}


@dataclasses.dataclass(frozen=True)
class Staff:
    """The logged-in staff member for one request."""

    account: StaffAccount
    personal: crypto.X25519Identity = dataclasses.field(repr=False)
    # Per desk, every key it has had, the current one first (portal.keyring.services.unlock_desk_keyring).
    desk_keys: dict[int, list[crypto.X25519Identity]] = dataclasses.field(repr=False)

    @property
    def id(self) -> int:
        assert self.account.id is not None  # loaded from the database
        return self.account.id

    @property
    def actor(self) -> str:
        return f"staff:{self.account.id}"


def staff_locale(request: Request, account: StaffAccount | None = None) -> i18n.Locale:
    if account is not None and account.language in STAFF_BY_CODE:
        return STAFF_BY_CODE[account.language]
    chosen = STAFF_BY_CODE.get(request.cookies.get(LANGUAGE_COOKIE, ""))
    return chosen or i18n.negotiate(request.headers.get("accept-language"), available=i18n.STAFF_LOCALES)


def current_staff(request: Request) -> Staff | None:
    """The logged-in staff member, their desk keys unlocked; None if not logged in (or session ended)."""
    with session_scope(services(request).engine) as db:
        opened = services(request).sessions.open(
            db, request.cookies.get(SESSION_COOKIE), kind=SESSION_KIND, idle=IDLE, absolute=ABSOLUTE
        )
        if opened is None:
            return None
        account = db.get(StaffAccount, int(opened.subject))
        if account is None or account.disabled:
            return None
        personal = crypto.X25519Identity(opened.secret)
        assert account.id is not None
        # Analysts work with aggregate figures only (DESIGN 1): even a grant given by mistake opens nothing.
        desk_keys = (
            {}
            if account.role == "analyst"
            else unlock_desk_keyring(db, staff_id=account.id, personal=personal)
        )
        return Staff(account=account, personal=personal, desk_keys=desk_keys)


async def read_form(request: Request) -> dict[str, str]:
    """A small urlencoded form; an unreadable or oversized one reads as empty (and fails its CSRF check)."""
    try:
        return parse_urlencoded(await request.body())
    except (FormError, BodyTooLargeError):
        return {}


def login_redirect() -> Response:
    return RedirectResponse("/staff/login", status_code=303)


def check_staff_csrf(request: Request, token: str | None, *, purpose: str) -> None:
    check_csrf(request, token, purpose=f"staff-{purpose}")


def render_staff(
    request: Request,
    template: str,
    *,
    staff: Staff | None,
    status_code: int = 200,
    purposes: tuple[str, ...] = (),
    **context: Any,
) -> HTMLResponse:
    locale = staff_locale(request, staff.account if staff else None)
    cookie_value, cookie_is_new = csrf_cookie(request)
    tokens = {p: services(request).csrf.issue(cookie_value, purpose=f"staff-{p}") for p in purposes}
    context.setdefault("notice", None)
    context.setdefault("error", None)
    context.setdefault("role_labels", ROLE_LABELS)
    context.setdefault("status_labels", STATUS_LABELS)
    context.setdefault("outcome_labels", OUTCOME_LABELS)
    context.setdefault("handover_labels", HANDOVER_LABELS)
    context.setdefault("category_names", {c.code: c.name for c in CATEGORIES})
    response = (
        services(request)
        .extras["staff_renderer"]
        .render(template, locale=locale, status_code=status_code, csrf_tokens=tokens, staff=staff, **context)
    )
    if cookie_is_new:
        from portal import csrf

        set_cookie(response, request, csrf.COOKIE_NAME, cookie_value, max_age=None)
    return response  # type: ignore[no-any-return]
