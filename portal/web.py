"""What every resident view needs: its locale, its services, a form token, and a translated render."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from portal import csrf, i18n
from portal.sessions import SessionStore
from portal.settings import Settings
from portal.templating import Renderer

LANGUAGE_COOKIE = "lykta_lang"
GET_PAGE_FOR = {
    "tip/send": "tip",
    "tip/done": "",
    "mailbox/reply": "mailbox",
    "mailbox/consent": "mailbox",
    "logout": "followup",
}


@dataclasses.dataclass(frozen=True)
class Services:
    """Everything a view may use, built once by create_app and kept on app.state."""

    settings: Settings
    engine: Engine
    renderer: Renderer
    csrf: csrf.CsrfTokens
    sessions: SessionStore
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def locale_of(request: Request) -> i18n.Locale:
    """The locale the path names: the matched `{lang}`, or on an unmatched path (a 404) its first segment."""
    code = request.path_params.get("lang") or request.url.path.strip("/").split("/", 1)[0]
    return i18n.BY_CODE.get(code, i18n.DEFAULT_LOCALE)


def translate(request: Request, message: str) -> str:
    """`message` in the request's language (for text stored for the resident, such as an acknowledgement)."""
    return services(request).renderer.translations[locale_of(request).code].gettext(message)


def csrf_cookie(request: Request) -> tuple[str, bool]:
    """The browser's CSRF cookie value, and whether it is new (and must be set on the response)."""
    existing = request.cookies.get(csrf.COOKIE_NAME)
    if existing and len(existing) <= 64:
        return existing, False
    return csrf.CsrfTokens.new_cookie_value(), True


def check_csrf(request: Request, token: str | None, *, purpose: str) -> None:
    services(request).csrf.check(token, request.cookies.get(csrf.COOKIE_NAME), purpose=purpose)


def set_cookie(response: Response, request: Request, name: str, value: str, *, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=services(request).settings.secure_cookies,
    )


def delete_cookie(response: Response, request: Request, name: str) -> None:
    """Remove a cookie set by `set_cookie`, with the same attributes (a browser may otherwise keep it)."""
    response.delete_cookie(
        name, path="/", httponly=True, samesite="strict", secure=services(request).settings.secure_cookies
    )


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    purposes: tuple[str, ...] = (),
    **context: Any,
) -> HTMLResponse:
    """Render `template` in the request's locale, with a form token for each of `purposes`."""
    locale = locale_of(request)
    context.setdefault("notice", None)
    context.setdefault("notice_limit", None)
    cookie_value, cookie_is_new = csrf_cookie(request)
    tokens = {p: services(request).csrf.issue(cookie_value, purpose=p) for p in purposes}
    path_after_lang = request.url.path.split("/", 2)[2] if request.url.path.count("/") >= 2 else ""
    # The language links must lead to a page that answers GET: a form result leads back to its form.
    switch_path = (
        GET_PAGE_FOR.get(path_after_lang, path_after_lang) if request.method != "GET" else path_after_lang
    )
    response = services(request).renderer.render(
        template,
        locale=locale,
        status_code=status_code,
        csrf_tokens=tokens,
        switch_path=switch_path,
        settings=services(request).settings,
        **context,
    )
    if cookie_is_new:
        set_cookie(response, request, csrf.COOKIE_NAME, cookie_value, max_age=None)
    if "lang" in request.path_params and request.cookies.get(LANGUAGE_COOKIE) != locale.code:
        # Visiting a page under a language prefix is an explicit choice; `/` honours it next time.
        set_cookie(response, request, LANGUAGE_COOKIE, locale.code, max_age=365 * 24 * 3600)
    return response
