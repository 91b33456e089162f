"""Routes of the admin section of the staff app (wired into portal.app.create_staff_app).

Every route answers only administrators (portal.admin.web.administrator); each POST has its own CSRF
purpose and is audited.
"""

from __future__ import annotations

from starlette.routing import Route

from portal.admin import people_views as people
from portal.admin import views

POST = ["POST"]

ROUTES: list[Route] = [
    Route("/admin", views.overview),
    Route("/admin/", views.overview),
    Route("/admin/organisations", views.organisations),
    Route("/admin/organisations", views.organisation_create, methods=POST),
    Route("/admin/municipalities", views.municipalities),
    Route("/admin/municipalities", views.municipality_create, methods=POST),
    Route("/admin/desks", views.desks),
    Route("/admin/desks", views.desk_create, methods=POST),
    Route("/admin/desks/{desk_id:int}", views.desk),
    Route("/admin/desks/{desk_id:int}", views.desk_update, methods=POST),
    Route("/admin/routing", views.routing_table),
    Route("/admin/routing", views.routing_save, methods=POST),
    Route("/admin/staff", people.staff_list),
    Route("/admin/staff", people.staff_invite, methods=POST),
    Route("/admin/staff/{staff_id:int}", people.staff_member),
    Route("/admin/staff/{staff_id:int}/disable", people.staff_disable, methods=POST),
    Route("/admin/staff/{staff_id:int}/enable", people.staff_enable, methods=POST),
    Route("/admin/staff/{staff_id:int}/reset-totp", people.staff_reset_totp, methods=POST),
    Route("/admin/staff/{staff_id:int}/role", people.staff_role, methods=POST),
    Route("/admin/staff/{staff_id:int}/desks/add", people.staff_desk_add, methods=POST),
    Route("/admin/staff/{staff_id:int}/desks/remove", people.staff_desk_remove, methods=POST),
    # Last: any other address or method under /admin/ gets the same answer as a missing page, instead of
    # Starlette's 405 or trailing-slash redirect, which would confirm the section to a non-administrator.
    Route(
        "/admin/{rest:path}", views.nothing_here, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    ),
]
