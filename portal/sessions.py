"""Sessions for tipsters and staff (DESIGN 3).

The cookie carries a signed random session id and a random session key. The row, found by a hash of the
id, holds the unlocked private key sealed under the session key. So the database alone cannot open it,
the cookie alone points at nothing once the row is gone, and ending a session deletes the row.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import secrets

import nacl.exceptions
import nacl.secret
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import LargeBinary, delete, update
from sqlmodel import Column, Field, Session, SQLModel, col

from portal.db import utcnow

_ID_BYTES = 32
_KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE
COOKIE_SALT = "lykta.session.v1"


class SessionRow(SQLModel, table=True):
    __tablename__ = "session"

    id_hash: bytes = Field(sa_column=Column(LargeBinary(32), primary_key=True))
    kind: str = Field(max_length=16)  # tipster or staff
    subject: str = Field(max_length=64, index=True)  # a tip id or a staff id
    sealed_secret: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime.datetime = Field(default_factory=utcnow)
    last_seen_at: datetime.datetime = Field(default_factory=utcnow, index=True)


@dataclasses.dataclass(frozen=True)
class OpenSession:
    """A live session: whose it is and the private key it unlocked (kept in memory for one request)."""

    kind: str
    subject: str
    secret: bytes = dataclasses.field(repr=False)
    cookie_id_hash: bytes = dataclasses.field(repr=False)


def _hash(session_id: bytes) -> bytes:
    return hashlib.sha256(session_id).digest()


class SessionStore:
    def __init__(self, signing_key: bytes) -> None:
        self._serializer = URLSafeSerializer(signing_key, salt=COOKIE_SALT)

    def start(self, db: Session, *, kind: str, subject: str, secret: bytes) -> str:
        """Create a session row and return the cookie value that opens it."""
        session_id = secrets.token_bytes(_ID_BYTES)
        session_key = secrets.token_bytes(_KEY_BYTES)
        sealed = bytes(nacl.secret.SecretBox(session_key).encrypt(secret))
        db.add(SessionRow(id_hash=_hash(session_id), kind=kind, subject=subject, sealed_secret=sealed))
        token = base64.urlsafe_b64encode(session_id + session_key).decode()
        return str(self._serializer.dumps(token))

    def _parse(self, cookie: str) -> tuple[bytes, bytes] | None:
        try:
            raw = base64.urlsafe_b64decode(str(self._serializer.loads(cookie)))
        except (BadSignature, ValueError, TypeError):
            return None
        if len(raw) != _ID_BYTES + _KEY_BYTES:
            return None
        return raw[:_ID_BYTES], raw[_ID_BYTES:]

    def open(
        self,
        db: Session,
        cookie: str | None,
        *,
        kind: str,
        idle: datetime.timedelta,
        absolute: datetime.timedelta | None = None,
    ) -> OpenSession | None:
        """The session behind `cookie`, touched; None if absent, forged, of another kind, idle too long, or
        older than `absolute` (an expired session's row is deleted)."""
        parsed = self._parse(cookie) if cookie else None
        if parsed is None:
            return None
        session_id, session_key = parsed
        row = db.get(SessionRow, _hash(session_id))
        if row is None or row.kind != kind:
            return None
        now = utcnow()
        # Plain DELETE and UPDATE statements rather than the ORM's unit of work: another process may end or
        # expire this very session meanwhile, and a statement that finds no row is no error (the ORM's
        # flush would raise StaleDataError and the request would fail instead of finding no session).
        this_row = col(SessionRow.id_hash) == row.id_hash
        if now - row.last_seen_at > idle or (absolute is not None and now - row.created_at > absolute):
            db.execute(delete(SessionRow).where(this_row))
            return None
        try:
            secret = nacl.secret.SecretBox(session_key).decrypt(row.sealed_secret)
        except nacl.exceptions.CryptoError:
            return None
        db.execute(
            update(SessionRow)
            .where(this_row)
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
        return OpenSession(
            kind=row.kind, subject=row.subject, secret=bytes(secret), cookie_id_hash=row.id_hash
        )

    def end(self, db: Session, cookie: str | None) -> None:
        parsed = self._parse(cookie) if cookie else None
        if parsed is not None:
            db.execute(delete(SessionRow).where(col(SessionRow.id_hash) == _hash(parsed[0])))

    @staticmethod
    def purge_idle(db: Session, *, kind: str, idle: datetime.timedelta) -> None:
        cutoff = utcnow() - idle
        db.execute(
            delete(SessionRow).where(col(SessionRow.kind) == kind, col(SessionRow.last_seen_at) < cutoff)
        )
