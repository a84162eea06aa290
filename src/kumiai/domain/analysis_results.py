"""Figures with confidence intervals from the noisy sums of an analysis (post-processing).

The coordinator holds only the sites' summed vectors, each with discrete Laplace noise of a
known scale (kumiai.domain.analysis). Here those sums become counts, means, bins, quantiles
and cells, each with an interval from the noise's own distribution; nothing here touches a
row or costs privacy. NumPy loads inside the functions that compute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kumiai.domain.analysis import (
    COUNT,
    HISTOGRAM,
    MEAN,
    MEAN_UNITS,
    QUANTILES,
    Query,
    Release,
)

if TYPE_CHECKING:
    import numpy as np

CONFIDENCE = 0.95  # every figure's interval: this share of the noise distribution
# Above this scale, a sum of several sites' noise is read off its shape at this scale.
_EXACT_SCALE = 500.0


@lru_cache(maxsize=256)  # pure, and a job asks the same scale of many bins
def noise_halfwidth(scale: float, copies: int, level: float = CONFIDENCE) -> int:
    """The smallest w with P(|noise| ≤ w) ≥ level, for the sum of `copies` independent discrete
    Laplace variables of `scale` (one copy under secure aggregation: the nodes' shares sum to
    one; one per site in plain aggregation, each site noised in full)."""
    import numpy as np

    if copies > 1 and scale > _EXACT_SCALE:  # the shape is Laplace's: scale the half-width
        return math.ceil(noise_halfwidth(_EXACT_SCALE, copies, level) * scale / _EXACT_SCALE)
    alpha = math.exp(-1.0 / scale)
    if copies == 1:  # P(|Z| > w) = 2 α^(w+1) / (1 + α)
        w = math.log((1 - level) * (1 + alpha) / 2) / math.log(alpha) - 1
        return max(math.ceil(w - 1e-9), 0)
    reach = math.ceil(scale * (math.log(copies) + 40)) + 1
    k = np.arange(-reach, reach + 1)
    one = np.exp(-np.abs(k) / scale)
    one /= one.sum()
    size = copies * 2 * reach + 1
    n = 1 << (size - 1).bit_length()
    pmf = np.clip(np.fft.irfft(np.fft.rfft(one, n) ** copies, n)[:size], 0, None)
    centre = copies * reach  # pmf[centre + k] = P(noise = k)
    both_sides = pmf[centre + 1 :] + pmf[centre - 1 :: -1]
    inside = pmf[centre] + np.concatenate([[0.0], np.cumsum(both_sides)])  # P(|noise| <= w)
    return int(np.searchsorted(inside, level - 1e-12))


@dataclass(frozen=True)
class Figure:
    """One released figure, its interval at `CONFIDENCE`, or suppressed with the reason."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "note": self.note,
        }


@dataclass(frozen=True)
class QueryResult:
    query: Query
    epsilon: float
    scales: list[float]
    figures: list[Figure] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query.name,
            "spec": self.query.as_dict(),
            "epsilon": self.epsilon,
            "noise_scales": self.scales,
            "figures": [f.as_dict() for f in self.figures],
        }


def _edges(query: Query) -> list[float]:
    step = (query.high - query.low) / query.bins
    return [query.low + i * step for i in range(query.bins + 1)]


def _counts(
    label: str, values: list[int], width: int, min_cohort: int, labels: list[str]
) -> list[Figure]:
    """Counts with their intervals; a count released below the minimum cohort is suppressed."""
    out = []
    for name, v in zip(labels, values, strict=True):
        if v < min_cohort:
            out.append(
                Figure(name, None, note=f"suppressed: below the minimum cohort {min_cohort}")
            )
        else:
            out.append(Figure(name, float(max(v, 0)), float(max(v - width, 0)), float(v + width)))
    return out


def _quantile(counts: np.ndarray, edges: list[float], p: float) -> float:
    import numpy as np

    total = counts.sum()
    if total <= 0:
        return float("nan")
    cumulative = np.cumsum(counts)
    target = p * total
    i = int(np.searchsorted(cumulative, target))
    i = min(i, len(counts) - 1)
    before = cumulative[i - 1] if i else 0.0
    inside = (target - before) / counts[i] if counts[i] > 0 else 0.0
    return float(edges[i] + inside * (edges[i + 1] - edges[i]))


