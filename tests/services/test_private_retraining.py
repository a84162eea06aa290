"""Retraining a DP model's coalitions: DP-SGD with fresh noise at each site's own settings,
the released model for the grand coalition, and never a run the nodes did not pay for."""

from pathlib import Path

import numpy as np
import pytest

from kumiai.adapters.models.logistic import LogisticRegression
from kumiai.domain.contribution_charge import ReleasedRun
from kumiai.domain.errors import StateError
from kumiai.domain.training import TrainingSettings, plan_privacy_for
from kumiai.services.contribution import PrivateRetraining, coalition_utility, feature_plan
from tests.services.helpers import heart_consortium

HOSPITALS = ("cleveland-clinic", "hungarian-cardiology")
SETTINGS = TrainingSettings(rounds=2, epsilon=1.0)


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = Path(tmp_path_factory.mktemp("retraining")) / "c"
    consortium, _ = heart_consortium(home, hospitals=HOSPITALS)
    parts = {f"{h}-heart": consortium.node(h).split(f"{h}-heart", SETTINGS) for h in HOSPITALS}
    runs = {}
    for dataset, part in parts.items():
        plan, steps = plan_privacy_for(SETTINGS, len(part.train_labels))
        details = {**plan.as_dict(), "steps_per_round": steps, "rounds": SETTINGS.rounds}
        runs[dataset] = ReleasedRun.from_reservation(details, SETTINGS.rounds)
    return parts, runs


def utility(sites, paid: int, released: list):  # type: ignore[no-untyped-def]
    parts, runs = sites
    private = PrivateRetraining(runs, paid, released)
    return coalition_utility(
        parts, list(parts.values()), SETTINGS, feature_plan(parts), private=private
    )


def test_the_grand_coalition_is_the_released_model_never_retrained(sites) -> None:  # type: ignore[no-untyped-def]
    parts, _ = sites
    plan = feature_plan(parts)
    released = LogisticRegression(len(plan.feature_names), len(plan.classes)).arrays
    released[0] = released[0] + 0.01  # any model other than the untrained one
    v = utility(sites, paid=0, released=released)
    grand = v(frozenset(parts))
    v_again = utility(sites, paid=0, released=released)
    assert grand == v_again(frozenset(parts))  # the same parameters scored: no noise drawn
    assert v(frozenset()) == pytest.approx(0.5)


def test_each_retraining_draws_fresh_noise_and_stops_at_what_was_paid(sites) -> None:  # type: ignore[no-untyped-def]
    parts, _ = sites
    one = sorted(parts)[0]
    v = utility(sites, paid=1, released=[])
    first = v(frozenset({one}))
    with pytest.raises(
        StateError,
        match=f"retraining would run '{one}' 2 times, but its node was charged for 1 only",
    ):
        v(frozenset({one}))
    w = utility(sites, paid=1, released=[])
    assert w(frozenset({one})) != first  # OS entropy, not the job's seed: no two runs agree
    assert np.isfinite(first)
