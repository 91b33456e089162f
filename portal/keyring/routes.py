"""Routes of the keyring section of the staff app (wired into portal.app.create_staff_app)."""

from __future__ import annotations

from starlette.routing import Route

from portal.keyring import views

ROUTES: list[Route] = [
    Route("/desks/{desk_id:int}", views.desk_page),
    Route("/desks/{desk_id:int}/grant", views.desk_grant, methods=["POST"]),
    Route("/desks/{desk_id:int}/remove", views.desk_remove, methods=["POST"]),
]
