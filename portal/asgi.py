"""ASGI entry point for servers that take a factory.

uvicorn --factory portal.asgi:app_from_environment
"""

from __future__ import annotations

from starlette.applications import Starlette

from portal.app import create_app
from portal.settings import load_settings


def app_from_environment() -> Starlette:
    return create_app(load_settings())
