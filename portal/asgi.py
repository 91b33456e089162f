"""ASGI entry points for servers that take a factory: all of Lykta, or only one of its two parts.

uvicorn --factory portal.asgi:app_from_environment
uvicorn --factory portal.asgi:resident_app_from_environment    # what the onion service and the internet reach
uvicorn --factory portal.asgi:staff_app_from_environment       # /staff/ only, for an internal address
"""

from __future__ import annotations

from starlette.applications import Starlette

from portal.app import create_app
from portal.settings import load_settings


def app_from_environment() -> Starlette:
    return create_app(load_settings())


def resident_app_from_environment() -> Starlette:
    return create_app(load_settings(), parts=("resident",))


def staff_app_from_environment() -> Starlette:
    return create_app(load_settings(), parts=("staff",))
