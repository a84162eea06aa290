"""Each dataset's ε spent over time, replayed from the ledger's entries alone.

Four kinds state a job's spend on a dataset: `round.completed` (the cumulative ε after
the round, per dataset), `privacy.recovered` (raised to what the node logged),
`privacy.charged` (a contribution job's charge), and `analysis.released` (each dataset's
spend on a DP analysis, under `spent`). A job's spend on a dataset is the largest
it was ever stated to be — a round's cumulative ε only grows and a recovery never lowers
it — and a dataset's spend is the sum over its jobs. So the last point of each series is
the report's ε figure for that dataset.

`budget_history` replays the same spends beside what running jobs hold and the lifetime
budget: a job commits, on each dataset its signed document (`job.started`) names, its
planned ε (`settings.epsilon`) less what it has spent so far, until the job is over
(`model.released`, `analysis.released` or `job.failed`) or the dataset's node refused it
(`job.refused` naming the dataset: it never reserved); the lifetime is the latest
`privacy.budget-set` for the dataset; and left = lifetime − spent − committed, as the
`budget` table computes it today.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SPEND_KINDS = ("round.completed", "privacy.recovered", "privacy.charged", "analysis.released")
START, REFUSED, BUDGET_SET = "job.started", "job.refused", "privacy.budget-set"
# A job is over at its model's release (training), its analysis's release (statistics) or
# its failure; the ledger has no separate `job.completed` entry.
OVER = ("model.released", "analysis.released", "job.failed")
BUDGET_KINDS = tuple(dict.fromkeys((*SPEND_KINDS, START, REFUSED, *OVER, BUDGET_SET)))


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


def _planned(payload: dict[str, Any]) -> dict[str, float]:
    """Each dataset a `job.started` document names, with the job's planned ε; none when
    the document is malformed or plans no ε (a job without DP, or a fixed σ)."""
    document = payload.get("document")
    job = document.get("job") if isinstance(document, dict) else None
    settings = job.get("settings") if isinstance(job, dict) else None
    datasets = job.get("datasets") if isinstance(job, dict) else None
    planned = _number(settings.get("epsilon")) if isinstance(settings, dict) else None
    if planned is None or not isinstance(datasets, list):
        return {}
    return {d: planned for d in datasets if isinstance(d, str)}


@dataclass(frozen=True)
class BudgetPoint:
    seq: int  # the entry that moved it
    time: str
    spent: float  # over all jobs, after that entry
    committed: float  # held by the jobs started and not yet over
    lifetime: float | None  # the latest budget set at its node; None: none set yet

    @property
    def left(self) -> float | None:
        return None if self.lifetime is None else self.lifetime - self.spent - self.committed


class _Replay:
    """The ledger's state of every dataset's budget, one entry at a time."""

    def __init__(self) -> None:
        self.spent: dict[tuple[str, str], float] = {}  # (job, dataset) -> largest stated
        self.plans: dict[str, dict[str, float]] = {}  # running job -> dataset -> planned ε
        self.lifetime: dict[str, float] = {}
        self.started: set[str] = set()  # every job ever started, running or over

    def apply(self, kind: str, payload: dict[str, Any]) -> set[str]:
        """Apply one entry; the datasets whose figures it may have moved."""
        job = payload.get("job")
        dataset = payload.get("dataset")
        if kind == BUDGET_SET:
            value = _number(payload.get("epsilon"))
            if not isinstance(dataset, str) or value is None:
                return set()
            self.lifetime[dataset] = value
            return {dataset}
        if not isinstance(job, str):
            return set()
        if kind == START:
            if job in self.started:  # a replayed start holds nothing again, even once over
                return set()
            self.started.add(job)
            self.plans[job] = _planned(payload)
            return set(self.plans[job])
        if kind == REFUSED:
            plan = self.plans.get(job, {})
            return (
                {dataset}
                if isinstance(dataset, str) and plan.pop(dataset, None) is not None
                else set()
            )
        moved = set()
        for name, value in _stated(kind, payload) if kind in SPEND_KINDS else ():
            if value > self.spent.get((job, name), 0.0):
                self.spent[(job, name)] = value
                moved.add(name)
        if kind in OVER:  # after its own spend: an analysis's release states it, then ends it
            moved |= set(self.plans.pop(job, {}))
        return moved

    def total(self, dataset: str) -> float:
        return sum((v for (_, d), v in self.spent.items() if d == dataset), 0.0)

    def committed(self, dataset: str) -> float:
        held = (
            max(plan[dataset] - self.spent.get((job, dataset), 0.0), 0.0)
            for job, plan in self.plans.items()
            if dataset in plan
        )
        return sum(held, 0.0)  # 0.0, not 0, when nothing is held: a float figure either way


def budget_history(
    entries: Iterable[tuple[int, str, str, dict[str, Any]]],
) -> dict[str, list[BudgetPoint]]:
    """Per dataset, a point for every entry that changed its spent, committed or lifetime
    ε: (seq, time, kind, payload) in log order; other kinds and malformed values are
    passed over."""
    replay = _Replay()
    history: dict[str, list[BudgetPoint]] = {}
    for seq, time, kind, payload in entries:
        if kind not in BUDGET_KINDS or not isinstance(payload, dict):
            continue
        for dataset in sorted(replay.apply(kind, payload)):
            point = BudgetPoint(
                seq,
                time,
                replay.total(dataset),
                replay.committed(dataset),
                replay.lifetime.get(dataset),
            )
            points = history.setdefault(dataset, [])
            if points and (points[-1].spent, points[-1].committed, points[-1].lifetime) == (
                point.spent,
                point.committed,
                point.lifetime,
            ):
                continue  # the entry moved nothing this dataset shows
            points.append(point)
    return dict(sorted(history.items()))


def epsilon_history(
    entries: Iterable[tuple[int, str, str, dict[str, Any]]],
) -> dict[str, list[EpsilonPoint]]:
    """Per dataset, a point for every entry that raised its spend: (seq, time, kind, payload)
    in log order; entries of other kinds, or without a job, are passed over."""
    replay = _Replay()
    history: dict[str, list[EpsilonPoint]] = {}
    for seq, time, kind, payload in entries:
        if kind not in SPEND_KINDS:
            continue
        for dataset in sorted(replay.apply(kind, payload)):
            history.setdefault(dataset, []).append(EpsilonPoint(seq, time, replay.total(dataset)))
    return dict(sorted(history.items()))
