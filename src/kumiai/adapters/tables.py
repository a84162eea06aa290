"""Reading a member's CSV or Parquet file into typed columns, with errors that point at cells."""

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kumiai.domain.errors import DataError, InvalidInput
from kumiai.domain.preprocessing import Columns
from kumiai.domain.schema import ColumnType, Schema, TargetSpec

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
SUPPORTED = (".csv", ".parquet", ".pq")


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_raw(path: Path) -> pd.DataFrame:
    """Every cell as text (None where empty), so parsing errors can name the cell."""
    if not path.is_file():
        raise InvalidInput(
            f"data file {path} does not exist; give the path to a CSV or Parquet file"
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            frame = frame.astype(object).where(frame.notna(), None)
            frame = frame.map(lambda v: None if v is None else str(v))
        else:
            raise InvalidInput(
                f"data file {path} has the extension {suffix or '(none)'}; kumiai reads "
                + ", ".join(SUPPORTED)
            )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"data file {path} cannot be read: {exc}") from None
    except ValueError as exc:  # pyarrow raises ArrowInvalid, a ValueError
        raise DataError(f"data file {path} cannot be read: {exc}") from None
    if frame.columns.duplicated().any():
        dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise DataError(f"data file {path} repeats the columns {dupes}; give each column one name")
    return frame


def _is_missing(value: Any, markers: tuple[str, ...]) -> bool:
    if value is None:
        return True
    text = str(value).strip()
    return text.lower() in MISSING_TOKENS or text in markers


def _looks_numeric(values: pd.Series, markers: tuple[str, ...]) -> bool:
    present = [v for v in values if not _is_missing(v, markers)]
    if not present:
        return False
    try:
        for v in present:
            float(v)
    except ValueError:
        return False
    return True


def infer_schema(
    frame: pd.DataFrame,
    *,
    path: Path,
    target: TargetSpec,
    declared: dict[str, ColumnType],
    ignore: tuple[str, ...],
    missing: dict[str, tuple[str, ...]],
) -> Schema:
    """Feature columns and their types: declared ones as given, the rest guessed from values."""
    columns = list(frame.columns)
    named = [*declared, *ignore, *missing, target.column]
    unknown = sorted({c for c in named if c not in columns})
    if unknown:
        raise InvalidInput(
            f"data file {path} has no column(s) {unknown}; its columns are: {', '.join(columns)}"
        )
    schema: Schema = {}
    for column in columns:
        if column == target.column or column in ignore:
            continue
        markers = missing.get(column, ())
        if column in declared:
            schema[column] = declared[column]
        elif _looks_numeric(frame[column], markers):
            schema[column] = ColumnType.NUMERIC
        else:
            schema[column] = ColumnType.CATEGORICAL
    if not schema:
        raise InvalidInput(f"data file {path} has no feature columns besides the target")
    return schema


def parse_columns(
    frame: pd.DataFrame, *, path: Path, schema: Schema, missing: dict[str, tuple[str, ...]]
) -> Columns:
    """Typed columns; a cell that does not parse is named by file, row and column."""
    parsed: Columns = {}
    for column, kind in schema.items():
        if column not in frame.columns:
            raise DataError(
                f"data file {path} has lost column {column!r} since registration; "
                "register the file again"
            )
        markers = missing.get(column, ())
        raw = frame[column].tolist()
        if kind is ColumnType.NUMERIC:
            out = np.empty(len(raw), dtype=np.float64)
            for i, value in enumerate(raw):
                if _is_missing(value, markers):
                    out[i] = np.nan
                    continue
                try:
                    out[i] = float(value)
                except ValueError:
                    raise DataError(
                        f"{path}: row {i + 1} (line {i + 2}), column {column!r}: {value!r} is not "
                        "a number; fix the cell, mark it missing with --missing "
                        f"{column}={value}, or declare --types {column}=categorical"
                    ) from None
            parsed[column] = out
        else:
            parsed[column] = np.array(
                [None if _is_missing(v, markers) else str(v).strip() for v in raw], dtype=object
            )
    return parsed


def target_labels(frame: pd.DataFrame, *, path: Path, target: TargetSpec) -> NDArray[Any]:
    """Labels as text ('0'/'1' for a rule such as num>0); None where the target is missing."""
    if target.column not in frame.columns:
        raise DataError(f"data file {path} has no target column {target.column!r}")
    labels: list[str | None] = []
    for i, value in enumerate(frame[target.column].tolist()):
        if _is_missing(value, ()):
            labels.append(None)
            continue
        text = str(value).strip()
        if target.op is None:
            labels.append(text)
            continue
        if target.op in ("==", "!="):
            holds = (text == target.value) == (target.op == "==")
        else:
            try:
                number = float(text)
            except ValueError:
                raise DataError(
                    f"{path}: row {i + 1} (line {i + 2}), column {target.column!r}: {text!r} is "
                    f"not a number, so the target rule {target} cannot be applied"
                ) from None
            limit = float(str(target.value))
            holds = {
                ">": number > limit,
                ">=": number >= limit,
                "<": number < limit,
                "<=": number <= limit,
            }[target.op]
        labels.append("1" if holds else "0")
    return np.array(labels, dtype=object)
