"""Bar charts as small inline SVG, drawn on the server: no script, no library, nothing fetched.

The chart is a picture of the table printed beside it, which holds the data: the SVG has role="img" and a
<title> saying so. Each row is a label line and a bar under it, so long category names never need cutting.
Right-to-left pages get the mirror image: bars grow from the right, text starts at the right.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from markupsafe import Markup, escape

from portal.stats.figures import Row, Table
from portal.stats.suppression import THRESHOLD, Cell, Shown

WIDTH = 600
ROW = 38
LABEL_BASELINE = 14
BAR_TOP = 19
BAR_HEIGHT = 13
# Room after the longest bar for its figure.
VALUE_ROOM = 130


@dataclasses.dataclass(frozen=True)
class Bar:
    label: str  # already translated
    shown: Shown
    value: int | None
    text: str  # the figure as the table shows it, already formatted and translated


def bar_chart(*, chart_id: str, title: str, bars: list[Bar], largest: int, rtl: bool) -> Markup:
    """An SVG bar chart. A "fewer than 5" bar is an outline as long as 5 would be; a hidden one has none."""
    height = max(ROW * len(bars), ROW)
    # At least 4 times the threshold: an outline for "fewer than 5" never looks like a large figure.
    scale = (WIDTH - VALUE_ROOM) / max(largest, 4 * THRESHOLD)
    direction = "rtl" if rtl else "ltr"

    def x(offset: float, length: float = 0.0) -> float:
        """Where something `offset` from the start edge (and `length` long) begins, mirrored for RTL."""
        return round(WIDTH - offset - length, 1) if rtl else round(offset, 1)

    parts = [
        Markup(
            '<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {w} {h}" role="img"'
            ' aria-labelledby="{id}-title" focusable="false"><title id="{id}-title">{title}</title>'
        ).format(w=WIDTH, h=height, id=chart_id, title=title)
    ]
    for i, bar in enumerate(bars):
        top = i * ROW
        parts.append(
            Markup('<text x="{x}" y="{y}" direction="{d}" class="chart-label">{label}</text>').format(
                x=x(0), y=top + LABEL_BASELINE, d=direction, label=bar.label
            )
        )
        length = 0.0
        if bar.shown is Shown.EXACT and bar.value:
            length = max(bar.value * scale, 2.0)
            parts.append(
                Markup('<rect x="{x}" y="{y}" width="{w}" height="{h}" class="chart-bar"/>').format(
                    x=x(0, length), y=top + BAR_TOP, w=round(length, 1), h=BAR_HEIGHT
                )
            )
        elif bar.shown is Shown.FEW:
            length = (THRESHOLD - 1) * scale
            parts.append(
                Markup(
                    '<rect x="{x}" y="{y}" width="{w}" height="{h}" class="chart-few"'
                    ' stroke-dasharray="4 3"/>'
                ).format(x=x(0, length), y=top + BAR_TOP + 1, w=round(length, 1), h=BAR_HEIGHT - 2)
            )
        parts.append(
            Markup('<text x="{x}" y="{y}" direction="{d}" class="chart-value">{text}</text>').format(
                x=x(length + 6), y=top + BAR_TOP + BAR_HEIGHT - 2, d=direction, text=bar.text
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(escape(part) for part in parts)


def table_chart(
    table: Table,
    *,
    chart_id: str,
    title: str,
    label: Callable[[Row], str],
    cell_text: Callable[[Cell], str],
    rtl: bool,
) -> Markup:
    """The chart of one statistics table, its labels and figures worded as the table beside it words them."""
    bars = [
        Bar(
            # A template macro gives Markup, already escaped; escape() keeps it as it is (str() would have
            # it escaped twice) and escapes a plain string.
            label=escape(label(row)).strip(),
            shown=row.cell.shown,
            value=row.cell.value,
            text=escape(cell_text(row.cell)).strip(),
        )
        for row in table.rows
    ]
    return bar_chart(chart_id=chart_id, title=title, bars=bars, largest=table.largest, rtl=rtl)
