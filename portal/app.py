"""The application factory. The middleware stack is listed here, in order, and nowhere else.

`create_app(settings)` mounts the resident app at `/` (and, once it exists, the back office at `/staff/`);
`create_resident_app(settings)` serves the resident side alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from portal import db, health, i18n, metrics
from portal.accounts import routes as accounts_routes
from portal.admin import routes as admin_routes
from portal.csrf import CsrfTokens
from portal.keyring import routes as keyring_routes
from portal.middleware import AccessLog, BodyLimit, SecurityHeaders, security_headers
from portal.notify import gauges as notify_gauges
from portal.notify import routes as notify_routes
from portal.retention import views as retention_views
from portal.sessions import SessionStore
from portal.settings import Settings
from portal.stats import routes as stats_routes
from portal.submission import mailbox, pages, views
from portal.submission.replycodes import MailboxDeriver
from portal.templating import Renderer
from portal.triage import canned_views, intake
from portal.triage import views as triage_views
from portal.triage.web import render_staff
from portal.web import Services, render
from portal.web import services as services_of

STATIC_DIR = Path(__file__).resolve().parent / "static"


class LanguageConvertor(Convertor[str]):
    """Matches only the launch languages, so `/de/tip` is a 404 rather than a Swedish page."""

    regex = "|".join(sorted((re.escape(locale.code) for locale in i18n.LOCALES), key=len, reverse=True))

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("lang", LanguageConvertor())
LANG = "{lang:lang}"
SMALL_FORM_BYTES = 256 * 1024


def _resident_routes() -> list[Route | Mount]:
    def page(path: str, endpoint: object, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(f"/{LANG}{path}", endpoint, methods=list(methods))  # type: ignore[arg-type]

    return [
        Route("/", pages.choose_language),
        Route("/healthz", health.make_healthz()),
        Route("/metrics", metrics.metrics_page),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        page("/", pages.home),
        page("/privacy", pages.privacy),
        page("/accessibility", pages.accessibility),
        page("/emergency", pages.emergency),
        *(page(path, endpoint) for path, endpoint in stats_routes.RESIDENT_PAGES),
        page("/tip", views.tip_form),
        page("/tip", views.tip_review, ("POST",)),
        page("/tip/send", views.tip_send, ("POST",)),
        page("/tip/done", views.tip_done, ("POST",)),
        page("/followup", mailbox.followup_form),
        page("/followup", mailbox.followup_login, ("POST",)),
        page("/mailbox", mailbox.mailbox),
        page("/mailbox/reply", mailbox.mailbox_reply, ("POST",)),
        page("/mailbox/consent", mailbox.mailbox_consent, ("POST",)),
        page("/logout", mailbox.logout, ("POST",)),
    ]


def _is_upload(path: str) -> bool:
    return path.endswith("/tip/send") or path.endswith("/mailbox/reply")


async def _not_found(request: Request, _exc: Exception) -> Response:
    return render(request, "resident/not_found.html", status_code=404)


async def _server_error(request: Request, _exc: Exception) -> Response:
    """A translated page for an unexpected error, never a traceback (the server logs that). Starlette sends
    it from outside the middleware stack, so it carries the security headers itself."""
    response = render(request, "resident/error.html", status_code=500)
    onion_address = services_of(request).settings.onion_address
    response.headers.update(security_headers(request.url.path, onion_address=onion_address))
    return response


def create_resident_app(settings: Settings, *, services: Services | None = None) -> Starlette:
    services = services or build_services(settings)
    middleware = [
        Middleware(AccessLog),
        Middleware(metrics.RequestMetrics, metrics=metrics.metrics_of(services), app_name="resident"),
        Middleware(SecurityHeaders, onion_address=settings.onion_address),
        Middleware(
            BodyLimit,
            limits=[(_is_upload, settings.max_upload_bytes + 1024 * 1024)],
            default=SMALL_FORM_BYTES,
            idle_seconds=settings.body_idle_seconds,
        ),
    ]
    app = Starlette(
        debug=settings.debug,
        routes=_resident_routes(),
        middleware=middleware,
        exception_handlers={404: _not_found, 500: _server_error},
    )
    app.state.services = services
    return app


def _staff_routes() -> list[Route | Mount]:
    # Each back-office section lists its own routes; the core (login, inbox, tips) is here.
    sections = [
        *accounts_routes.ROUTES,
        *stats_routes.STAFF_ROUTES,
        *keyring_routes.ROUTES,
        *canned_views.ROUTES,
        *notify_routes.ROUTES,  # before admin's: it ends with a catch-all route under /admin/
        *admin_routes.ROUTES,
    ]
    sections += retention_views.ROUTES
    return [
        *sections,
        Route("/", triage_views.inbox),
        Route("/healthz", health.make_healthz()),
        Route("/metrics", metrics.metrics_page),
        Route("/login", triage_views.login_form),
        Route("/login", triage_views.login, methods=["POST"]),
        Route("/logout", triage_views.logout, methods=["POST"]),
        Route("/intake", intake.intake_form),
        Route("/intake", intake.intake_submit, methods=["POST"]),
        Route("/tips/{tip_id:str}", triage_views.tip_view),
        Route("/tips/{tip_id:str}/reply", triage_views.tip_reply, methods=["POST"]),
        Route("/tips/{tip_id:str}/note", triage_views.tip_note, methods=["POST"]),
        Route("/tips/{tip_id:str}/status", triage_views.tip_status, methods=["POST"]),
        Route("/tips/{tip_id:str}/assign", triage_views.tip_assign, methods=["POST"]),
        Route("/tips/{tip_id:str}/handover", triage_views.tip_handover, methods=["POST"]),
        Route("/tips/{tip_id:str}/export", triage_views.tip_export, methods=["POST"]),
        Route("/tips/{tip_id:str}/labels", triage_views.tip_labels, methods=["POST"]),
        Route("/tips/{tip_id:str}/files/{file_id:str}", triage_views.tip_file),
    ]


async def _staff_not_found(request: Request, _exc: Exception) -> Response:
    return render_staff(request, "staff/not_found.html", staff=None, status_code=404)


async def _staff_server_error(request: Request, _exc: Exception) -> Response:
    """As for residents: a page, never a traceback, with the security headers Starlette would leave off."""
    response = render_staff(request, "staff/error.html", staff=None, status_code=500)
    response.headers.update(security_headers(request.url.path, onion_address=""))
    return response


def create_staff_app(settings: Settings, *, services: Services | None = None) -> Starlette:
    """The back office alone (mount it at /staff/), so it can listen on an internal address only."""
    services = services or build_services(settings)
    app = Starlette(
        debug=settings.debug,
        routes=_staff_routes(),
        middleware=[
            Middleware(AccessLog),
            Middleware(metrics.RequestMetrics, metrics=metrics.metrics_of(services), app_name="staff"),
            Middleware(SecurityHeaders, onion_address=""),
            Middleware(
                BodyLimit, limits=[], default=SMALL_FORM_BYTES, idle_seconds=settings.body_idle_seconds
            ),
        ],
        exception_handlers={404: _staff_not_found, 500: _staff_server_error},
    )
    app.state.services = services
    return app


def build_services(settings: Settings) -> Services:
    # Every table's model must be known before the first query, or a foreign key to a module nobody
    # imported yet fails at run time in a server that was never started by the tests' migrations.
    db.import_models()
    engine = db.make_engine(settings.database_url)
    services = Services(
        settings=settings,
        engine=engine,
        renderer=Renderer(i18n.load_all()),
        csrf=CsrfTokens(settings.signing_key),
        sessions=SessionStore(settings.signing_key),
    )
    services.extras["deriver"] = MailboxDeriver(settings)
    metrics.watch_reply_codes(metrics.metrics_of(services), lambda: services.extras["deriver"])
    notify_gauges.watch_outbox(metrics.metrics_of(services), engine)
    services.extras["staff_renderer"] = Renderer(
        i18n.load_all(domain=i18n.STAFF_DOMAIN), locales=i18n.STAFF_LOCALES
    )
    return services


PARTS = ("resident", "staff")


def create_app(
    settings: Settings, *, services: Services | None = None, parts: Sequence[str] = PARTS
) -> Starlette:
    """Lykta in one process: the back office at `/staff/`, the resident side at `/`; or only one of them
    (`parts`), so that what the onion service or the internet reaches holds no back office at all."""
    unknown = set(parts) - set(PARTS)
    if unknown or not parts:
        raise ValueError(f"parts must be some of {PARTS}, not {sorted(unknown) or 'none'}")
    logging.getLogger("lykta.access").setLevel(logging.INFO)
    services = services or build_services(settings)
    routes: list[Route | Mount] = []
    if "staff" in parts:
        routes.append(Mount("/staff", app=create_staff_app(settings, services=services)))
    if "resident" in parts:
        routes.append(Mount("", app=create_resident_app(settings, services=services)))
    else:
        # The back office's pages use the same style sheet and fonts, served by the resident app otherwise.
        routes.append(Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"))
    app = Starlette(
        routes=routes,
        # A path neither mount matches (a decoded newline: a Mount's pattern stops at one) is answered
        # here, by Starlette's plain 404: it gets the same headers as every other response (no
        # Onion-Location: the back office must not get one, and the mounts add it where it belongs).
        middleware=[Middleware(SecurityHeaders, onion_address="")],
    )
    app.state.services = services
    return app
