"""Registration refuses what it should, leaving nothing behind; `update_dataset` versions a file."""

from datetime import timedelta
from pathlib import Path

import pytest

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRow, JobSiteRow
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import DataError, InvalidInput, NotFound, StateError
from kumiai.domain.schema import ColumnType
from kumiai.domain.training import TrainingSettings
from kumiai.node import datasetwrite
from kumiai.node.home import LocalDataset, NodeHome
from kumiai.node.worker import NodeWorker, load_rows
from kumiai.services import agreements, datasets, members, projects, transparency
from kumiai.services.consortium import Consortium, init_consortium

HEADER = "id,age,sex,chol,num\n"


def _rows(n: int, start: int = 0) -> str:
    return "".join(
        f"{i},{40 + i % 30},{('M', 'F')[i % 2]},{200 + i},{i % 3}\n"
        for i in range(start, start + n)
    )


@pytest.fixture
def site(home: Path) -> Consortium:
    consortium = init_consortium(home)
    members.add_member(consortium, "lab", "university")
    members.add_member(consortium, "site", "hospital")
    return consortium


def _register(consortium: Consortium, path: Path, **kw: object) -> datasets.DatasetInfo:
    options: dict[str, object] = {"target": "num>0", "ignore": ("id",), **kw}
    return datasets.register_dataset(
        consortium,
        member="site",
        file=path,
        name="d",
        **options,  # type: ignore[arg-type]
    )


