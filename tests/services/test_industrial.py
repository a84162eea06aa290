"""The four factories of the AI4I data: who holds which rows, and a consortium they all join."""

from pathlib import Path

import pandas as pd
import pytest

from kumiai.domain.errors import InvalidInput
from kumiai.domain.metrics import combine, detection_metrics
from kumiai.domain.training import TrainingSettings
from kumiai.services.baselines import local_only
from kumiai.services.datasets import list_datasets
from kumiai.services.industrial import (
    FACTORIES,
    build_factory_consortium,
    export_factory_files,
    factory_of,
)


@pytest.mark.parametrize(
    ("product", "factory"),
    [
        ("L47181", "kawasaki-works"),
        ("L51999", "kawasaki-works"),
        ("L52000", "yokkaichi-works"),
        ("M14860", "nagoya-plant"),
        ("H29424", "kitakyushu-mill"),
    ],
)
def test_a_product_belongs_to_the_factory_of_its_type_and_number(
    product: str, factory: str
) -> None:
    assert factory_of(product) == factory


def test_a_product_of_no_known_type_is_named() -> None:
    with pytest.raises(InvalidInput, match="product ID 'X12345' belongs to no factory"):
        factory_of("X12345")


def test_every_row_goes_to_exactly_one_factory_of_very_different_sizes(tmp_path: Path) -> None:
    files = export_factory_files(tmp_path)
    assert list(files) == list(FACTORIES)
    frames = {m: pd.read_csv(p) for m, p in files.items()}
    sizes = {m: len(f) for m, f in frames.items()}
    failures = {m: int(f["Target"].sum()) for m, f in frames.items()}
    assert sizes == {
        "kawasaki-works": 2910,
        "yokkaichi-works": 3090,
        "nagoya-plant": 2997,
        "kitakyushu-mill": 1003,
    }
    assert failures == {
        "kawasaki-works": 150,
        "yokkaichi-works": 85,
        "nagoya-plant": 83,
        "kitakyushu-mill": 21,
    }
    ids = pd.concat([f["UDI"] for f in frames.values()])
    assert ids.is_unique and len(ids) == 10_000


def test_every_factory_registers_its_log_and_trains_without_the_answer_columns(
    tmp_path: Path,
) -> None:
    demo = build_factory_consortium(tmp_path / "c")
    datasets = {d.name: d for d in list_datasets(demo.consortium)}
    assert sorted(datasets) == sorted(f"{m}-log" for m in FACTORIES)
    columns = set(datasets["nagoya-plant-log"].schema)
    assert "Failure Type" not in columns and "Type" not in columns and "UDI" not in columns
    assert "Torque [Nm]" in columns
    scores = local_only(list(demo.sites.values()), TrainingSettings())
    overall = detection_metrics(combine(list(scores.values())))
    assert 0.5 < overall["roc_auc"] < 1.0  # type: ignore[operator]


def test_the_demo_s_factories_keep_type_and_sign_statistics_with_a_cap_and_a_cohort(
    tmp_path: Path,
) -> None:
    from kumiai.services.agreements import list_requests
    from kumiai.services.demo_industrial import KEPT
    from kumiai.services.industrial import THEME
    from kumiai.services.transparency import show_entries

    demo = build_factory_consortium(
        tmp_path / "c", epsilon_cap=3.0, ignore=KEPT, themed=True,
        job_kinds="train,evaluate,statistics", min_cohort=20,
    )  # fmt: skip
    schema = {d.name: d.schema for d in list_datasets(demo.consortium)}
    assert all("Type" in s and "Failure Type" not in s for s in schema.values())
    [themed] = show_entries(demo.consortium, kind="project.themed")
    assert themed.payload["theme"] == THEME[0] and themed.payload["project"] == demo.project
    requests = list_requests(demo.consortium, demo.project)
    assert len(requests) == len(FACTORIES)
    for request in requests:
        assert request.status == "signed" and request.epsilon_cap == 3.0
        assert request.job_kinds == ("train", "evaluate", "statistics")
        assert request.min_cohort == 20
