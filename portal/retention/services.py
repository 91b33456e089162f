"""Keeping each tip's deletion date current, legal holds, and a desk's rules as administrators edit them.

`recompute` is called wherever something the rules read changes: the status or outcome (triage), tipster
activity (submission), the desks a tip reaches (hand-over), a hold, a desk's rules (admin). The date it
stores on the tip (`Tip.delete_after`) is what `lykta purge` acts on, and the purge evaluates it once more
under lock before deleting anything.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence

from sqlmodel import Session, col, select

from portal.audit import log as audit
from portal.db import utcnow
from portal.network.models import Desk
from portal.retention.models import LegalHold, RetentionRule
from portal.retention.rules import ACTIVITY_GRACE, MAX_DAYS, MIN_DAYS, Deletion, DeskRules, deletion
from portal.submission.models import Tip, TipRecipient

MAX_REFERENCE = 200


class HoldError(Exception):
    """The hold reference is empty, too long, or not a single printable line."""


def desk_rules(db: Session, desk_ids: Sequence[int]) -> dict[int, DeskRules]:
    """The retention rules of these desks, by desk id."""
    ids = list(desk_ids) or [-1]
    outcomes: dict[int, dict[str, int]] = {}
    for rule in db.exec(select(RetentionRule).where(col(RetentionRule.desk_id).in_(ids))):
        outcomes.setdefault(rule.desk_id, {})[rule.outcome] = rule.days
    return {
        desk_id: DeskRules(closed_days=days, outcome_days=outcomes.get(desk_id, {}))
        for desk_id, days in db.exec(select(Desk.id, Desk.retention_days).where(col(Desk.id).in_(ids)))
        if desk_id is not None
    }


def evaluate(db: Session, tip: Tip) -> Deletion:
    """The tip's deletion date by the rules as they are now, with what decided it."""
    desk_ids = list(db.exec(select(TipRecipient.desk_id).where(TipRecipient.tip_id == tip.id)))
    held = db.get(LegalHold, tip.id) is not None
    return deletion(
        status=tip.status,
        outcome=tip.outcome,
        closed_at=tip.closed_at,
        last_tipster_activity_at=tip.last_tipster_activity_at,
        held=held,
        desks=list(desk_rules(db, desk_ids).values()),
    )


def recompute(db: Session, tip: Tip) -> datetime.datetime | None:
    """Store the tip's deletion date as the rules give it now (in the caller's transaction)."""
    due = evaluate(db, tip).at
    if tip.delete_after != due:
        tip.delete_after = due
        db.add(tip)
    return due


def recompute_desk(db: Session, desk_id: int) -> int:
    """Recompute every closed tip of a desk whose rules changed; how many there were."""
    closed = db.exec(
        select(Tip)
        .join(TipRecipient, col(TipRecipient.tip_id) == col(Tip.id))
        .where(TipRecipient.desk_id == desk_id, Tip.status == "closed")
    ).all()
    for tip in closed:
        recompute(db, tip)
    return len(closed)


def tipster_active(db: Session, tip: Tip, *, at: datetime.datetime | None = None) -> None:
    """The tipster added to the tip (a message, a consent decision): push its deletion date back."""
    tip.last_tipster_activity_at = at or utcnow()
    db.add(tip)
    recompute(db, tip)


# ---------------------------------------------------------------------------------------------------------
# Legal holds


def clean_reference(value: str) -> str:
    """A hold's reference: one printable line of 1 to MAX_REFERENCE characters, inner space collapsed."""
    reference = " ".join(value.split())
    if not reference or len(reference) > MAX_REFERENCE or not reference.isprintable():
        raise HoldError(reference)
    return reference


def hold_of(db: Session, tip_id: str) -> LegalHold | None:
    return db.get(LegalHold, tip_id)


