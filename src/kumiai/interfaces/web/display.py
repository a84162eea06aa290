"""Records as a person reads them, not as Python or JSON prints them.

A job's settings, a model's lineage and a motion's payload are dictionaries: shown raw they
read `{'delta': None, 'secure_aggregation': True}`. Here `None` is a dash, a boolean yes or
no, a list its items, a dictionary one line per key; money (`amount`, `*_yen`) is yen and a
rate in basis points says `bp`. A metric is a score to three places, but a count of
examples is a whole number (`200`, not `200.000`).
"""

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup, escape

COUNTS = frozenset({"examples", "n", "rows", "num_examples"})
METRIC_NAMES = {"auc": "AUC", "accuracy": "accuracy", "loss": "loss", "examples": "examples"}


def yen(value: int) -> str:
    return f"¥{value:,}" if value >= 0 else f"-¥{-value:,}"


def _scalar(value: object, key: str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and key is not None:
        if key == "amount" or key.endswith("_yen"):
            return yen(value)
        if key.endswith("_bp"):
            return f"{value:,} bp"
    return str(value)


def plain(value: object, key: str | None = None) -> Markup:
    """`value` as escaped HTML: nested dictionaries as lists of `key: value` lines."""
    if isinstance(value, Mapping):
        if not value:
            return Markup("—")
        items = (
            Markup('<li><span class="key">{}</span>: {}</li>').format(k, plain(v, str(k)))
            for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
        )
        return Markup('<ul class="record">') + Markup("").join(items) + Markup("</ul>")
    if isinstance(value, list | tuple | set | frozenset):
        parts = [plain(v, key) for v in (sorted(value) if isinstance(value, set) else value)]
        return Markup(", ").join(parts) if parts else Markup("—")
    return escape(_scalar(value, key))


def metric(name: str, value: Any) -> str:
    """A metric's value: a count whole, a score to three places, anything else as text."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return value if isinstance(value, str) and value else "—"  # None, missing, a flag
    if name in COUNTS:
        return f"{round(value):,}"
    return f"{value:.3f}"


def metric_name(name: str) -> str:
    return METRIC_NAMES.get(name, name)


def delta(value: object) -> str:
    """DP's δ to three significant figures (`0.000439`, `1e-05`), never 0.0004385964912280702."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{value:.3g}"
