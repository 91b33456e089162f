"""Counting the fact table: the back office's report and the public one, one quarter at a time.

Periods are calendar quarters (UTC days), for staff and public alike. Quarters do not overlap, so two
reports can never be subtracted from each other to count a smaller group than a table shows: that is why
periods are chosen from a list, not typed in (portal.stats.suppression). The public page only shows
quarters that have ended, so its figures do not move from one day to the next and a change cannot be
lined up with the day a tip was sent.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from portal.network.catalogue import CATEGORIES
from portal.network.models import Desk, Municipality
from portal.stats.models import TipFact
from portal.stats.suppression import THRESHOLD, Cell, protect_group
from portal.triage.services import OUTCOMES

PUBLISHED_QUARTERS = 8
STAFF_QUARTERS = 12
# Where an outcome is not yet known, the staff report counts the tip under this key.
OPEN = "open"
_QUARTER = re.compile(r"(\d{4})-[qQ]([1-4])")


@dataclasses.dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int  # 1 to 4

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """ "2026-Q3" (any case); ValueError for anything else."""
        match = _QUARTER.fullmatch(text)
        if match is None or not 1 <= int(match.group(1)) <= 9998:
            raise ValueError("not a quarter")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: datetime.date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @property
    def first_day(self) -> datetime.date:
        return datetime.date(self.year, 3 * self.number - 2, 1)

    @property
    def last_day(self) -> datetime.date:
        return self.next().first_day - datetime.timedelta(days=1)

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"


@dataclasses.dataclass(frozen=True)
class Row:
    key: str  # a category or outcome code, an id, or a week ("2026-W40")
    label: str  # a msgid (categories), a proper name (municipalities, desks) or a week number
    cell: Cell


@dataclasses.dataclass(frozen=True)
class Table:
    rows: tuple[Row, ...]
    total: Cell | None = None

    @property
    def largest(self) -> int:
        """The largest figure shown, for scaling the chart (at least the threshold)."""
        return max([THRESHOLD, *(row.cell.value or 0 for row in self.rows)])


@dataclasses.dataclass(frozen=True)
class Timing:
    """Days from receipt to an event, over the tips that have had it; None with fewer than 5 tips."""

    median_days: float | None
    p90_days: int | None


@dataclasses.dataclass(frozen=True)
class StaffReport:
    quarter: Quarter
    tips: Cell
    weeks: Table
    categories: Table
    municipalities: Table
    desks: Table
    outcomes: Table
    acknowledgement: Timing
    closing: Timing


@dataclasses.dataclass(frozen=True)
class PublicReport:
    quarter: Quarter
    received: Cell
    categories: Table
    concluded: Table
    quarters: Table


Keys = Sequence[tuple[str, str]]


def _tables(
    total: int, splits: Sequence[tuple[Keys, Counter[str]]], *, total_first: bool = False
) -> tuple[Cell, list[Table]]:
    """Tables that each split the same `total` tips: rows for the keys (key, label) in order, protected
    together (portal.stats.suppression, rules 1 to 3); and the total as it may be shown."""
    counts = [[counter.get(key, 0) for key, _label in keys] for keys, counter in splits]
    total_cell, cells = protect_group(total, counts, total_first=total_first)
    tables = [
        Table(
            tuple(Row(key, label, cell) for (key, label), cell in zip(keys, row_cells, strict=True)),
            total_cell,
        )
        for (keys, _counter), row_cells in zip(splits, cells, strict=True)
    ]
    return total_cell, tables


def _category_keys(present: Iterable[str]) -> list[tuple[str, str]]:
    """Every category a resident can choose, in the form's order, and any retired code still counted."""
    keys = [(c.code, c.name) for c in CATEGORIES if not c.emergency]
    known = {code for code, _name in keys}
    return keys + [(code, code) for code in sorted(set(present) - known)]