def set_hold(db: Session, *, tip: Tip, reference: str, staff_id: int, actor: str) -> LegalHold:
    """Put the tip on hold (or change the reference of its hold): it is not deleted until cleared."""
    cleaned = clean_reference(reference)
    hold = db.get(LegalHold, tip.id)
    if hold is None:
        hold = LegalHold(tip_id=tip.id, reference=cleaned, set_by=staff_id)
    else:
        hold.reference, hold.set_by, hold.set_at = cleaned, staff_id, utcnow()
    db.add(hold)
    db.flush()
    recompute(db, tip)
    # The reference is a citation, like a hand-over's legal basis: it belongs in the record of who held
    # the tip and why. It is never tip content (clean_reference, and the hint on the form).
    audit.record(db, "tip.hold-set", actor=actor, tip_id=tip.id, detail={"reference": cleaned})
    return hold


def clear_hold(db: Session, *, tip: Tip, actor: str) -> bool:
    """Lift the tip's hold; its deletion date is computed again. False if it was not held."""
    hold = db.get(LegalHold, tip.id)
    if hold is None:
        return False
    db.delete(hold)
    db.flush()
    due = recompute(db, tip)
    audit.record(
        db,
        "tip.hold-cleared",
        actor=actor,
        tip_id=tip.id,
        detail={"delete_after": due.isoformat(timespec="seconds") if due else None},
    )
    return True


# ---------------------------------------------------------------------------------------------------------
# A desk's rules, as the administrator edits them


def outcome_rules(db: Session, desk_id: int) -> dict[str, int]:
    """The outcomes this desk has its own rule for, and their days."""
    return {
        rule.outcome: rule.days
        for rule in db.exec(select(RetentionRule).where(RetentionRule.desk_id == desk_id))
    }


def parse_outcome_days(
    values: Mapping[str, str], outcomes: Sequence[str]
) -> tuple[dict[str, int | None], list[str]]:
    """The days typed per outcome (blank: no rule of the desk's own) and the outcomes typed wrongly."""
    parsed: dict[str, int | None] = {}
    wrong: list[str] = []
    for outcome in outcomes:
        text = values.get(outcome, "").strip()
        if not text:
            parsed[outcome] = None
        elif text.isascii() and text.isdigit() and len(text) <= 9 and MIN_DAYS <= int(text) <= MAX_DAYS:
            parsed[outcome] = int(text)
        else:
            wrong.append(outcome)
    return parsed, wrong


def save_outcome_rules(db: Session, desk_id: int, days: Mapping[str, int | None]) -> list[str]:
    """Make the desk's rules per outcome `days` (None removes a rule); the outcomes whose rule changed.

    The tips of the desk are not recomputed here: the caller does, once, after the desk's default changed
    too (`recompute_desk`).
    """
    existing = {r.outcome: r for r in db.exec(select(RetentionRule).where(RetentionRule.desk_id == desk_id))}
    changed = []
    for outcome, wanted in sorted(days.items()):
        rule = existing.get(outcome)
        if wanted is None and rule is not None:
            db.delete(rule)
            changed.append(outcome)
        elif wanted is not None and rule is None:
            db.add(RetentionRule(desk_id=desk_id, outcome=outcome, days=wanted))
            changed.append(outcome)
        elif wanted is not None and rule is not None and rule.days != wanted:
            rule.days = wanted
            db.add(rule)
            changed.append(outcome)
    db.flush()
    return changed


@dataclasses.dataclass(frozen=True)
class TipRetention:
    """What the tip page shows: the deletion date, why, and the hold if there is one."""

    deletion: Deletion
    hold: LegalHold | None


def tip_retention(db: Session, tip: Tip) -> TipRetention:
    return TipRetention(deletion=evaluate(db, tip), hold=hold_of(db, tip.id))


__all__ = [
    "ACTIVITY_GRACE",
    "MAX_REFERENCE",
    "HoldError",
    "TipRetention",
    "clean_reference",
    "clear_hold",
    "desk_rules",
    "evaluate",
    "hold_of",
    "outcome_rules",
    "parse_outcome_days",
    "recompute",
    "recompute_desk",
    "save_outcome_rules",
    "set_hold",
    "tip_retention",
    "tipster_active",
]
