"""What a count may show: no figure under 5, and no figure under 5 that a total lets one work out.

The rule, also explained on both statistics pages:

1. A count under `THRESHOLD` (0 included) is shown as "fewer than 5" (`FEW`), in every cell and total.
2. In a table whose total the reader knows, a lone "fewer than 5" would be the total minus the rest. So
   when a table has a "fewer than 5" cell, its smallest figures of 5 or more are left out as well
   (`HIDDEN`, "not shown"), as many as it takes for them to absorb the difference: a reader who knows the
   rule (a figure left out is at least 5 and at most the smallest figure still shown) can then always
   read every "fewer than 5" of the table as 0.
3. Tables that count the same tips (per week, per category, per municipality, per outcome) share their
   total. If one of them has every figure under 5 and the total would force one of those above 0, nothing
   in the table can be left out in its place: the total is then not shown anywhere, and a table that
   would give it away by being complete leaves out its smallest figure (`protect_group`). A table
   counted on its own (the outcomes on the public page) may leave out its total rather than rows.

Tables cover one quarter, and quarters do not overlap, so no two published totals can be subtracted to
reach a smaller group than a table shows (periods are never chosen freely for that reason). What remains:
bounds from several tables of the same tips taken together, in a quarter where almost every group has 4.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence

THRESHOLD = 5


class Shown(enum.Enum):
    EXACT = "exact"
    FEW = "few"  # "fewer than 5"
    HIDDEN = "hidden"  # "not shown": left out so that a "fewer than 5" cannot be worked out


@dataclasses.dataclass(frozen=True)
class Cell:
    """One figure as it may be shown: the value only when it is `EXACT`."""

    shown: Shown
    value: int | None = None

    @property
    def exact(self) -> bool:
        return self.shown is Shown.EXACT


def total_cell(count: int) -> Cell:
    """A total on its own: exact from `THRESHOLD` up, "fewer than 5" below."""
    return Cell(Shown.EXACT, count) if count >= THRESHOLD else Cell(Shown.FEW)


def protect(counts: Sequence[int], *, total_known: bool) -> list[Cell]:
    """The cells of one table after rules 1 and 2. `total_known`: the reader knows the sum of `counts`."""
    cells = [Cell(Shown.EXACT, n) if n >= THRESHOLD else Cell(Shown.FEW) for n in counts]
    if not total_known or all(n >= THRESHOLD for n in counts):
        return cells
    left_out = sum(n for n in counts if n < THRESHOLD)
    shown = sorted((i for i, n in enumerate(counts) if n >= THRESHOLD), key=lambda i: counts[i])
    hidden = 0
    while shown:
        i = shown.pop(0)
        cells[i] = Cell(Shown.HIDDEN)
        left_out += counts[i]
        hidden += 1
        # The figures left out can hold at most the smallest figure still shown each (no limit if none):
        # enough to hold everything left out means every "fewer than 5" may be 0.
        if not shown or hidden * counts[shown[0]] >= left_out:
            break
    return cells


def forces_a_tip(counts: Sequence[int]) -> bool:
    """Every figure is under 5, yet the total is more than the others could hold without this one."""
    return all(n < THRESHOLD for n in counts) and sum(counts) - (THRESHOLD - 1) * (len(counts) - 1) > 0


def protect_group(
    total: int, tables: Sequence[Sequence[int]], *, total_first: bool = False
) -> tuple[Cell, list[list[Cell]]]:
    """The total and the cells of tables that each split the same `total` tips (rule 3).

    `total_first`: rather than leave out figures of a table (rule 2), leave out its total; for a table
    whose total matters less than its rows and is shown nowhere else.
    """
    if total < THRESHOLD:
        return Cell(Shown.FEW), [protect(counts, total_known=False) for counts in tables]
    if total_first and any(n < THRESHOLD for counts in tables for n in counts):
        return Cell(Shown.HIDDEN), [protect(counts, total_known=False) for counts in tables]
    if not any(forces_a_tip(counts) for counts in tables):
        return Cell(Shown.EXACT, total), [protect(counts, total_known=True) for counts in tables]
    protected = []
    for counts in tables:
        cells = protect(counts, total_known=False)
        if all(cell.exact for cell in cells):
            smallest = min(range(len(counts)), key=lambda i: counts[i])
            cells[smallest] = Cell(Shown.HIDDEN)
        protected.append(cells)
    return Cell(Shown.HIDDEN), protected
