"""Routes of the keyring section of the staff app (wired into portal.app.create_staff_app)."""

from __future__ import annotations

from starlette.routing import Route

ROUTES: list[Route] = []
