"""Reading members' files: cell-level errors, missing markers, CSV and Parquet alike."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kumiai.adapters import tables
from kumiai.domain.errors import DataError, InvalidInput
from kumiai.domain.schema import ColumnType, parse_target


def _csv(tmp_path: Path, text: str, name: str = "site.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _schema(path: Path, **kw):
    frame = tables.read_raw(path)
    options = {"declared": {}, "ignore": (), "missing": {}, **kw}
    return frame, tables.infer_schema(frame, path=path, target=parse_target("num>0"), **options)


def test_types_are_inferred_and_missing_markers_respected(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,age,sex,chol,num\n1,63,Male,0,0\n2,,Female,250,2\n3,70,NA,233,1\n")
    frame, schema = _schema(path, ignore=("id",), missing={"chol": ("0",)})
    assert schema == {
        "age": ColumnType.NUMERIC,
        "sex": ColumnType.CATEGORICAL,
        "chol": ColumnType.NUMERIC,
    }
    columns = tables.parse_columns(frame, path=path, schema=schema, missing={"chol": ("0",)})
    assert np.isnan(columns["chol"][0]) and columns["chol"][1] == 250
    assert np.isnan(columns["age"][1])
    assert columns["sex"].tolist() == ["Male", "Female", None]
    labels = tables.target_labels(frame, path=path, target=parse_target("num>0"))
    assert labels.tolist() == ["0", "1", "1"]


def test_a_cell_that_cannot_be_parsed_names_file_row_and_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, "age,num\n63,0\n6x,1\n")
    frame = tables.read_raw(path)
    with pytest.raises(DataError) as error:
        tables.parse_columns(frame, path=path, schema={"age": ColumnType.NUMERIC}, missing={})
    message = str(error.value)
    assert str(path) in message and "row 2 (line 3)" in message and "'age'" in message
    assert "'6x'" in message


def test_a_target_rule_on_text_names_the_row(tmp_path: Path) -> None:
    path = _csv(tmp_path, "age,num\n63,0\n64,severe\n")
    with pytest.raises(DataError, match=r"row 2 \(line 3\), column 'num'"):
        tables.target_labels(tables.read_raw(path), path=path, target=parse_target("num>0"))


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame({"age": [63.0, None, 70.0], "sex": ["M", "F", None], "num": [0, 2, 1]})
    path = tmp_path / "site.parquet"
    frame.to_parquet(path)
    raw, schema = _schema(path)
    assert schema == {"age": ColumnType.NUMERIC, "sex": ColumnType.CATEGORICAL}
    columns = tables.parse_columns(raw, path=path, schema=schema, missing={})
    assert columns["age"][0] == 63.0 and np.isnan(columns["age"][1])
    assert columns["sex"].tolist() == ["M", "F", None]


def test_unknown_columns_and_file_kinds_are_explained(tmp_path: Path) -> None:
    path = _csv(tmp_path, "age,num\n1,0\n")
    with pytest.raises(InvalidInput, match=r"no column\(s\) \['weight'\]"):
        _schema(path, declared={"weight": ColumnType.NUMERIC})
    other = _csv(tmp_path, "x", name="site.xlsx")
    with pytest.raises(InvalidInput, match=r"reads \.csv"):
        tables.read_raw(other)
    with pytest.raises(InvalidInput, match="does not exist"):
        tables.read_raw(tmp_path / "absent.csv")


def _rows(n: int, cell: str = "{i}") -> str:
    """`n` data lines of `age,num`, with `cell` formatting each age."""
    return "".join(f"{cell.format(i=40 + i)},{i % 2}\n" for i in range(n))


def test_repeated_column_names_are_refused_with_their_positions(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,los,age,los,num\n1,2,3,4,0\n")
    with pytest.raises(DataError) as error:
        tables.read_raw(path)
    message = str(error.value)
    assert str(path) in message and "'los' (columns 2, 4)" in message
    assert "los.1" not in message


def test_repeated_parquet_columns_are_refused_from_the_schema(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "site.parquet"
    arrays = [pa.array([1, 2]), pa.array([3, 4]), pa.array([0, 1])]
    pq.write_table(pa.Table.from_arrays(arrays, names=["age", "age", "num"]), path)
    with pytest.raises(DataError, match=r"'age' \(columns 1, 2\)"):
        tables.read_raw(path)


def test_an_unnamed_column_is_refused(tmp_path: Path) -> None:
    path = _csv(tmp_path, ",age,num\n0,63,0\n")
    with pytest.raises(DataError, match="column 1 of the header has no name"):
        tables.read_raw(path)


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has a header but no data rows"):
        tables.read_raw(_csv(tmp_path, "age,num\n"))
    with pytest.raises(DataError, match="is empty"):
        tables.read_raw(_csv(tmp_path, "", name="empty.csv"))


def test_a_few_text_cells_in_a_numeric_column_are_refused_with_rows(tmp_path: Path) -> None:
    body = _rows(12).replace("43,1", "4 3,1").replace("47,1", "n.a.,1")
    path = _csv(tmp_path, "age,num\n" + body)
    with pytest.raises(DataError) as error:
        _schema(path)
    message = str(error.value)
    assert "row 4 (line 5), column 'age': '4 3' is not a number" in message
    assert "row 8 (line 9): 'n.a.'" in message
    assert "10 of its 12 filled cells are numbers" in message
    assert "--missing age=4 3" in message and "--types age=categorical" in message


def test_mostly_text_stays_categorical_and_declared_missing_values_are_accepted(
    tmp_path: Path,
) -> None:
    path = _csv(tmp_path, "age,grade,num\n63,A,0\n64,B,1\nunknown,7,0\n65,C,1\n")
    markers = {"age": ("unknown",)}
    frame, schema = _schema(path, missing=markers)
    assert schema == {"age": ColumnType.NUMERIC, "grade": ColumnType.CATEGORICAL}
    columns = tables.parse_columns(frame, path=path, schema=schema, missing=markers)
    assert np.isnan(columns["age"][2]) and columns["grade"].tolist()[2] == "7"


def test_line_numbers_count_blank_lines_the_steward_sees(tmp_path: Path) -> None:
    path = _csv(tmp_path, "age,num\n63,0\n\n64,1\n6x,0\n")
    frame = tables.read_raw(path)
    with pytest.raises(DataError, match=r"row 3 \(line 5\), column 'age': '6x'"):
        tables.parse_columns(frame, path=path, schema={"age": ColumnType.NUMERIC}, missing={})


@pytest.mark.parametrize("value", ["1e308", "inf", "-inf", "-Infinity", "-nan", "-2e100"])
def test_non_finite_and_overflowing_numbers_are_refused(tmp_path: Path, value: str) -> None:
    path = _csv(tmp_path, "age,num\n" + _rows(3) + f"{value},0\n")
    frame, schema = _schema(path)
    assert schema == {"age": ColumnType.NUMERIC}
    with pytest.raises(DataError) as error:
        tables.parse_columns(frame, path=path, schema=schema, missing={})
    message = str(error.value)
    assert f"{path}: row 4 (line 5), column 'age': {value!r}" in message
    assert "1e+100" in message and f"--missing age={value}" in message


def test_the_magnitude_bound_is_inclusive_and_nan_text_means_missing(tmp_path: Path) -> None:
    path = _csv(tmp_path, "age,num\n1e100,0\n-1e100,1\nNaN,0\n")
    frame, schema = _schema(path)
    ages = tables.parse_columns(frame, path=path, schema=schema, missing={})["age"]
    assert ages[0] == 1e100 and ages[1] == -1e100 and np.isnan(ages[2])


def test_parquet_infinities_are_refused_by_row(tmp_path: Path) -> None:
    path = tmp_path / "site.parquet"
    pd.DataFrame({"age": [63.0, float("inf"), 70.0], "num": [0, 1, 0]}).to_parquet(path)
    frame, schema = _schema(path)
    with pytest.raises(DataError, match=r"row 2, column 'age': 'inf' is not a finite number"):
        tables.parse_columns(frame, path=path, schema=schema, missing={})


def test_a_target_rule_refuses_an_infinite_outcome(tmp_path: Path) -> None:
    path = _csv(tmp_path, "age,num\n63,0\n64,inf\n")
    with pytest.raises(DataError, match=r"row 2 \(line 3\), column 'num': 'inf' is not a finite"):
        tables.target_labels(tables.read_raw(path), path=path, target=parse_target("num>0"))
