"""The retention rules as plain functions: open, closed, per outcome, several desks, activity, hold."""

from __future__ import annotations

import datetime

from portal.retention.rules import ACTIVITY_GRACE, DeskRules, deletion

CLOSED = datetime.datetime(2026, 1, 10, 12, 0, tzinfo=datetime.UTC)
LONG_AGO = datetime.datetime(2025, 6, 1, tzinfo=datetime.UTC)


def when(**changes: object) -> datetime.datetime | None:
    state: dict[str, object] = {
        "status": "closed",
        "outcome": "action-taken",
        "closed_at": CLOSED,
        "last_tipster_activity_at": LONG_AGO,
        "held": False,
        "desks": [DeskRules()],
    }
    state.update(changes)
    return deletion(**state).at


def test_open_tips_are_never_due() -> None:
    for status in ("new", "acknowledged", "in-progress"):
        assert when(status=status, outcome=None, closed_at=None) is None
    assert deletion(
        status="in-progress", outcome=None, closed_at=None, last_tipster_activity_at=LONG_AGO, held=False,
        desks=[DeskRules(closed_days=30)],
    ).basis == "open"  # fmt: skip


def test_closed_tips_follow_the_desk_default_and_outcome_rules() -> None:
    assert when() == CLOSED + datetime.timedelta(days=730)
    assert when(desks=[DeskRules(closed_days=365)]) == CLOSED + datetime.timedelta(days=365)
    # Unfounded: 60 days unless the desk says otherwise, and never longer than the desk's default.
    assert when(outcome="unfounded") == CLOSED + datetime.timedelta(days=60)
    assert when(outcome="unfounded", desks=[DeskRules(closed_days=40)]) == CLOSED + datetime.timedelta(
        days=40
    )
    own = DeskRules(closed_days=730, outcome_days={"unfounded": 90, "duplicate": 30})
    assert when(outcome="unfounded", desks=[own]) == CLOSED + datetime.timedelta(days=90)
    assert when(outcome="duplicate", desks=[own]) == CLOSED + datetime.timedelta(days=30)


def test_a_tip_of_several_desks_is_kept_as_long_as_the_longest() -> None:
    short, long = DeskRules(closed_days=100), DeskRules(closed_days=400)
    assert when(desks=[short, long]) == CLOSED + datetime.timedelta(days=400)
    assert when(outcome="unfounded", desks=[DeskRules(outcome_days={"unfounded": 45}), DeskRules()]) == (
        CLOSED + datetime.timedelta(days=60)
    )


def test_tipster_activity_pushes_the_date_back() -> None:
    late = CLOSED + datetime.timedelta(days=59)
    result = deletion(
        status="closed", outcome="unfounded", closed_at=CLOSED, last_tipster_activity_at=late, held=False,
        desks=[DeskRules()],
    )  # fmt: skip
    assert result.at == late + ACTIVITY_GRACE and result.basis == "activity"
    # Activity long before closing changes nothing.
    assert when(outcome="unfounded", last_tipster_activity_at=LONG_AGO) == CLOSED + datetime.timedelta(
        days=60
    )


def test_a_hold_stops_deletion() -> None:
    assert when(held=True) is None
    assert when(held=True, outcome="unfounded") is None


def test_naive_times_from_sqlite_are_read_as_utc() -> None:
    naive = CLOSED.replace(tzinfo=None)
    assert when(closed_at=naive, last_tipster_activity_at=LONG_AGO.replace(tzinfo=None)) == (
        CLOSED + datetime.timedelta(days=730)
    )
