"""No figure under 5 is shown, and none can be worked out from a total: checked exhaustively on small
tables, from what a reader who knows the rule sees."""

from __future__ import annotations

import itertools

import pytest

from portal.stats.suppression import THRESHOLD, Cell, Shown, forces_a_tip, protect, protect_group


def readings(cells: list[Cell], total: int) -> list[tuple[int, ...]]:
    """Every table a reader could believe in: exact cells as shown, "fewer than 5" cells 0 to 4, a cell
    left out at least 5 and at most the smallest figure still shown (rule 2), adding up to the total."""
    smallest_shown = min([c.value for c in cells if c.exact and c.value is not None] or [total])
    ranges = [
        [cell.value] if cell.shown is Shown.EXACT
        else range(THRESHOLD) if cell.shown is Shown.FEW
        else range(THRESHOLD, smallest_shown + 1)
        for cell in cells
    ]  # fmt: skip
    return [values for values in itertools.product(*ranges) if sum(values) == total]


def assert_no_figure_under_five_shown(counts: tuple[int, ...], cells: list[Cell]) -> None:
    for count, cell in zip(counts, cells, strict=True):
        assert (cell.shown is Shown.EXACT) == (count >= THRESHOLD) or cell.shown is Shown.HIDDEN, counts
        assert cell.shown is not Shown.EXACT or cell.value == count


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_no_small_figure_can_be_worked_out_from_a_known_total(size: int) -> None:
    for counts in itertools.product(range(12 if size < 4 else 9), repeat=size):
        total = sum(counts)
        cells = protect(counts, total_known=total >= THRESHOLD)
        assert_no_figure_under_five_shown(counts, cells)
        if total < THRESHOLD or forces_a_tip(counts):
            continue  # the total is not shown (protect_group, rule 3)
        possible = readings(cells, total)
        assert counts in possible, counts
        for i, count in enumerate(counts):
            if count < THRESHOLD:
                # Whatever it really is, the reader cannot rule out that there was no tip at all.
                assert any(reading[i] == 0 for reading in possible), (counts, i)


def test_a_table_of_small_figures_that_forces_a_tip_hides_the_total_everywhere() -> None:
    # Three groups of 4, 4 and 3: with the total of 11 known, each would have at least one tip.
    total, (small, complete, mixed) = protect_group(11, [[4, 4, 3], [6, 5], [8, 3]])
    assert total.shown is Shown.HIDDEN
    assert [c.shown for c in small] == [Shown.FEW] * 3
    # A complete table would give the total away: its smallest figure is left out.
    assert [c.shown for c in complete] == [Shown.EXACT, Shown.HIDDEN]
    # Without a known total, a "fewer than 5" beside an exact figure gives nothing away.
    assert [c.shown for c in mixed] == [Shown.EXACT, Shown.FEW]


def test_the_rule_leaves_out_the_smallest_figures_that_hold_the_difference() -> None:
    assert protect([12, 3, 7, 40], total_known=True) == [
        Cell(Shown.EXACT, 12), Cell(Shown.FEW), Cell(Shown.HIDDEN), Cell(Shown.EXACT, 40)
    ]  # fmt: skip
    # 5 left out next to a 3 could only be 5 if the smallest shown were 5 too: leave that out as well.
    assert [c.shown for c in protect([3, 5, 5], total_known=True)] == [Shown.FEW, Shown.HIDDEN, Shown.HIDDEN]
    # Without a known total there is nothing to subtract from.
    assert protect([12, 3], total_known=False) == [Cell(Shown.EXACT, 12), Cell(Shown.FEW)]
    assert protect([12, 7], total_known=True) == [Cell(Shown.EXACT, 12), Cell(Shown.EXACT, 7)]


def test_totals_under_five_are_fewer_than_five() -> None:
    for total in range(THRESHOLD):
        shown, (cells,) = protect_group(total, [[total, 0]])
        assert shown.shown is Shown.FEW and all(c.shown is Shown.FEW for c in cells)
    shown, _tables = protect_group(THRESHOLD, [[THRESHOLD, 0]])
    assert shown == Cell(Shown.EXACT, THRESHOLD)
