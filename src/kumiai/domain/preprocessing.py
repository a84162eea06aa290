"""Preprocessing statistics computed federatedly: each node summarises, nobody pools rows.

A node sends counts, sums and sums of squares per numeric column, level counts per
categorical column and the class counts of its target. Merging them gives exactly the
pooled means, scales, imputation values and category levels.
"""

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kumiai.domain.canonical import canonical_json
from kumiai.domain.errors import DataError, InvalidInput
from kumiai.domain.schema import ColumnType, Schema, compare_schemas

Columns = dict[str, NDArray[Any]]  # numeric: float with NaN; categorical: object with None


@dataclass
class SiteSummary:
    """Aggregates of one site's training rows."""

    rows: int
    schema: Schema
    numeric: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # n, sum, sumsq
    levels: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return canonical_json(
            {
                "rows": self.rows,
                "schema": {c: t.value for c, t in self.schema.items()},
                "numeric": {c: list(v) for c, v in self.numeric.items()},
                "levels": self.levels,
                "missing": self.missing,
                "classes": self.classes,
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str) -> "SiteSummary":
        doc = json.loads(text)
        return cls(
            rows=int(doc["rows"]),
            schema={c: ColumnType(t) for c, t in doc["schema"].items()},
            numeric={c: (int(v[0]), float(v[1]), float(v[2])) for c, v in doc["numeric"].items()},
            levels={c: {str(k): int(n) for k, n in v.items()} for c, v in doc["levels"].items()},
            missing={c: int(n) for c, n in doc["missing"].items()},
            classes={str(k): int(n) for k, n in doc["classes"].items()},
        )


def summarise(columns: Columns, schema: Schema, labels: NDArray[Any]) -> SiteSummary:
    summary = SiteSummary(rows=len(labels), schema=dict(schema))
    for name, kind in schema.items():
        values = columns[name]
        if kind is ColumnType.NUMERIC:
            present = values[~np.isnan(values)]
            summary.numeric[name] = (
                int(present.size),
                float(present.sum()),
                float((present**2).sum()),
            )
            summary.missing[name] = int(values.size - present.size)
        else:
            mask = np.array([v is not None for v in values], dtype=bool)
            found, counts = np.unique(values[mask].astype(str), return_counts=True)
            summary.levels[name] = {str(k): int(n) for k, n in zip(found, counts, strict=True)}
            summary.missing[name] = int((~mask).sum())
    found, counts = np.unique(labels.astype(str), return_counts=True)
    summary.classes = {str(k): int(n) for k, n in zip(found, counts, strict=True)}
    return summary


@dataclass(frozen=True)
class FeaturePlan:
    """How raw columns become the model's feature matrix; identical at every site."""

    schema: Schema
    means: dict[str, float]
    scales: dict[str, float]
    levels: dict[str, tuple[str, ...]]
    indicators: tuple[str, ...]  # columns that get a 'was missing' feature
    classes: tuple[str, ...]

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for col, kind in self.schema.items():
            if kind is ColumnType.NUMERIC:
                names.append(col)
            else:
                names.extend(f"{col}={level}" for level in self.levels[col])
            if col in self.indicators:
                names.append(f"{col}:missing")
        return names

    def transform(self, columns: Columns) -> NDArray[np.float64]:
        blocks: list[NDArray[np.float64]] = []
        for col, kind in self.schema.items():
            values = columns[col]
            if kind is ColumnType.NUMERIC:
                missing = np.isnan(values)
                scaled = np.where(missing, 0.0, (values - self.means[col]) / self.scales[col])
                blocks.append(scaled[:, None])
            else:
                missing = np.array([v is None for v in values], dtype=bool)
                as_text = np.array(["" if v is None else str(v) for v in values], dtype=object)
                levels = np.array(self.levels[col], dtype=object)
                blocks.append((as_text[:, None] == levels[None, :]).astype(np.float64))
            if col in self.indicators:
                blocks.append(missing.astype(np.float64)[:, None])
        return np.hstack(blocks) if blocks else np.zeros((len(next(iter(columns.values()))), 0))

    def encode_labels(self, labels: NDArray[Any], where: str) -> NDArray[np.int64]:
        index = {c: i for i, c in enumerate(self.classes)}
        text = labels.astype(str)
        unknown = sorted(str(t) for t in set(text) - set(index))
        if unknown:
            raise DataError(
                f"{where}: target values {unknown} were not seen in any site's training rows; "
                "re-run the job so the classes are summarised again"
            )
        return np.array([index[t] for t in text], dtype=np.int64)

    def to_json(self) -> str:
        return canonical_json(
            {
                "schema": {c: t.value for c, t in self.schema.items()},
                "means": self.means,
                "scales": self.scales,
                "levels": {c: list(v) for c, v in self.levels.items()},
                "indicators": list(self.indicators),
                "classes": list(self.classes),
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str) -> "FeaturePlan":
        doc = json.loads(text)
        return cls(
            schema={c: ColumnType(t) for c, t in doc["schema"].items()},
            means={c: float(v) for c, v in doc["means"].items()},
            scales={c: float(v) for c, v in doc["scales"].items()},
            levels={c: tuple(v) for c, v in doc["levels"].items()},
            indicators=tuple(doc["indicators"]),
            classes=tuple(doc["classes"]),
        )


def merge_summaries(summaries: dict[str, SiteSummary]) -> FeaturePlan:
    """Pooled statistics from site summaries; raises if the sites' columns differ."""
    schema = compare_schemas({site: s.schema for site, s in summaries.items()})
    means: dict[str, float] = {}
    scales: dict[str, float] = {}
    levels: dict[str, tuple[str, ...]] = {}
    for col, kind in schema.items():
        if kind is ColumnType.NUMERIC:
            n = sum(s.numeric[col][0] for s in summaries.values())
            total = sum(s.numeric[col][1] for s in summaries.values())
            total_sq = sum(s.numeric[col][2] for s in summaries.values())
            mean = total / n if n else 0.0
            var = max(total_sq / n - mean**2, 0.0) if n else 0.0
            means[col] = mean
            scales[col] = math.sqrt(var) if var > 1e-12 else 1.0
        else:
            levels[col] = tuple(sorted({lv for s in summaries.values() for lv in s.levels[col]}))
    indicators = tuple(c for c in schema if any(s.missing.get(c, 0) for s in summaries.values()))
    classes = tuple(sorted({c for s in summaries.values() for c in s.classes}))
    if len(classes) < 2:
        raise InvalidInput(
            f"the target has only the class {list(classes)} across all sites; a classifier "
            "needs at least two (check the --target rule)"
        )
    return FeaturePlan(schema, means, scales, levels, indicators, classes)
