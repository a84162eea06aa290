"""Local and pooled yardsticks on real data, binary and multiclass, without Ray."""

from pathlib import Path

from kumiai.domain.metrics import combine
from kumiai.domain.training import TrainingSettings
from kumiai.services.baselines import Site, local_only, pooled, single_site
from kumiai.services.datasets import register_dataset
from tests.services.helpers import HOSPITALS, heart_consortium
from tests.services.majority import majority_rate


def test_pooling_beats_the_weakest_single_site(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", sign=())
    sites = [Site(consortium.node(h), f"{h}-heart") for h in HOSPITALS]
    settings = TrainingSettings(seed=3)
    together = combine(list(pooled(sites, settings).values()))
    singles = [combine(list(single_site(s, sites, settings).values())) for s in sites]
    assert together.examples == sum(s.examples for s in local_only(sites, settings).values())
    assert together.accuracy >= min(s.accuracy for s in singles)
    # About 0.82 against 0.505 over seeds 0-9; a majority-class predictor scores exactly 0.505.
    splits = [s.node.split(s.dataset, settings) for s in sites]
    assert together.accuracy >= majority_rate(splits) + 0.15
    assert 0.5 < (together.auc or 0) <= 1


def test_a_multiclass_target_trains_a_multinomial_model(tmp_path: Path) -> None:
    """Pooled over three hospitals: one hospital's 76 test rows are too few for a 5-class
    model to beat the majority class reliably (it does by 0.085 or more on 200 rows)."""
    consortium, _ = heart_consortium(tmp_path / "c", sign=())
    sites = []
    for hospital in HOSPITALS:
        register_dataset(
            consortium,
            member=hospital,
            file=tmp_path / "exports" / f"{hospital}.csv",
            name=f"{hospital}-severity",
            target="num",
            missing={"chol": ("0",)},
            ignore=("id",),
        )
        sites.append(Site(consortium.node(hospital), f"{hospital}-severity"))
    settings = TrainingSettings(seed=1)
    scores = pooled(sites, settings)
    assert all(s.hist_pos.shape[0] == 5 for s in scores.values())  # one-vs-rest, classes 0..4
    together = combine(list(scores.values()))
    splits = [s.node.split(s.dataset, settings) for s in sites]
    assert together.accuracy >= majority_rate(splits) + 0.05
    assert together.auc is not None
    assert set(splits[0].train_labels) == {"0", "1", "2", "3", "4"}
