"""Organisations, municipalities, desks and the routing table (organisation x municipality x category)."""

from __future__ import annotations

import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.db import utcnow


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=32)  # municipality, police, agency, joint
    # The organisation's recovery key is kept offline; only its public half lives here (DESIGN 3).
    recovery_public_key: str = Field(max_length=100)


class Municipality(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    finnish_admin_area: bool = False


class Desk(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True, index=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    name: str = Field(max_length=200)
    # The desk key exists from the moment the desk does, so a tip can always be delivered.
    public_key: str = Field(max_length=100)
    retention_days: int = 730
    # Send the tipster an automatic "we have received your tip" message as soon as it arrives.
    auto_acknowledge: bool = False
    created_at: datetime.datetime = Field(default_factory=utcnow)


class Route(SQLModel, table=True):
    """Tips of `category` from `municipality` go to `desk`; non-primary routes are hand-over options."""

    __table_args__ = (UniqueConstraint("municipality_id", "category", "desk_id"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    category: str = Field(max_length=64)
    desk_id: int = Field(foreign_key="desk.id", index=True)
    primary: bool = True
