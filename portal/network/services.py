"""Reading the network: municipalities to offer, and the desks a tip goes to (the routing table)."""

from __future__ import annotations

import dataclasses

from sqlmodel import Session, col, select

from portal.network.models import Desk, Municipality, Organisation, Route


@dataclasses.dataclass(frozen=True)
class Recipient:
    """A desk as a resident sees it before sending: the desk and the organisation it belongs to."""

    desk_id: int
    desk_name: str
    organisation_name: str
    public_key: str


def municipalities(db: Session) -> list[Municipality]:
    return list(db.exec(select(Municipality).order_by(Municipality.name)))


def municipality_by_code(db: Session, code: str) -> Municipality | None:
    return db.exec(select(Municipality).where(Municipality.code == code)).first()


def recipients_for(db: Session, *, municipality_code: str, category: str) -> list[Recipient]:
    """The desks a new tip of `category` from the municipality is sent to: its primary routes."""
    rows = db.exec(
        select(Desk, Organisation)
        .join(Route, col(Route.desk_id) == col(Desk.id))
        .join(Municipality, col(Route.municipality_id) == col(Municipality.id))
        .join(Organisation, col(Desk.organisation_id) == col(Organisation.id))
        .where(Municipality.code == municipality_code, Route.category == category, col(Route.primary))
        .order_by(Organisation.name, Desk.name)
    )
    return [
        Recipient(
            desk_id=desk.id, desk_name=desk.name, organisation_name=org.name, public_key=desk.public_key
        )
        for desk, org in rows
        if desk.id is not None
    ]
