"""Handing a tip on to another desk: on the tipster's consent, or on a legal basis the officer records.

With consent, the desk only asks: the tipster approves in the mailbox and the tipster's key adds the new
desk (portal.submission.handovers). On a legal basis, the officer's desk key adds it at once, and the
provision relied on is recorded in clear with the hand-over and in the audit log.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from portal.audit import log as audit
from portal.keyring.services import DeskKeyrings, identities_for
from portal.network.models import Desk
from portal.submission.models import HandOver, TipRecipient
from portal.submission.services import share_with_desk
from portal.triage.services import NotAllowedError, reachable_tip

MAX_LEGAL_BASIS = 300


def handover_targets(db: Session, tip_id: str) -> list[Desk]:
    """Desks the tip could be handed to: every desk it has not reached yet."""
    current = select(TipRecipient.desk_id).where(TipRecipient.tip_id == tip_id)
    return list(db.exec(select(Desk).where(col(Desk.id).not_in(current)).order_by(col(Desk.name))))


def _target(db: Session, tip_id: str, to_desk_id: int) -> Desk:
    desk = db.get(Desk, to_desk_id)
    if desk is None or db.get(TipRecipient, (tip_id, to_desk_id)) is not None:
        raise NotAllowedError()
    return desk


def request_consent(
    db: Session, *, tip_id: str, to_desk_id: int, staff_id: int, actor: str,
    desk_keys: DeskKeyrings,
) -> HandOver:  # fmt: skip
    tip, mine = reachable_tip(db, tip_id, desk_keys)
    desk = _target(db, tip.id, to_desk_id)
    handover = HandOver(
        tip_id=tip.id, from_desk_id=mine[0], to_desk_id=desk.id or 0, basis="consent", requested_by=staff_id
    )
    db.add(handover)
    audit.record(db, "handover.requested", actor=actor, tip_id=tip.id, desk_id=desk.id)
    return handover


def hand_over_on_legal_basis(
    db: Session, *, tip_id: str, to_desk_id: int, legal_basis: str, staff_id: int, actor: str,
    desk_keys: DeskKeyrings,
) -> HandOver:  # fmt: skip
    legal_basis = " ".join(legal_basis.split())[:MAX_LEGAL_BASIS]
    if not legal_basis:
        raise ValueError("a legal basis must be recorded")
    tip, mine = reachable_tip(db, tip_id, desk_keys)
    desk = _target(db, tip.id, to_desk_id)
    share_with_desk(db, tip=tip, identity=identities_for(desk_keys, mine), desk=desk, reason="legal-basis")
    handover = HandOver(
        tip_id=tip.id, from_desk_id=mine[0], to_desk_id=desk.id or 0, basis="legal-basis",
        legal_basis=legal_basis, status="done", requested_by=staff_id,
    )  # fmt: skip
    db.add(handover)
    audit.record(
        db,
        "handover.legal-basis",
        actor=actor,
        tip_id=tip.id,
        desk_id=desk.id,
        detail={"legal_basis": legal_basis},
    )
    return handover


def handovers_of(db: Session, tip_id: str) -> list[tuple[HandOver, Desk]]:
    rows = db.exec(
        select(HandOver, Desk)
        .join(Desk, col(Desk.id) == col(HandOver.to_desk_id))
        .where(HandOver.tip_id == tip_id)
        .order_by(col(HandOver.created_at))
    )
    return [(handover, desk) for handover, desk in rows]
