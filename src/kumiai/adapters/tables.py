"""Reading a member's CSV or Parquet file into typed columns, with errors that point at cells.

pandas and NumPy load inside the functions that read a file: the catalogue commands that
only list datasets import this module without reading any.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kumiai.domain.errors import DataError, InvalidInput
from kumiai.domain.schema import (
    MAX_MAGNITUDE,
    NOT_A_NUMBER,
    ColumnType,
    Schema,
    TargetSpec,
    read_number,
)
from kumiai.domain.split import check_splittable

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import NDArray

    from kumiai.domain.preprocessing import Columns

SUPPORTED = (".csv", ".parquet", ".pq")
SHOWN_CELLS = 5  # offending cells an error lists by row before it only counts the rest


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise InvalidInput(
            f"data file {path} does not exist; give the path to a CSV or Parquet file"
        )
    return path


def read_header(path: Path) -> list[str]:
    """The column names exactly as the file spells them, before pandas renames repeats."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for record in csv.reader(handle):
                if record:  # pandas skips blank lines before the header too
                    return record
        raise DataError(
            f"data file {path} is empty; it needs a header row of column names, then data rows"
        )
    import pyarrow.parquet as pq  # lazy: only Parquet files need it

    return list(pq.read_schema(path).names)


def check_header(path: Path, names: list[str]) -> None:
    """Refuse repeated or empty column names, naming the columns and their positions."""
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(names, start=1):
        if not name.strip():
            raise DataError(
                f"data file {path}: column {position} of the header has no name; name it "
                "(or delete the column if it holds only row numbers)"
            )
        positions.setdefault(name, []).append(position)
    repeated = [
        f"{name!r} (columns {', '.join(map(str, found))})"
        for name, found in positions.items()
        if len(found) > 1
    ]
    if repeated:
        raise DataError(
            f"data file {path} repeats the column name(s) {'; '.join(repeated)}; give each "
            "column its own name in the header"
        )


def read_raw(path: Path) -> pd.DataFrame:
    """Every cell as text (None where empty), so parsing errors can name the cell."""
    import pandas as pd

    suffix = require_file(path).suffix.lower()
    if suffix not in SUPPORTED:
        raise InvalidInput(
            f"data file {path} has the extension {suffix or '(none)'}; kumiai reads "
            + ", ".join(SUPPORTED)
        )
    try:
        check_header(path, read_header(path))
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            frame = pd.read_parquet(path)
            frame = frame.astype(object).where(frame.notna(), None)
            frame = frame.map(lambda v: None if v is None else str(v))
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        csv.Error,
        UnicodeDecodeError,
        OSError,
    ) as exc:
        raise DataError(f"data file {path} cannot be read: {exc}") from None
    except ValueError as exc:  # pyarrow raises ArrowInvalid, a ValueError
        raise DataError(f"data file {path} cannot be read: {exc}") from None
    if len(frame.index) == 0:
        raise DataError(
            f"data file {path} has a header but no data rows; add the rows and register it again"
        )
    return frame


def _csv_lines(path: Path, rows: set[int]) -> dict[int, int]:
    """The line on which each wanted data row (0-based) starts, as an editor numbers lines."""
    found: dict[int, int] = {}
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        start, row = 1, -2  # -2: the header is not a data row
        for record in reader:
            line, start = start, reader.line_num + 1
            if not record:  # blank lines are skipped by pandas, as here
                continue
            row += 1
            if row in rows:
                found[row] = line
                if len(found) == len(rows):
                    break
    return found


def locate(path: Path, rows: list[int]) -> dict[int, str]:
    """'row 3 (line 4)' for each 0-based data row: the 1-based data row and, in a CSV, its line."""
    try:
        lines = _csv_lines(path, set(rows)) if path.suffix.lower() == ".csv" else {}
    except (csv.Error, OSError):
        lines = {}  # the row number alone still points at the cell
    return {r: f"row {r + 1}" + (f" (line {lines[r]})" if r in lines else "") for r in rows}


def _is_missing(value: Any, markers: tuple[str, ...]) -> bool:
    if value is None:
        return True
    text = str(value).strip()
    return text.lower() in MISSING_TOKENS or text in markers


def _unusable_numbers(
    raw: list[Any], markers: tuple[str, ...]
) -> tuple[list[tuple[int, str, str]], int]:
    """Cells of a numeric column that cannot be used: (row, text, why), and how many are filled."""
    problems: list[tuple[int, str, str]] = []
    filled = 0
    for i, value in enumerate(raw):
        if _is_missing(value, markers):
            continue
        filled += 1
        _, why = read_number(str(value).strip())
        if why:
            problems.append((i, str(value).strip(), why))
    return problems, filled


