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
