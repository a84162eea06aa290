"""The dashboard's charts, drawn by the report's inline SVG (`reports.charts.bar_chart`).

Each bar is a figure: an id a test can find (`data-figure`), its value and its unit, so a
job's chart grows one bar per finished round and a browser test can count them.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup

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


def epsilon_chart(
    title: str,
    points: Iterable[tuple[str, str, float]],
    empty: str,
    budget: tuple[str, float] | None = None,
) -> Markup:
    """Bars of ε: (figure id, label, value) each; then, given `budget` (figure id,
    lifetime ε), a grey bar of the lifetime budget, so every bar reads against it."""
    rows = [
        Row(label, [Segment(_figure(figure_id, value, "epsilon"), "epsilon")])
        for figure_id, label, value in points
    ]
    if rows and budget is not None:
        figure_id, lifetime = budget
        rows.append(
            Row("lifetime budget", [Segment(_figure(figure_id, lifetime, "epsilon"), "budget")])
        )
    return Markup(bar_chart(title, rows, empty))
