"""The SVG chart names its bars as the table beside it does: markup shown as text, escaped exactly once."""

from __future__ import annotations

from markupsafe import Markup

from portal.stats.charts import table_chart
from portal.stats.figures import Row, Table
from portal.stats.suppression import Cell, Shown

NAME = '"><img src=x onerror=alert(1)>'


def _chart(label: object) -> str:
    table = Table(rows=(Row(key="1", label=NAME, cell=Cell(Shown.EXACT, 12)),))
    return str(
        table_chart(
            table, chart_id="c", title="t", label=lambda row: label, cell_text=lambda cell: "12", rtl=False
        )
    )


def test_a_plain_name_is_escaped_once() -> None:
    chart = _chart(NAME)
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in chart
    assert "<img" not in chart and "&amp;" not in chart


def test_a_name_a_template_already_escaped_is_not_escaped_again() -> None:
    # A Jinja macro hands over Markup: escaping it again would show "&#34;&gt;" to the reader.
    chart = _chart(Markup.escape(NAME))
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in chart
    assert "<img" not in chart and "&amp;" not in chart