def _refuse_cells(
    path: Path, column: str, problems: list[tuple[int, str, str]], filled: int, guessed: bool
) -> DataError:
    """One message for a column's bad cells: the first named in full, a few more, a count.

    `guessed`: the column is numeric because most of its cells are numbers, not by --types.
    """
    shown = problems[:SHOWN_CELLS]
    where = locate(path, [row for row, _, _ in shown])
    (row, text, why), more = shown[0], shown[1:]
    message = f"{path}: {where[row]}, column {column!r}: {text!r} {why}"
    if more:
        message += "; also " + "; ".join(f"{where[r]}: {t!r}" for r, t, _ in more)
    if guessed:
        numbers = filled - len(problems)
        message += (
            f" ({numbers} of its {filled} filled cells are numbers, so kumiai reads it as "
            f"numeric; {len(problems)} are not)"
        )
    elif len(problems) > 1:
        message += f" ({len(problems)} of its {filled} filled cells are unusable)"
    texts = [t for _, t, w in problems if w == NOT_A_NUMBER]
    if texts:
        fix = (
            f"correct the cells, declare a value missing with --missing {column}={texts[0]}, "
            f"or declare the column categorical with --types {column}=categorical"
        )
    else:
        fix = (
            f"numbers must be finite and within ±{MAX_MAGNITUDE:g}; correct the cells or "
            f"declare the value missing with --missing {column}={text}"
        )
    return DataError(f"{message}. Fix: {fix}")


def _column_type(path: Path, column: str, raw: list[Any], markers: tuple[str, ...]) -> ColumnType:
    """Numeric when most filled cells are numbers; a minority of other cells is an error.

    A column with a few text cells among numbers is almost always a typo or an unmarked
    missing value: guessing 'categorical' would silently turn every number into a level.
    """
    problems, filled = _unusable_numbers(raw, markers)
    texts = [p for p in problems if p[2] == NOT_A_NUMBER]
    if filled == 0 or len(texts) * 2 >= filled:
        return ColumnType.CATEGORICAL
    if texts:
        raise _refuse_cells(path, column, texts, filled, guessed=True)
    return ColumnType.NUMERIC


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
        if column in declared:
            schema[column] = declared[column]
        else:
            markers = missing.get(column, ())
            schema[column] = _column_type(path, column, frame[column].tolist(), markers)
    if not schema:
        raise InvalidInput(f"data file {path} has no feature columns besides the target")
    return schema


def parse_columns(
    frame: pd.DataFrame, *, path: Path, schema: Schema, missing: dict[str, tuple[str, ...]]
) -> Columns:
    """Typed columns; cells that do not parse are named by file, row and column."""
    import numpy as np

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
            problems, filled = _unusable_numbers(raw, markers)
            if problems:
                raise _refuse_cells(path, column, problems, filled, guessed=False)
            parsed[column] = np.array(
                [np.nan if _is_missing(v, markers) else float(str(v).strip()) for v in raw],
                dtype=np.float64,
            )
        else:
            parsed[column] = np.array(
                [None if _is_missing(v, markers) else str(v).strip() for v in raw], dtype=object
            )
    return parsed


def target_labels(frame: pd.DataFrame, *, path: Path, target: TargetSpec) -> NDArray[Any]:
    """Labels as text ('0'/'1' for a rule such as num>0); None where the target is missing."""
    import numpy as np

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
            number, why = read_number(text)
            if number is None:
                raise DataError(
                    f"{path}: {locate(path, [i])[i]}, column {target.column!r}: {text!r} {why}, "
                    f"so the target rule {target} cannot be applied; correct the cell, or "
                    "leave it empty if the row's outcome is unknown"
                )
            limit = float(str(target.value))
            holds = {
                ">": number > limit,
                ">=": number >= limit,
                "<": number < limit,
                "<=": number <= limit,
            }[target.op]
        labels.append("1" if holds else "0")
    return np.array(labels, dtype=object)


@dataclass(frozen=True)
class CheckedFile:
    schema: Schema
    rows: int


def check_file(
    file: Path,
    frame: pd.DataFrame,
    spec: TargetSpec,
    declared: dict[str, ColumnType],
    ignore: tuple[str, ...],
    missing: dict[str, tuple[str, ...]],
) -> CheckedFile:
    """Every check a dataset passes before it is stored; errors name the steward's file.

    Shared by the one-machine registration (services.datasets) and a node registering on
    its own machine (node.remote).
    """
    schema = infer_schema(
        frame, path=file, target=spec, declared=declared, ignore=ignore, missing=missing
    )
    labels = target_labels(frame, path=file, target=spec)
    # Every cell parses now, or the error names the file, row and column.
    parse_columns(frame, path=file, schema=schema, missing=missing)
    present = Counter(str(label) for label in labels if label is not None)
    check_splittable(f"data file {file} (target {spec})", present)
    return CheckedFile(schema, sum(present.values()))
