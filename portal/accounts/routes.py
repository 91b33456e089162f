"""Routes of the accounts section of the staff app (wired into portal.app.create_staff_app)."""

from __future__ import annotations

from starlette.routing import Route

from portal.accounts import views

ROUTES: list[Route] = [
    Route("/enrol/{token:str}", views.enrol_form),
    Route("/enrol/{token:str}", views.enrol, methods=["POST"]),
]