def figures_for(
    query: Query,
    releases: list[Release],
    sums: list[list[int]],
    copies: int,
    min_cohort: int,
    level: float = CONFIDENCE,
    seed: int = 0,
) -> QueryResult:
    """Turn the noisy sums of one query into figures with intervals (post-processing: free).

    `copies` is how many independent noise draws each sum holds (see `noise_halfwidth`).
    Counts, bins and cells: value ± the noise's half-width. Mean: a ratio of a noisy sum to a
    noisy count, so each is taken at level 1-(1-level)/2 (the union bound keeps the pair at
    `level`) and the interval widened by the fixed-point rounding. Quantiles: a parametric
    bootstrap of the noise around the released histogram (fixed `seed`), widened to whole
    bins; an approximation, as the documentation says.
    """
    import numpy as np

    epsilon = sum(r.epsilon for r in releases)
    result = QueryResult(query, epsilon, [r.scale for r in releases])
    if query.kind == COUNT:
        w = noise_halfwidth(releases[0].scale, copies, level)
        result.figures.extend(_counts("rows", sums[0], w, 0, ["rows"]))
        return result
    if query.kind == MEAN:
        pair = 1 - (1 - level) / 2
        wc = noise_halfwidth(releases[0].scale, copies, pair)
        ws = noise_halfwidth(releases[1].scale, copies, pair)
        n, total = sums[0][0], sums[1][0]
        span, half = query.high - query.low, MEAN_UNITS / 2

        def value(units: float) -> float:
            """Units per row (from the midpoint) back to the column's scale, within bounds."""
            return (query.low + query.high) / 2 + min(max(units, -half), half) / MEAN_UNITS * span

        if n <= 0:
            result.figures.append(Figure("mean", None, note="no rows left after the noise"))
            return result
        if n - wc > 0:  # the ratio's extremes over the box of count and sum lie at its corners
            corners = [s / c for s in (total - ws, total + ws) for c in (n - wc, n + wc)]
            low, high = value(min(corners)), value(max(corners))
        else:
            low, high = query.low, query.high
        rounding = 0.5 / MEAN_UNITS * span  # each value was rounded by at most this
        result.figures.append(
            Figure(
                "mean",
                value(total / n),
                max(low - rounding, query.low),
                min(high + rounding, query.high),
                f"over about {n} non-missing values",
            )
        )
        return result
    if query.kind == HISTOGRAM:
        w = noise_halfwidth(releases[0].scale, copies, level)
        edges = _edges(query)
        labels = [f"[{edges[i]:g}, {edges[i + 1]:g})" for i in range(query.bins)]
        result.figures.extend(_counts("bin", sums[0], w, min_cohort, labels))
        return result
    if query.kind == QUANTILES:
        edges = _edges(query)
        counts = np.maximum(np.asarray(sums[0], dtype=np.float64), 0)
        rng = np.random.default_rng(seed)
        scale = releases[0].scale
        alpha = math.exp(-1 / scale)
        draws = 400
        # discrete Laplace noise as a difference of geometrics, `copies` times over
        noise = np.zeros((draws, counts.size))
        for _ in range(copies):
            noise += rng.geometric(1 - alpha, (draws, counts.size)) - rng.geometric(
                1 - alpha, (draws, counts.size)
            )
        resampled = np.maximum(counts + noise, 0)
        step = edges[1] - edges[0]
        for p in query.probabilities:
            point = _quantile(counts, edges, p)
            boot = np.array([_quantile(r, edges, p) for r in resampled])
            boot = boot[~np.isnan(boot)]
            if math.isnan(point) or boot.size == 0:
                result.figures.append(Figure(f"q{p:g}", None, note="no rows left after the noise"))
                continue
            lo, hi = np.quantile(boot, [(1 - level) / 2, 1 - (1 - level) / 2])
            result.figures.append(
                Figure(
                    f"q{p:g}",
                    point,
                    max(query.low + math.floor((lo - query.low) / step) * step, query.low),
                    min(query.low + math.ceil((hi - query.low) / step) * step, query.high),
                    "bootstrap interval, to whole bins",
                )
            )
        return result
    w = noise_halfwidth(releases[0].scale, copies, level)
    a_levels, b_levels = query.levels
    labels = [f"{query.column}={a}, {query.other}={b}" for a in a_levels for b in b_levels]
    result.figures.extend(_counts("cell", sums[0], w, min_cohort, labels))
    return result
