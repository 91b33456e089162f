"""Routes of the statistics pages: the back office's (wired into portal.app.create_staff_app) and the
resident side's, under each language prefix (wired into portal.app's resident routes)."""

from __future__ import annotations

from starlette.routing import Route

from portal.stats import views

STAFF_ROUTES: list[Route] = [Route("/statistics", views.staff_statistics)]
# Paths after the language prefix; an ended quarter has its own address, so the language links keep it.
RESIDENT_PAGES = [
    ("/statistics", views.public_statistics),
    ("/statistics/{quarter:str}", views.public_statistics),
]
