"""DP federated analytics: the queries a `statistics` job asks, and what each releases.

Every query becomes one or more integer vectors ("releases") that one row can move by a
known L1 amount (the sensitivity), computed from public bounds and levels that the signed
job document declares, never from the data. The job's ε is split evenly between its queries
(a mean splits its share again between its count and its sum), so the whole job is ε-DP
per site by basic composition. The node adds discrete Laplace noise of scale
sensitivity / ε_release; the coordinator sums the sites' vectors and turns the sums into
figures with intervals in kumiai.domain.analysis_results. Pure functions: the node draws the
noise (kumiai.node.analysing).

NumPy loads inside the functions that compute, so reading a job document stays fast.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kumiai.domain.canonical import canonical_json
from kumiai.domain.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

COUNT, MEAN, HISTOGRAM, QUANTILES, CROSSTAB = "count", "mean", "histogram", "quantiles", "crosstab"
QUERY_KINDS = (COUNT, MEAN, HISTOGRAM, QUANTILES, CROSSTAB)
# A mean's sum is released in fixed point: each value becomes a whole number of
# 1/MEAN_UNITS of its column's public range, counted from the range's midpoint, so one row
# moves the sum by at most MEAN_UNITS / 2.
MEAN_UNITS = 1000
# Quantiles are read off a DP histogram of this many bins over the column's public range.
QUANTILE_BINS = 100
MAX_BINS, MAX_CELLS, MAX_QUERIES = 1000, 10_000, 100
# The name a crosstab uses for the dataset's target labels (e.g. '0'/'1' for num>0).
TARGET = "target"
ANALYSIS_TYPE, ANALYSIS_VERSION = "kumiai.analysis", 1


@dataclass(frozen=True)
class Query:
    """One question asked of every site's rows."""

    kind: str
    column: str = ""
    other: str = ""  # a crosstab's second column
    low: float = 0.0
    high: float = 0.0
    bins: int = 0
    probabilities: tuple[float, ...] = ()
    levels: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())  # a crosstab's public levels

    @property
    def name(self) -> str:
        if self.kind == COUNT:
            return "count"
        if self.kind == CROSSTAB:
            return f"crosstab({self.column},{self.other})"
        return f"{self.kind}({self.column})"

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": self.kind}
        if self.kind in (MEAN, HISTOGRAM, QUANTILES):
            doc.update(column=self.column, low=self.low, high=self.high)
        if self.kind == HISTOGRAM:
            doc["bins"] = self.bins
        if self.kind == QUANTILES:
            doc["probabilities"] = list(self.probabilities)
        if self.kind == CROSSTAB:
            doc.update(
                column=self.column,
                other=self.other,
                levels=[list(self.levels[0]), list(self.levels[1])],
            )
        return doc

    @classmethod
    def from_dict(cls, doc: Any) -> Query:
        """A query from JSON, every field checked (the node parses the coordinator's)."""
        if not isinstance(doc, dict) or doc.get("kind") not in QUERY_KINDS:
            raise InvalidInput(
                f"query {doc!r} has no known kind; use one of: " + ", ".join(QUERY_KINDS)
            )
        kind = str(doc["kind"])
        allowed = {
            COUNT: {"kind"},
            MEAN: {"kind", "column", "low", "high"},
            HISTOGRAM: {"kind", "column", "low", "high", "bins"},
            QUANTILES: {"kind", "column", "low", "high", "probabilities"},
            CROSSTAB: {"kind", "column", "other", "levels"},
        }[kind]
        if extra := set(doc) - allowed:
            raise InvalidInput(f"a {kind} query has unknown field(s) {sorted(extra)}")
        try:
            if kind == COUNT:
                return cls(COUNT)
            if kind == CROSSTAB:
                a, b = (tuple(str(v) for v in levels) for levels in doc["levels"])
                return check_query(
                    cls(CROSSTAB, str(doc["column"]), str(doc["other"]), levels=(a, b))
                )
            low, high = float(doc["low"]), float(doc["high"])
            bins = int(doc.get("bins", QUANTILE_BINS if kind == QUANTILES else 0))
            probabilities = tuple(float(p) for p in doc.get("probabilities", ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"a {kind} query is malformed ({exc!r} missing or wrong)") from None
        return check_query(
            cls(
                kind, str(doc["column"]), low=low, high=high, bins=bins, probabilities=probabilities
            )
        )


def check_query(query: Query) -> Query:
    """The query, or InvalidInput naming what is wrong and how to write it."""
    if query.kind in (MEAN, HISTOGRAM, QUANTILES):
        if not query.column:
            raise InvalidInput(f"a {query.kind} query needs a column")
        span = query.high - query.low  # finite bounds can still overflow to an infinite span
        if not (math.isfinite(span) and query.low < query.high):
            raise InvalidInput(
                f"{query.name}: public bounds must be two finite numbers, low < high "
                f"(got {query.low:g}..{query.high:g}); they come from domain knowledge, "
                "never from the data"
            )
    if query.kind in (HISTOGRAM, QUANTILES) and not 1 <= query.bins <= MAX_BINS:
        raise InvalidInput(f"{query.name}: bins must be 1 to {MAX_BINS} (got {query.bins})")
    bad = not query.probabilities or not all(0 < p < 1 for p in query.probabilities)
    if query.kind == QUANTILES and bad:
        raise InvalidInput(
            f"{query.name}: name probabilities strictly between 0 and 1, "
            "e.g. --quantiles age:0.25,0.5,0.75"
        )
    if query.kind == CROSSTAB:
        if not query.column or not query.other or query.column == query.other:
            raise InvalidInput("a crosstab names two different columns, e.g. --crosstab sex,cp")
        a, b = query.levels
        if not a or not b:
            missing = query.column if not a else query.other
            raise InvalidInput(
                f"{query.name}: the levels of {missing!r} are not declared; declare them "
                'publicly in --public-domain ({"levels": {"' + missing + '": ["a", "b"]}})'
            )
        if len(set(a)) != len(a) or len(set(b)) != len(b):
            raise InvalidInput(f"{query.name}: a level is declared twice")
        if len(a) * len(b) > MAX_CELLS:
            raise InvalidInput(f"{query.name}: at most {MAX_CELLS} cells")
    return query


@dataclass(frozen=True)
class Release:
    """One integer vector that leaves each node, noised, and what one row can move."""

    name: str
    length: int
    sensitivity: int  # L1: how far adding or removing one row moves the whole vector
    epsilon: float

    @property
    def scale(self) -> float:
        """The discrete Laplace scale b: P(noise = k) ∝ exp(-|k| / b)."""
        return self.sensitivity / self.epsilon


@dataclass(frozen=True)
class Analysis:
    """The queries of one statistics job and the ε they share, as the job document holds."""

    queries: tuple[Query, ...]
    epsilon: float

    def to_json(self) -> str:
        return canonical_json(
            {
                "type": ANALYSIS_TYPE,
                "version": ANALYSIS_VERSION,
                "queries": [q.as_dict() for q in self.queries],
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str, epsilon: float | None) -> Analysis:
        try:
            doc = json.loads(text)
            ok = isinstance(doc, dict) and doc.get("type") == ANALYSIS_TYPE
            if not ok or doc.get("version") != ANALYSIS_VERSION:
                raise ValueError(f"not a version-{ANALYSIS_VERSION} {ANALYSIS_TYPE}")
            if extra := set(doc) - {"type", "version", "queries"}:
                raise ValueError(f"unknown field(s) {sorted(extra)}")
            items = list(doc["queries"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"the analysis in the job document is malformed ({exc})") from None
        return make_analysis([Query.from_dict(q) for q in items], epsilon)

    def query_epsilon(self) -> float:
        return self.epsilon / len(self.queries)

    def releases(self) -> list[list[Release]]:
        """Per query, its releases: ε/queries each, a mean's split in half again."""
        share = self.query_epsilon()
        out: list[list[Release]] = []
        for q in self.queries:
            if q.kind == COUNT:
                out.append([Release("rows", 1, 1, share)])
            elif q.kind == MEAN:
                out.append(
                    [
                        Release("count", 1, 1, share / 2),
                        Release("sum", 1, MEAN_UNITS // 2, share / 2),
                    ]
                )
            elif q.kind in (HISTOGRAM, QUANTILES):
                out.append([Release("bins", q.bins, 1, share)])
            else:
                cells = len(q.levels[0]) * len(q.levels[1])
                out.append([Release("cells", cells, 1, share)])
        return out


def make_analysis(queries: list[Query], epsilon: float | None) -> Analysis:
    if not queries:
        raise InvalidInput(
            "no queries given; ask at least one, e.g. --count, --mean age:0:120, "
            "--histogram chol:0:600:12, --quantiles age:0.5, --crosstab sex,cp"
        )
    if epsilon is None:
        raise InvalidInput(
            "an analysis needs --epsilon (e.g. --epsilon 1): every query is paid from the "
            "sites' privacy budgets"
        )
    if isinstance(epsilon, bool) or not math.isfinite(epsilon) or epsilon <= 0:
        raise InvalidInput(f"an analysis needs a positive, finite --epsilon (got {epsilon!r})")
    if len(queries) > MAX_QUERIES:
        raise InvalidInput(
            f"{len(queries)} queries asked; an analysis asks at most {MAX_QUERIES} (split it, "
            "each paid from the same budgets)"
        )
    names = [q.name for q in queries]
    if len(set(names)) != len(names):
        raise InvalidInput(
            f"a query is asked twice: {sorted(n for n in names if names.count(n) > 1)}"
        )
    return Analysis(tuple(check_query(q) for q in queries), float(epsilon))


# -- parsing the command line --------------------------------------------------------------


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a number") from None
    return value


def _bounds(
    column: str, parts: list[str], bounds: dict[str, tuple[float, float]], option: str
) -> tuple[float, float]:
    if len(parts) >= 2:
        return _number(parts[0], f"{option} {column}: low"), _number(
            parts[1], f"{option} {column}: high"
        )
    if column in bounds:
        return bounds[column]
    raise InvalidInput(
        f"{option} {column}: no public bounds; write {option} {column}:LOW:HIGH or declare "
        f'them in --public-domain ({{"bounds": {{"{column}": [LOW, HIGH]}}}})'
    )


def parse_queries(
    *,
    count: bool = False,
    means: list[str] = (),  # type: ignore[assignment]
    histograms: list[str] = (),  # type: ignore[assignment]
    quantiles: list[str] = (),  # type: ignore[assignment]
    crosstabs: list[str] = (),  # type: ignore[assignment]
    bounds: dict[str, tuple[float, float]] | None = None,
    levels: dict[str, tuple[str, ...]] | None = None,
) -> list[Query]:
    """Queries from the CLI's options; bounds and levels default to the public domain's."""
    bounds, levels = bounds or {}, levels or {}
    queries: list[Query] = [Query(COUNT)] if count else []
    for text in means:
        column, *rest = text.split(":")
        low, high = _bounds(column, rest, bounds, "--mean")
        queries.append(Query(MEAN, column, low=low, high=high))
    for text in histograms:
        column, *rest = text.split(":")
        if len(rest) not in (1, 3):
            raise InvalidInput(
                f"--histogram {text!r}: write COLUMN:BINS (bounds from --public-domain) or "
                "COLUMN:LOW:HIGH:BINS, e.g. chol:0:600:12"
            )
        low, high = _bounds(column, rest[:-1], bounds, "--histogram")
        try:
            bins = int(rest[-1])
        except ValueError:
            raise InvalidInput(
                f"--histogram {text!r}: bins {rest[-1]!r} is not a whole number"
            ) from None
        queries.append(Query(HISTOGRAM, column, low=low, high=high, bins=bins))
    for text in quantiles:
        column, *rest = text.split(":")
        if len(rest) not in (1, 3):
            raise InvalidInput(
                f"--quantiles {text!r}: write COLUMN:P1,P2 (bounds from --public-domain) or "
                "COLUMN:LOW:HIGH:P1,P2, e.g. age:0:120:0.25,0.5,0.75"
            )
        low, high = _bounds(column, rest[:-1], bounds, "--quantiles")
        ps = tuple(_number(p, f"--quantiles {column}: probability") for p in rest[-1].split(","))
        queries.append(
            Query(QUANTILES, column, low=low, high=high, bins=QUANTILE_BINS, probabilities=ps)
        )
    for text in crosstabs:
        names = [c.strip() for c in text.split(",")]
        if len(names) != 2:
            raise InvalidInput(f"--crosstab {text!r}: name two columns, e.g. --crosstab sex,cp")
        a, b = names
        queries.append(
            Query(CROSSTAB, a, b, levels=(tuple(levels.get(a, ())), tuple(levels.get(b, ()))))
        )
    return [check_query(q) for q in queries]


# -- at the node: the exact integer vectors, before noise ----------------------------------


def level_of(value: Any) -> str | None:
    """A cell as a level: numbers that are whole print without '.0' (1.0 -> '1')."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def exact_vectors(query: Query, columns: dict[str, np.ndarray], rows: int) -> list[list[int]]:
    """What the query asks of one site's rows, exactly, as whole numbers (one per release).

    Missing cells are left out of means, histograms, quantiles and crosstabs; values outside
    the public bounds are clipped to them; crosstab levels outside the declared ones are left
    out. One row changes at most one bin or cell by one, a count by one, and a fixed-point sum
    by at most MEAN_UNITS / 2: the sensitivities `Analysis.releases` states.
    """
    import numpy as np

    if query.kind == COUNT:
        return [[rows]]
    if query.kind == CROSSTAB:
        for name in (query.column, query.other):
            if name not in columns:
                raise InvalidInput(f"{query.name}: this dataset has no column {name!r}")
        a_levels, b_levels = query.levels
        a_index = {v: i for i, v in enumerate(a_levels)}
        b_index = {v: i for i, v in enumerate(b_levels)}
        cells = [0] * (len(a_levels) * len(b_levels))
        for a, b in zip(columns[query.column], columns[query.other], strict=True):
            i, j = a_index.get(level_of(a) or ""), b_index.get(level_of(b) or "")
            if i is not None and j is not None:
                cells[i * len(b_levels) + j] += 1
        return [cells]
    if query.column not in columns:
        raise InvalidInput(f"{query.name}: this dataset has no column {query.column!r}")
    try:
        values = np.asarray(columns[query.column], dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"{query.name}: column {query.column!r} is not numeric") from None
    values = np.clip(values[~np.isnan(values)], query.low, query.high)
    if query.kind == MEAN:
        middle = (query.low + query.high) / 2
        units = np.rint((values - middle) / (query.high - query.low) * MEAN_UNITS)
        return [[int(values.size)], [int(units.sum())]]
    edges = np.linspace(query.low, query.high, query.bins + 1)
    counts, _ = np.histogram(values, bins=edges)
    return [[int(c) for c in counts]]