def _nothing_written(consortium: Consortium) -> None:
    node = consortium.member_home("site")
    assert datasets.list_datasets(consortium) == []
    assert not any((node / "data").glob("*")) and not any((node / "datasets").glob("*"))
    assert transparency.show_entries(consortium, dataset="d") == []


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (HEADER.replace("chol", "age") + _rows(12), ["repeats", "'age' (columns 2, 4)"]),
        (
            HEADER + _rows(12).replace("\n2,42,", "\n2,forty-two,", 1),
            ["row 3 (line 4), column 'age': 'forty-two' is not a number", "--missing age="],
        ),
        (HEADER, ["has a header but no data rows"]),
        (HEADER + _rows(6), ["has 6 row(s) with a target in 2 classes", "at least 10"]),
        (
            HEADER + _rows(12).replace(",207,", ",1e308,"),
            ["row 8 (line 9), column 'chol': '1e308' is beyond ±1e+100"],
        ),
        (HEADER + _rows(12).replace(",209,", ",-inf,"), ["column 'chol': '-inf' is not a finite"]),
    ],
    ids=["repeated-column", "text-in-numbers", "header-only", "too-few-rows", "1e308", "-inf"],
)
def test_a_refused_file_names_its_fault_and_leaves_nothing(
    site: Consortium, tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = tmp_path / "site.csv"
    path.write_text(text)
    with pytest.raises(InvalidInput) as error:
        _register(site, path)
    message = str(error.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    _nothing_written(site)


def test_a_failure_after_the_node_copy_is_installed_is_undone(
    site: Consortium, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "site.csv"
    path.write_text(HEADER + _rows(12))
    install = datasetwrite.DatasetWrite.install

    def install_then_fail(self: datasetwrite.DatasetWrite, record: LocalDataset) -> None:
        install(self, record)
        raise OSError("disk full")

    monkeypatch.setattr(datasetwrite.DatasetWrite, "install", install_then_fail)
    with pytest.raises(OSError, match="disk full"):
        _register(site, path)
    _nothing_written(site)


def test_registering_a_name_twice_points_at_update(site: Consortium, tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_text(HEADER + _rows(12))
    _register(site, path)
    with pytest.raises(InvalidInput, match="kumiai dataset update d FILE"):
        _register(site, path)


def test_an_update_is_signed_and_training_then_accepts_the_new_file(
    site: Consortium, tmp_path: Path
) -> None:
    path = tmp_path / "site.csv"
    path.write_text(HEADER + _rows(12))
    first = _register(site, path, missing={"chol": ("0",)})
    node = NodeHome(site.member_home("site"))
    stored = node.dataset("d").file
    stored.write_text(stored.read_text() + _rows(8, start=12))  # edited in place at the node
    with pytest.raises(DataError, match="changed since registration"):
        load_rows(node.dataset("d"))

    update = datasets.update_dataset(site, "d", stored)
    assert (update.before.rows, update.after.rows) == (12, 20)
    assert update.before.sha256 == first.sha256 != update.after.sha256
    assert update.left_out == ()  # 'id' stays ignored as registered
    record = node.dataset("d")
    assert record.sha256 == update.after.sha256 and record.missing == {"chol": ("0",)}
    assert record.file == stored and not list((stored.parent).glob(".*"))
    columns, labels = load_rows(record)
    assert len(labels) == 20 and set(columns) == {"age", "sex", "chol"}
    assert len(NodeWorker(node.root).split("d", TrainingSettings()).test_labels) == 5
    [entry] = transparency.show_entries(site, kind="dataset.updated")
    assert entry.actor == "site"
    assert entry.payload["previous_sha256"] == first.sha256
    assert entry.payload["sha256"] == update.after.sha256
    assert (entry.payload["previous_rows"], entry.payload["rows"]) == (12, 20)
    assert entry.payload["schema_changes"] == []
    assert [d.rows for d in datasets.list_datasets(site)] == [20]
    assert transparency.verify_ledger(site).ok

    with pytest.raises(InvalidInput, match="nothing to update"):
        datasets.update_dataset(site, "d", stored)
    with pytest.raises(NotFound, match="unknown dataset 'nope'"):
        datasets.update_dataset(site, "nope", stored)


def test_an_update_is_checked_like_a_registration(site: Consortium, tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_text(HEADER + _rows(12))
    before = _register(site, path)
    stored = NodeHome(site.member_home("site")).dataset("d").file
    original = stored.read_bytes()
    bad = tmp_path / "v2.csv"
    bad.write_text(HEADER + _rows(12).replace(",45,", ",inf,"))
    with pytest.raises(DataError, match=r"row 6 \(line 7\), column 'age': 'inf'"):
        datasets.update_dataset(site, "d", bad)
    bad.write_text(HEADER + _rows(3))
    with pytest.raises(InvalidInput, match="has 3 row"):
        datasets.update_dataset(site, "d", bad)
    assert stored.read_bytes() == original
    assert datasets.list_datasets(site) == [before]
    assert transparency.show_entries(site, kind="dataset.updated") == []


def _project_asking_for_d(consortium: Consortium) -> None:
    projects.propose_project(
        consortium, name="p", title="", purpose="x", proposed_by="lab", members=("site",)
    )
    projects.approve_project(consortium, "p", approved_by="site")
    agreements.request_data_use(
        consortium,
        project="p",
        dataset="d",
        requested_by="lab",
        expires_at=utc_now() + timedelta(days=1),
    )


def test_a_schema_change_is_refused_while_an_active_project_uses_the_dataset(
    site: Consortium, tmp_path: Path
) -> None:
    path = tmp_path / "site.csv"
    path.write_text(HEADER + _rows(12))
    _register(site, path)
    _project_asking_for_d(site)
    renamed = tmp_path / "v2.csv"
    renamed.write_text(HEADER.replace("chol", "cholesterol") + _rows(12, start=1))
    with pytest.raises(StateError) as error:
        datasets.update_dataset(site, "d", renamed)
    message = str(error.value)
    assert "drops chol" in message and "active project(s) p" in message
    assert "left out: cholesterol" in message
    retyped = tmp_path / "v3.csv"
    retyped.write_text(HEADER + _rows(12, start=1))
    with pytest.raises(StateError, match="changes age from numeric to categorical"):
        datasets.update_dataset(site, "d", retyped, column_types={"age": ColumnType.CATEGORICAL})
    assert transparency.show_entries(site, kind="dataset.updated") == []

    projects.close_project(site, "p", "lab")
    update = datasets.update_dataset(
        site, "d", renamed, column_types={"cholesterol": ColumnType.NUMERIC}
    )
    assert set(update.after.schema) == {"age", "sex", "cholesterol"}
    [entry] = transparency.show_entries(site, kind="dataset.updated")
    assert entry.payload["schema_changes"] == ["adds cholesterol", "drops chol"]


def test_an_update_waits_for_running_jobs(site: Consortium, tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_text(HEADER + _rows(12))
    _register(site, path)
    _project_asking_for_d(site)
    with transaction(site.sessions) as session:
        session.add(
            JobRow(
                id="job-1",
                project="p",
                kind="train",
                status="running",
                spec_json="{}",
                planned_rounds=1,
                created_at=utc_now(),
            )
        )
        session.flush()
        session.add(JobSiteRow(job_id="job-1", dataset="d", member="site", status="admitted"))
    newer = tmp_path / "v2.csv"
    newer.write_text(HEADER + _rows(14))
    with pytest.raises(StateError, match="in use by job\\(s\\) job-1, still running"):
        datasets.update_dataset(site, "d", newer)


def test_a_csv_dataset_can_move_to_parquet(site: Consortium, tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "site.csv"
    path.write_text(HEADER + _rows(12))
    _register(site, path)
    parquet = tmp_path / "site.parquet"
    pd.read_csv(tmp_path / "site.csv").iloc[:11].to_parquet(parquet)
    update = datasets.update_dataset(site, "d", parquet)
    node = NodeHome(site.member_home("site"))
    assert [p.name for p in (node.data_dir).iterdir()] == ["d.parquet"]
    assert update.after.rows == 11 and update.after.schema == update.before.schema
    assert len(load_rows(node.dataset("d"))[1]) == 11
