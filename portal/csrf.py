"""CSRF tokens: itsdangerous-signed, one salt per purpose, expiring, tied to a per-browser cookie.

SameSite=Strict cookies already stop most cross-site posts; the token also covers browsers that ignore
SameSite and forms posted from a page of ours that an attacker framed or replayed. The token signs the
value of a random `csrf` cookie, so a token lifted from one browser is useless in another.
"""

from __future__ import annotations

import hmac
import secrets

from itsdangerous import BadData, URLSafeTimedSerializer

COOKIE_NAME = "lykta_csrf"
FIELD_NAME = "csrf"
MAX_AGE_SECONDS = 4 * 3600  # a frightened resident may take a long time over a tip


class CsrfError(Exception):
    """The form token is missing, forged, expired, for another purpose or for another browser."""


class CsrfTokens:
    def __init__(self, signing_key: bytes) -> None:
        self._signing_key = signing_key

    @staticmethod
    def new_cookie_value() -> str:
        return secrets.token_urlsafe(24)

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._signing_key, salt=f"lykta.csrf.{purpose}")

    def issue(self, cookie_value: str, *, purpose: str) -> str:
        return str(self._serializer(purpose).dumps(cookie_value))

    def check(self, token: str | None, cookie_value: str | None, *, purpose: str) -> None:
        if not token or not cookie_value:
            raise CsrfError()
        try:
            signed_for = self._serializer(purpose).loads(token, max_age=MAX_AGE_SECONDS)
        except BadData:
            raise CsrfError() from None
        if not isinstance(signed_for, str) or not hmac.compare_digest(signed_for, cookie_value):
            raise CsrfError()
