"""The agent benchmark's pieces at a small size: synthetic users, one round, the yardstick."""

from pathlib import Path

import numpy as np

from kumiai.benchmarks.agent import _enrol_synthetic, _one_round
from kumiai.domain.cross_device import CrossDeviceSettings
from kumiai.domain.ratings import resample_users, temporal_split
from kumiai.services.agent import centralized, population
from tests.agent.conftest import synthetic_table


def test_synthetic_users_are_copies_of_real_ones_with_their_split() -> None:
    table = synthetic_table()
    split = temporal_split(table)
    synthetic, resplit = resample_users(table, split, 50, seed=1)
    assert synthetic.n_users == 50 and synthetic.user_ids[0] == "synthetic-0"
    assert synthetic.source == "50 synthetic users resampled from synthetic"
    assert len(resplit.train) + len(resplit.test) == len(synthetic.rating)
    # every synthetic user's test ratings are later than their training ratings
    for user in range(50):
        train_t = synthetic.time[resplit.train][synthetic.user[resplit.train] == user]
        test_t = synthetic.time[resplit.test][synthetic.user[resplit.test] == user]
        assert len(train_t) == 9 and len(test_t) == 3 and train_t.max() <= test_t.min()


def test_one_round_with_every_synthetic_device(tmp_path: Path) -> None:
    folder = str(tmp_path / "scale")
    assert _enrol_synthetic(folder, 20) > 0
    assert population(Path(folder)) == 20
    figures = _one_round(folder)
    assert figures["took_part"] == 20 and figures["peak_rss_mb"] > 0 and figures["seconds"] > 0


def test_the_centralized_yardstick_fits_better_than_the_prior() -> None:
    table = synthetic_table()
    split = temporal_split(table)
    settings = CrossDeviceSettings(factors=2, l2_user=1.0, l2_item=1.0)
    metrics = centralized(table, split, settings)
    prior = float(np.sqrt(np.mean((3.5 - table.rating[split.test]) ** 2)))
    assert metrics["rmse"] < prior - 0.3
    assert 0.0 <= metrics["ndcg_at_10"] <= 1.0 and 0.0 <= metrics["hit_rate_at_10"] <= 1.0
