"""Each dataset's ε spent over time, replayed from the ledger's entries alone.

Four kinds state a job's spend on a dataset: `round.completed` (the cumulative ε after
the round, per dataset), `privacy.recovered` (raised to what the node logged),
`privacy.charged` (a contribution job's charge), and `analysis.released` (each dataset's
spend on a DP analysis, under `spent`). A job's spend on a dataset is the largest
it was ever stated to be — a round's cumulative ε only grows and a recovery never lowers
it — and a dataset's spend is the sum over its jobs. So the last point of each series is
the report's ε figure for that dataset.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SPEND_KINDS = ("round.completed", "privacy.recovered", "privacy.charged", "analysis.released")


@dataclass(frozen=True)
class EpsilonPoint:
    seq: int  # the entry that moved it
    time: str
    total: float  # the dataset's ε spent over all jobs, after that entry


def _number(value: object) -> float | None:
    """A spend: a finite number ≥ 0 (not a bool, NaN or infinity), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _stated(kind: str, payload: dict[str, Any]) -> list[tuple[str, float]]:
    """(dataset, ε) pairs an entry states for its job."""
    if kind in ("round.completed", "analysis.released"):
        spent = payload.get("epsilon" if kind == "round.completed" else "spent")
        pairs = spent.items() if isinstance(spent, dict) else ()
    else:
        pairs = [(payload.get("dataset"), payload.get("epsilon"))]
    return [
        (dataset, number)
        for dataset, value in pairs
        if isinstance(dataset, str) and (number := _number(value)) is not None
    ]


def epsilon_history(
    entries: Iterable[tuple[int, str, str, dict[str, Any]]],
) -> dict[str, list[EpsilonPoint]]:
    """Per dataset, a point for every entry that raised its spend: (seq, time, kind, payload)
    in log order; entries of other kinds, or without a job, are passed over."""
    by_job: dict[tuple[str, str], float] = {}
    history: dict[str, list[EpsilonPoint]] = {}
    for seq, time, kind, payload in entries:
        job = payload.get("job")
        if kind not in SPEND_KINDS or not isinstance(job, str):
            continue
        for dataset, value in _stated(kind, payload):
            if value <= by_job.get((job, dataset), 0.0):
                continue
            by_job[(job, dataset)] = value
            total = sum(v for (_, d), v in by_job.items() if d == dataset)
            history.setdefault(dataset, []).append(EpsilonPoint(seq, time, total))
    return dict(sorted(history.items()))
