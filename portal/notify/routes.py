"""Routes of the notification pages (wired into portal.app.create_staff_app, before the admin section's
catch-all route)."""

from __future__ import annotations

from starlette.routing import Route

from portal.notify import views

ROUTES: list[Route] = [
    Route("/notifications", views.own_settings),
    Route("/notifications", views.own_settings_save, methods=["POST"]),
    Route("/admin/notifications", views.admin_overview),
    Route("/admin/notifications/retry", views.admin_retry, methods=["POST"]),
]
