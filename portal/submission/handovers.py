"""Hand-overs a tipster is asked about: another desk may read the tip only if the tipster agrees.

Secrecy law stops authorities from forwarding tips freely (domain.md); a desk asks, the tipster sees the
request in the mailbox and approves or declines, and on approval the tipster's own key adds the new desk
to every envelope of the tip.
"""

from __future__ import annotations

import dataclasses

from sqlmodel import Session, col, select

import crypto
from portal.audit import log as audit
from portal.db import utcnow
from portal.network.models import Desk, Organisation
from portal.retention import services as retention
from portal.submission.models import HandOver, Tip
from portal.submission.services import share_with_desk

CONSENT = "consent"


@dataclasses.dataclass(frozen=True)
class ConsentRequest:
    id: int
    desk_name: str
    organisation_name: str


def pending_requests(db: Session, tip: Tip) -> list[ConsentRequest]:
    rows = db.exec(
        select(HandOver, Desk, Organisation)
        .join(Desk, col(Desk.id) == col(HandOver.to_desk_id))
        .join(Organisation, col(Organisation.id) == col(Desk.organisation_id))
        .where(HandOver.tip_id == tip.id, HandOver.basis == CONSENT, HandOver.status == "requested")
        .order_by(col(HandOver.created_at))
    )
    return [
        ConsentRequest(id=handover.id, desk_name=desk.name, organisation_name=org.name)
        for handover, desk, org in rows
        if handover.id is not None
    ]


def decide(db: Session, *, tip: Tip, request_id: int, approve: bool, tipster: crypto.X25519Identity) -> bool:
    """Approve or decline a pending request of this tip; False if there is no such request."""
    handover = db.get(HandOver, request_id)
    if (
        handover is None
        or handover.tip_id != tip.id
        or handover.status != "requested"
        or handover.basis != CONSENT
    ):
        return False
    handover.status = "approved" if approve else "declined"
    handover.decided_at = utcnow()
    db.add(handover)
    retention.tipster_active(db, tip, at=handover.decided_at)  # a decision is tipster activity
    if approve:
        desk = db.get(Desk, handover.to_desk_id)
        if desk is None:
            return False
        share_with_desk(db, tip=tip, identity=tipster, desk=desk, reason=CONSENT)
        handover.status = "done"
    audit.record(
        db, "handover.consent", actor="tipster", tip_id=tip.id, desk_id=handover.to_desk_id,
        detail={"approved": approve},
    )  # fmt: skip
    return True
