"""Inline SVG bar charts: no script, no font or stylesheet from anywhere.

Each bar is drawn from one report figure and carries its id and value (`data-figure`,
`data-value`), so a test can hold the chart to the JSON report as surely as the tables.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from kumiai.interfaces.reports.format import value_text

LABEL, PLOT, VALUE, ROW = 230, 380, 110, 22


@dataclass(frozen=True)
class Segment:
    fig: dict[str, Any]
    css: str  # the bar's class: its colour
    name: str = ""  # what the segment is, in its tooltip


@dataclass(frozen=True)
class Row:
    label: str
    segments: Sequence[Segment]
    amount: float | None = None  # the figure printed after the bar; None: the stack's total


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def bar_chart(title: str, rows: Sequence[Row], empty: str) -> str:
    """Horizontal bars, stacked within a row; negative values go left of the zero line."""
    if not rows:
        return (
            f'<figure class="chart"><figcaption>{_e(title)}</figcaption><p>{_e(empty)}</p></figure>'
        )
    pos = [sum(max(s.fig["value"], 0) for s in r.segments) for r in rows]
    neg = [sum(min(s.fig["value"], 0) for s in r.segments) for r in rows]
    span = (max(pos) - min(neg)) or 1
    zero = LABEL + PLOT * (-min(neg)) / span
    height = ROW * len(rows) + 10
    width = LABEL + PLOT + VALUE
    parts = [
        f'<figure class="chart"><figcaption>{_e(title)}</figcaption>',
        f'<svg role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{_e(title)}">',
        f'<line x1="{zero:.1f}" y1="0" x2="{zero:.1f}" y2="{height - 6}" class="axis"/>',
    ]
    for index, row in enumerate(rows):
        y = 5 + index * ROW
        parts.append(
            f'<text x="{LABEL - 8}" y="{y + 13}" text-anchor="end" class="label">'
            f"{_e(row.label)}</text>"
        )
        right = left = zero
        for segment in row.segments:
            value = segment.fig["value"]
            size = PLOT * abs(value) / span
            if value >= 0:
                x, right = right, right + size
            else:
                left -= size
                x = left
            tip = f"{segment.name + ': ' if segment.name else ''}{value_text(segment.fig)}"
            parts.append(
                f'<rect class="bar {_e(segment.css)}" x="{x:.2f}" y="{y}" width="{size:.2f}" '
                f'height="{ROW - 6}" data-figure="{_e(segment.fig["id"])}" '
                f'data-value="{_e(json.dumps(value))}"><title>{_e(row.label)} — {_e(tip)}'
                "</title></rect>"
            )
        total = sum(s.fig["value"] for s in row.segments) if row.amount is None else row.amount
        shown = value_text({**row.segments[0].fig, "value": total}) if row.segments else ""
        parts.append(f'<text x="{LABEL + PLOT + 6}" y="{y + 13}" class="amount">{_e(shown)}</text>')
    parts.append("</svg></figure>")
    return "".join(parts)