def _timing(days: Counter[int]) -> Timing:
    """Median and 90th percentile of `days` (how many tips took each number of days)."""
    if days.total() < THRESHOLD:
        return Timing(None, None)
    ordered = sorted(days.elements())
    # Nearest-rank 90th percentile: the day by which nine in ten of these tips had it.
    p90 = ordered[-(-9 * len(ordered) // 10) - 1]
    return Timing(float(statistics.median(ordered)), p90)


def _grouped(db: Session, *columns: Any, where: Sequence[Any]) -> list[tuple[Any, ...]]:
    """(values of `columns`..., count) of the facts matching `where`, counted by the database: the
    report reads a few hundred groups, never the rows (benchmarks/stats_bench.py)."""
    # SQLAlchemy's own select: SQLModel's typed overloads stop at a fixed number of columns.
    query = sa_select(*columns, func.count()).where(*where).group_by(*columns)
    return [tuple(row) for row in db.execute(query)]


def _in(column: Any, quarter: Quarter) -> Any:
    return col(column).between(quarter.first_day, quarter.last_day)


def _weeks(quarter: Quarter) -> list[tuple[str, str]]:
    """The ISO weeks with a day in `quarter`: ("2026-W40", "40"); the weeks at either end are partial."""
    weeks: list[tuple[str, str]] = []
    day = quarter.first_day
    while day <= quarter.last_day:
        year, week, _weekday = day.isocalendar()
        key = f"{year}-W{week:02d}"
        if not weeks or weeks[-1][0] != key:
            weeks.append((key, str(week)))
        day += datetime.timedelta(days=1)
    return weeks


def _week_of(day: datetime.date) -> str:
    year, week, _weekday = day.isocalendar()
    return f"{year}-W{week:02d}"


def first_quarter(db: Session) -> Quarter | None:
    """The quarter of the earliest fact, or None before the first tip."""
    earliest = db.exec(select(func.min(TipFact.received_on))).one()
    return Quarter.of(earliest) if earliest is not None else None


def staff_quarters(db: Session, *, today: datetime.date) -> list[Quarter]:
    """The quarters staff can choose, newest (the current one) first."""
    current = Quarter.of(today)
    first = first_quarter(db) or current
    quarters = [current]
    while len(quarters) < STAFF_QUARTERS and quarters[-1] > first:
        quarters.append(quarters[-1].previous())
    return quarters


def published_quarters(db: Session, *, today: datetime.date) -> list[Quarter]:
    """The quarters the public page shows, newest first: ended ones only, from the first tip's quarter."""
    last = Quarter.of(today).previous()
    first = first_quarter(db) or last
    quarters = [last]
    while len(quarters) < PUBLISHED_QUARTERS and quarters[-1] > first:
        quarters.append(quarters[-1].previous())
    return quarters


def staff_report(db: Session, quarter: Quarter) -> StaffReport:
    received = [_in(TipFact.received_on, quarter)]
    tips = [*received, col(TipFact.counts_tip)]

    def counts(column: Any, key: Callable[[Any], str] = str) -> Counter[str]:
        counter: Counter[str] = Counter()
        for value, n in _grouped(db, column, where=tips):
            counter[key(value)] += n
        return counter

    def days_to(column: Any) -> Counter[int]:
        counter: Counter[int] = Counter()
        for start, end, n in _grouped(
            db, TipFact.received_on, column, where=[*tips, col(column).is_not(None)]
        ):
            counter[(end - start).days] += n
        return counter

    outcomes: Counter[str] = Counter()
    for outcome, closed_on, n in _grouped(db, TipFact.outcome, TipFact.closed_on, where=tips):
        outcomes[outcome if closed_on is not None and outcome else OPEN] += n
    by_category = counts(TipFact.category)
    municipalities = db.exec(select(Municipality).order_by(col(Municipality.name))).all()
    desks = db.exec(select(Desk).order_by(col(Desk.name))).all()
    total, (weeks, categories, per_municipality, per_outcome) = _tables(
        by_category.total(),
        [
            (_weeks(quarter), counts(TipFact.received_on, _week_of)),
            (_category_keys(by_category), by_category),
            ([(str(m.id), m.name) for m in municipalities], counts(TipFact.municipality_id)),
            ([(code, code) for code in (*OUTCOMES, OPEN)], outcomes),
        ],
    )
    # A tip handed over to a second desk counts for both: this table counts facts, not tips.
    per_desk_counts = Counter({str(desk): n for desk, n in _grouped(db, TipFact.desk_id, where=received)})
    _facts_total, (per_desk,) = _tables(
        per_desk_counts.total(), [([(str(d.id), d.name) for d in desks], per_desk_counts)]
    )
    return StaffReport(
        quarter=quarter,
        tips=total,
        weeks=weeks,
        categories=categories,
        municipalities=per_municipality,
        desks=per_desk,
        outcomes=per_outcome,
        acknowledgement=_timing(days_to(TipFact.acknowledged_on)),
        closing=_timing(days_to(TipFact.closed_on)),
    )


def public_report(db: Session, quarter: Quarter, *, quarters: Sequence[Quarter]) -> PublicReport:
    """What came in during `quarter` and what was concluded during it; `quarters` for the overview."""
    oldest, newest = min([quarter, *quarters]), max([quarter, *quarters])
    by_quarter: dict[Quarter, Counter[str]] = {q: Counter() for q in (quarter, *quarters)}
    span = col(TipFact.received_on).between(oldest.first_day, newest.last_day)
    for day, category, n in _grouped(
        db, TipFact.received_on, TipFact.category, where=[span, col(TipFact.counts_tip)]
    ):
        by_quarter.setdefault(Quarter.of(day), Counter())[category] += n

    def categories_of(q: Quarter) -> tuple[Cell, Table]:
        counts = by_quarter[q]
        total, (table,) = _tables(counts.total(), [(_category_keys(counts), counts)])
        return total, table

    concluded = Counter(
        {
            outcome: n
            for outcome, n in _grouped(
                db, TipFact.outcome, where=[_in(TipFact.closed_on, quarter), col(TipFact.counts_tip)]
            )
            if outcome in OUTCOMES
        }
    )
    _concluded_total, (concluded_table,) = _tables(
        concluded.total(), [([(code, code) for code in OUTCOMES], concluded)], total_first=True
    )
    received_total, categories = categories_of(quarter)
    # Each quarter's total as its own page shows it: the quarters never add up to a total shown anywhere.
    overview = Table(tuple(Row(str(q), str(q), categories_of(q)[0]) for q in quarters))
    return PublicReport(
        quarter=quarter,
        received=received_total,
        categories=categories,
        concluded=concluded_table,
        quarters=overview,
    )
