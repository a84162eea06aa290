"""What aggregate statistics a node may release, and how, under its agreement.

Summaries for preprocessing and evaluation aggregates leave a node outside secure
aggregation. The steward governs them with the agreement's `aggregate_statistics` term:

- `allowed`: exact counts, sums and histograms (the coordinator sees them);
- `dp`: each release is noised with the Laplace mechanism, calibrated to public bounds
  that the signed job document declares, and paid from the same ε budget as training;
- `forbidden`: nothing leaves but the (public) row count; the site trains with the plan
  other sites' summaries gave, and its scores stay at the node.

`min_cohort` refuses a site whose training or test rows are too few for any aggregate
to hide an individual. Pure functions: the noise itself is drawn by the node
(`kumiai.node.disclosure`), so these rules are tested without randomness.

NumPy (and the metrics and preprocessing it serves) loads inside the functions that compute:
every command reads agreements and job documents, which use the terms above them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kumiai.domain.canonical import canonical_json
from kumiai.domain.errors import InvalidInput
from kumiai.domain.schema import ColumnType, Schema

if TYPE_CHECKING:
    import numpy as np

    from kumiai.domain.metrics import SiteScore
    from kumiai.domain.preprocessing import Columns, SiteSummary

ALLOWED, DP, FORBIDDEN = "allowed", "dp", "forbidden"
STATISTICS_MODES = (ALLOWED, DP, FORBIDDEN)
# Under `dp` the evaluation histograms are released in this many bins per class: coarse
# enough that the noise does not drown them, fine enough for an AUC to two decimals.
DP_SCORE_BINS = 10
# Under `dp` each test row's log loss is clipped to this, so the summed loss has a bound.
DP_LOSS_BOUND = 10.0

# Draws Laplace noise: (values, scale, integer?) -> noisy values. Given by the node.
Noise = Callable[[list[float], float, bool], list[float]]


def check_statistics_mode(value: str) -> str:
    if value not in STATISTICS_MODES:
        raise InvalidInput(
            f"aggregate statistics {value!r} is not known; use one of: "
            + ", ".join(STATISTICS_MODES)
        )
    return value


def check_min_cohort(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"minimum cohort must be a whole number ≥ 0 (got {value!r})")
    return value


def cohort_refusal(
    agreement_id: str, min_cohort: int, train_rows: int, test_rows: int
) -> str | None:
    """Why a site is too small to release aggregates under its agreement, or None."""
    smallest = min(train_rows, test_rows)
    if smallest >= min_cohort:
        return None
    which = "training" if train_rows <= test_rows else "test"
    return (
        f"agreement {agreement_id} releases aggregates only over at least {min_cohort} rows, "
        f"and this site's {which} split holds {smallest}; a larger --test-fraction, more "
        "rows, or a new agreement with a smaller minimum cohort would change that"
    )


@dataclass(frozen=True)
class PublicDomain:
    """Public bounds of every column, declared in the job document, for `dp` releases.

    Bounds must not come from the data (that would leak it): the researcher states them
    from domain knowledge (an age lies in 0..120). Values outside are clipped; category
    levels and classes outside the lists count as missing or are left out.
    """

    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    classes: tuple[str, ...] = ()

    def to_json(self) -> str:
        return canonical_json(
            {
                "bounds": {c: [lo, hi] for c, (lo, hi) in self.bounds.items()},
                "levels": {c: list(v) for c, v in self.levels.items()},
                "classes": list(self.classes),
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str, where: str = "the public domain") -> PublicDomain:
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict):
                raise ValueError("expected an object with bounds, levels and classes")
            unknown = set(doc) - {"bounds", "levels", "classes"}
            if unknown:
                raise ValueError(f"unknown key(s) {sorted(unknown)}")
            bounds: dict[str, tuple[float, float]] = {}
            for column, pair in dict(doc.get("bounds", {})).items():
                lo, hi = (float(v) for v in pair)
                if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                    raise ValueError(f"bounds of {column!r} must be two finite numbers, low < high")
                bounds[str(column)] = (lo, hi)
            levels = {
                str(c): tuple(str(v) for v in values)
                for c, values in dict(doc.get("levels", {})).items()
            }
            classes = tuple(str(v) for v in doc.get("classes", []))
        except (ValueError, TypeError, AttributeError) as exc:
            raise InvalidInput(
                f"{where} is malformed ({exc}); write it as "
                '{"bounds": {"age": [0, 120]}, "levels": {"sex": ["F", "M"]}, '
                '"classes": ["0", "1"]}'
            ) from None
        return cls(bounds, levels, classes)


def domain_gaps(schema: Schema, domain: PublicDomain) -> list[str]:
    """What the domain lacks for a `dp` summary of `schema`, one phrase each."""
    gaps = [
        f"bounds for numeric column {c!r}"
        for c, kind in schema.items()
        if kind is ColumnType.NUMERIC and c not in domain.bounds
    ]
    gaps += [
        f"levels for column {c!r}"
        for c, kind in schema.items()
        if kind is not ColumnType.NUMERIC and not domain.levels.get(c)
    ]
    if len(domain.classes) < 2:
        gaps.append("the target's classes (at least two)")
    return gaps


def clip_to_domain(
    columns: Columns, labels: np.ndarray, schema: Schema, domain: PublicDomain
) -> tuple[Columns, np.ndarray]:
    """Numeric values clipped to their bounds; levels outside the domain become missing;
    rows whose class is outside the domain are left out."""
    import numpy as np

    keep = np.isin(labels.astype(str), list(domain.classes))
    clipped: Columns = {}
    for name, kind in schema.items():
        values = columns[name][keep]
        if kind is ColumnType.NUMERIC:
            lo, hi = domain.bounds[name]
            clipped[name] = np.where(np.isnan(values), np.nan, np.clip(values, lo, hi))
        else:
            allowed = set(domain.levels[name])
            clipped[name] = np.array(
                [v if v is not None and str(v) in allowed else None for v in values], dtype=object
            )
    return clipped, labels[keep]


@dataclass(frozen=True)
class Release:
    """One vector that leaves the node, and how far one row can move it (L1)."""

    values: list[float]
    sensitivity: float
    integer: bool


def noisy_summary(
    summary: SiteSummary, domain: PublicDomain, epsilon: float, noise: Noise
) -> SiteSummary:
    """The `dp` form of a summary computed on `clip_to_domain` rows.

    Every vector one row can move is a release; the ε is split evenly between them
    (basic composition), so the whole summary is ε-DP for adding or removing a row. Counts
    stay whole numbers and non-negative afterwards (post-processing costs no privacy).
    """
    from kumiai.domain.preprocessing import SiteSummary

    releases: dict[str, Release] = {
        "classes": Release([summary.classes.get(c, 0) for c in domain.classes], 1.0, True)
    }
    for column, kind in summary.schema.items():
        if kind is ColumnType.NUMERIC:
            n, total, squares = summary.numeric[column]
            bound = max(abs(v) for v in domain.bounds[column])
            counts = [n, summary.missing.get(column, 0)]
            releases[f"{column}:counts"] = Release(counts, 1.0, True)
            releases[f"{column}:sum"] = Release([total], bound, False)
            releases[f"{column}:squares"] = Release([squares], bound * bound, False)
        else:
            levels = domain.levels[column]
            counts = [summary.levels.get(column, {}).get(v, 0) for v in levels]
            releases[f"{column}:levels"] = Release(
                [*counts, summary.missing.get(column, 0)], 1.0, True
            )
    share = epsilon / len(releases)
    noisy = {
        name: noise(r.values, r.sensitivity / share, r.integer) for name, r in releases.items()
    }

    def count(value: float) -> int:
        return max(round(value), 0)

    released = SiteSummary(rows=summary.rows, schema=dict(summary.schema))
    released.classes = {c: count(v) for c, v in zip(domain.classes, noisy["classes"], strict=True)}
    for column, kind in summary.schema.items():
        if kind is ColumnType.NUMERIC:
            n, missing = (count(v) for v in noisy[f"{column}:counts"])
            lo, hi = domain.bounds[column]
            total = noisy[f"{column}:sum"][0]
            # a mean outside the public bounds is impossible: project it back
            total = min(max(total, lo * n), hi * n) if n else 0.0
            # and a spread beyond them: sum of squares between n·mean² and n·bound²
            bound = max(abs(lo), abs(hi))
            squares = (
                min(max(noisy[f"{column}:squares"][0], total * total / n), bound * bound * n)
                if n
                else 0.0
            )
            released.numeric[column] = (n, float(total), float(squares))
            released.missing[column] = missing
        else:
            *counts, missing = (count(v) for v in noisy[f"{column}:levels"])
            levels = domain.levels[column]
            released.levels[column] = dict(zip(levels, counts, strict=True))
            released.missing[column] = missing
    return released


def coarse_histogram(hist: np.ndarray) -> np.ndarray:
    """Merge the fine score bins into DP_SCORE_BINS groups, kept at each group's first bin
    so the same AUC code reads them (rows in one group tie)."""
    import numpy as np

    from kumiai.domain.metrics import HISTOGRAM_BINS

    width = HISTOGRAM_BINS // DP_SCORE_BINS
    rows = np.atleast_2d(hist)
    grouped = rows.reshape(rows.shape[0], DP_SCORE_BINS, width).sum(axis=2)
    out = np.zeros_like(rows)
    out[:, ::width] = grouped
    return out


def noisy_score(score: SiteScore, epsilon: float, noise: Noise) -> SiteScore:
    """The `dp` form of a site's evaluation aggregates (its loss clipped at DP_LOSS_BOUND).

    One row moves the example count, the correct count, the summed loss (by at most the
    bound) and one bin per scored class in either histogram.
    """
    import numpy as np

    from kumiai.domain.metrics import HISTOGRAM_BINS, SiteScore

    classes = score.hist_pos.shape[0]
    width = HISTOGRAM_BINS // DP_SCORE_BINS
    pos, neg = coarse_histogram(score.hist_pos), coarse_histogram(score.hist_neg)
    bins = np.concatenate([pos[:, ::width].ravel(), neg[:, ::width].ravel()])
    releases = {
        "examples": Release([score.examples], 1.0, True),
        "correct": Release([score.correct], 1.0, True),
        "loss": Release([score.loss_sum], DP_LOSS_BOUND, False),
        "histograms": Release([float(v) for v in bins], float(classes), True),
    }
    share = epsilon / len(releases)
    noisy = {
        name: noise(r.values, r.sensitivity / share, r.integer) for name, r in releases.items()
    }
    examples = max(round(noisy["examples"][0]), 0)
    counts = np.maximum(np.rint(np.asarray(noisy["histograms"])), 0).astype(np.int64)
    half = counts.size // 2
    released_pos, released_neg = np.zeros_like(pos), np.zeros_like(neg)
    released_pos[:, ::width] = counts[:half].reshape(classes, DP_SCORE_BINS)
    released_neg[:, ::width] = counts[half:].reshape(classes, DP_SCORE_BINS)
    return SiteScore(
        examples=examples,
        correct=min(max(round(noisy["correct"][0]), 0), examples),
        loss_sum=min(max(float(noisy["loss"][0]), 0.0), DP_LOSS_BOUND * examples),
        hist_pos=released_pos,
        hist_neg=released_neg,
    )


def statistics_terms(doc: dict[str, Any]) -> tuple[str, int]:
    """(aggregate_statistics, min_cohort) of an agreement payload, checked."""
    mode = check_statistics_mode(str(doc.get("aggregate_statistics", ALLOWED)))
    cohort = doc.get("min_cohort", 0)
    return mode, check_min_cohort(int(cohort) if isinstance(cohort, int | float) else -1)
