"""The resident's information pages and the language entry point."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portal import i18n
from portal.network.catalogue import CATEGORIES
from portal.web import LANGUAGE_COOKIE, render


async def choose_language(request: Request) -> Response:
    """`/`: an explicit earlier choice (the language cookie) wins over Accept-Language."""
    chosen = i18n.BY_CODE.get(request.cookies.get(LANGUAGE_COOKIE, ""))
    locale = chosen or i18n.negotiate(request.headers.get("accept-language"))
    return RedirectResponse(f"/{locale.code}/", status_code=303, headers={"vary": "accept-language, cookie"})


async def home(request: Request) -> Response:
    return render(request, "resident/home.html", categories=CATEGORIES)


async def privacy(request: Request) -> Response:
    return render(request, "resident/privacy.html")


async def accessibility(request: Request) -> Response:
    return render(request, "resident/accessibility.html")


async def emergency(request: Request) -> Response:
    return render(request, "resident/emergency.html")
