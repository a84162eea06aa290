"""Local and pooled yardsticks on real data, binary and multiclass, without Ray."""

from pathlib import Path

from kumiai.domain.metrics import combine
from kumiai.domain.training import TrainingSettings
from kumiai.services.baselines import Site, local_only, pooled, single_site
from kumiai.services.datasets import register_dataset
from kumiai.services.node import NodeWorker
from tests.services.helpers import HOSPITALS, heart_consortium


def test_pooling_beats_the_weakest_single_site(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", sign=())
    sites = [Site(consortium.member_home(h), f"{h}-heart") for h in HOSPITALS]
    settings = TrainingSettings(seed=3)
    together = combine(list(pooled(sites, settings).values()))
    singles = [combine(list(single_site(s, sites, settings).values())) for s in sites]
    assert together.examples == sum(s.examples for s in local_only(sites, settings).values())
    assert together.accuracy >= min(s.accuracy for s in singles)
    assert 0.5 < (together.auc or 0) <= 1


def test_a_multiclass_target_trains_a_multinomial_model(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=HOSPITALS[:1], sign=())
    exported = tmp_path / "exports" / f"{HOSPITALS[0]}.csv"
    register_dataset(
        consortium,
        member=HOSPITALS[0],
        file=exported,
        name="severity",
        target="num",
        missing={"chol": ("0",)},
        ignore=("id",),
    )
    site = Site(consortium.member_home(HOSPITALS[0]), "severity")
    settings = TrainingSettings(seed=1)
    [score] = local_only([site], settings).values()
    assert score.hist_pos.shape[0] == 5  # one-vs-rest histograms for classes 0..4
    assert score.accuracy > 0.4 and score.auc is not None
    split = NodeWorker(site.home).split("severity", settings)
    assert set(split.train_labels) == {"0", "1", "2", "3", "4"}
