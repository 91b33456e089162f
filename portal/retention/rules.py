"""When a tip is deleted: the rules, as plain functions of a tip's state (no database here).

The rules (domain.md, "Retention"; DESIGN 1):

* An **open** tip (new, acknowledged, in progress) is never deleted automatically. Someone is working on
  it, and deleting a case out from under a desk would lose work without anyone deciding it; neglected
  tips show up in the inbox's overdue filters instead.
* A **closed** tip is deleted a number of days after it was closed: the desk's default
  (`Desk.retention_days`, 730 unless changed: whistleblowing channels keep at most two years after
  closing), or the desk's rule for the tip's outcome. Without a rule, a tip closed as **unfounded** is
  kept 60 days (never longer than the desk's default).
* A tip sent to several desks is kept as long as the desk that keeps it longest: each desk's own rules
  must hold for the desk, and deleting it earlier for one would delete it for all.
* **New tipster activity** (a follow-up message, an answer to a consent request) pushes the date back: a
  tip is never deleted earlier than `ACTIVITY_GRACE` (90 days) after the tipster last added to it, so a
  tipster never writes into a mailbox that vanishes the next day (domain.md, complaints).
* A **legal hold** stops deletion altogether until it is cleared.

Changing a rule later applies to every tip it covers, from its closing date: `recompute` re-evaluates them.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence

DEFAULT_CLOSED_DAYS = 730
# Outcomes kept shorter than the desk's default unless the desk says otherwise.
DEFAULT_OUTCOME_DAYS: Mapping[str, int] = {"unfounded": 60}
ACTIVITY_GRACE = datetime.timedelta(days=90)
# What an administrator may set for an outcome (the same bounds as the desk default in portal.admin).
MIN_DAYS = 30
MAX_DAYS = 3650


@dataclasses.dataclass(frozen=True)
class DeskRules:
    """One desk's retention: its default for closed tips and its rules per outcome."""

    closed_days: int = DEFAULT_CLOSED_DAYS
    outcome_days: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def days_for(self, outcome: str | None) -> int:
        """Days a tip closed with `outcome` is kept after closing."""
        if outcome is not None and outcome in self.outcome_days:
            return self.outcome_days[outcome]
        if outcome is not None and outcome in DEFAULT_OUTCOME_DAYS:
            return min(DEFAULT_OUTCOME_DAYS[outcome], self.closed_days)
        return self.closed_days


@dataclasses.dataclass(frozen=True)
class Deletion:
    """A tip's deletion date and what decided it.

    `basis` is "open" or "hold" (no date), "closed" (closing date plus the rule's days) or "activity" (the
    tipster's last activity plus the grace period came later).
    """

    at: datetime.datetime | None
    basis: str
    days: int | None = None


def deletion(
    *,
    status: str,
    outcome: str | None,
    closed_at: datetime.datetime | None,
    last_tipster_activity_at: datetime.datetime,
    held: bool,
    desks: Sequence[DeskRules],
) -> Deletion:
    """When a tip in this state is due for deletion, by the rules in the module docstring."""
    if held:
        return Deletion(None, "hold")
    if status != "closed" or closed_at is None:
        return Deletion(None, "open")
    days = max((rules.days_for(outcome) for rules in desks), default=DEFAULT_CLOSED_DAYS)
    by_rule = aware(closed_at) + datetime.timedelta(days=days)
    by_activity = aware(last_tipster_activity_at) + ACTIVITY_GRACE
    if by_activity > by_rule:
        return Deletion(by_activity, "activity", days)
    return Deletion(by_rule, "closed", days)


def aware(moment: datetime.datetime) -> datetime.datetime:
    """SQLite hands back naive datetimes for values stored as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)
