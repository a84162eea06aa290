"""The dashboard's charts, drawn by the report's inline SVG (`reports.charts.bar_chart`).

Each bar is a figure: an id a test can find (`data-figure`), its value and its unit, so a
job's chart grows one bar per finished round and a browser test can count them.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from markupsafe import Markup

from kumiai.domain.epsilon_history import BudgetPoint
from kumiai.interfaces.reports.charts import Row, Segment, bar_chart
from kumiai.interfaces.web.display import metric_name


def _figure(figure_id: str, value: float, unit: str) -> dict[str, Any]:
    return {"id": figure_id, "value": value, "unit": unit}


def round_chart(rounds: Iterable[Mapping[str, Any]], metric: str) -> Markup:
    """One bar per completed round: the overall `metric` (accuracy, auc) after it."""
    rows = [
        Row(
            f"round {r['round']}",
            [Segment(_figure(f"round/{r['round']}/{metric}", value, "metric"), "bar", metric)],
        )
        for r in rounds
        if isinstance(value := (r.get("overall") or {}).get(metric), int | float)
    ]
    return Markup(
        bar_chart(f"{metric_name(metric)} per round", rows, "No round has completed yet.")
    )


def share_chart(model: str, metric: str, shares: Mapping[str, float]) -> Markup:
    """Each dataset's Shapley share of the model's `metric`; a negative share goes left."""
    rows = [
        Row(
            name,
            [
                Segment(
                    _figure(f"share/{name}", value, "share"),
                    "share" if value >= 0 else "share-negative",
                )
            ],
        )
        for name, value in sorted(shares.items())
    ]
    return Markup(
        bar_chart(f"Contribution shares to {model} ({metric_name(metric)})", rows, "No shares.")
    )


# (figure id prefix and css class, name), in stack order: each segment's tooltip and the
# privacy page's legend. Spent keeps the `epsilon/` ids the ε-over-time bars always had.
BUDGET_SERIES = (
    ("epsilon", "spent"),
    ("committed", "committed by running jobs"),
    ("left", "left of the lifetime budget"),
)


def _final(dataset: str, last: BudgetPoint) -> str:
    """The chart's caption and accessible name: the final three figures, as the table has
    them (to four places)."""
    figures = f"spent {last.spent:.4f}, committed {last.committed:.4f}"
    if last.lifetime is None or last.left is None:
        return f"ε of {dataset}, entry by entry: {figures}; no lifetime budget set"
    return (
        f"ε of {dataset}, entry by entry: {figures}, left {last.left:.4f} "
        f"of its lifetime budget {last.lifetime:.4f}"
    )


def budget_chart(dataset: str, points: Sequence[BudgetPoint]) -> Markup:
    """A stacked bar per entry that moved the dataset's figures: spent, then committed,
    then left, so with a lifetime budget each bar is as long as the budget then was; the
    last row is the current lifetime budget in grey. The figure after each bar is ε spent."""
    names, rows = dict(BUDGET_SERIES), []
    for p in points:
        parts = [("epsilon", p.spent), ("committed", p.committed)]
        if p.left is not None:
            parts.append(("left", p.left))
        segments = [
            Segment(_figure(f"{series}/{dataset}/{p.seq}", value, "epsilon"), series, names[series])
            for series, value in parts
        ]
        rows.append(Row(f"entry {p.seq} · {p.time}", segments, amount=p.spent))
    lifetime = points[-1].lifetime if points else None
    if lifetime is not None:
        rows.append(
            Row(
                "lifetime budget",
                [Segment(_figure(f"epsilon/{dataset}/lifetime", lifetime, "epsilon"), "budget")],
            )
        )
    title = _final(dataset, points[-1]) if points else f"ε of {dataset}"
    return Markup(bar_chart(title, rows, "Nothing spent or committed yet."))
