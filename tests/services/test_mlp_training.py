"""An MLP trains through the whole federation under record-level DP, as the logistic model does."""

from dataclasses import replace
from pathlib import Path

import pytest

from kumiai.domain.training import TrainingSettings, plan_privacy_for
from kumiai.node.worker import NodeWorker
from kumiai.services.models import list_models, load_model
from kumiai.services.training import train
from kumiai.services.transparency import show_entries
from tests.services.helpers import HOSPITALS, heart_consortium

pytestmark = pytest.mark.simulation

MLP_DP = TrainingSettings(
    model="mlp", hidden_units=16, rounds=3, learning_rate=0.05, epsilon=1.0, positive_weight=2.0
)


def test_a_private_mlp_job_is_accounted_as_a_logistic_one_and_released_as_an_mlp(
    tmp_path: Path,
) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", epsilon_cap=2.0)
    outcome = train(consortium, "heart", MLP_DP)
    assert sorted(outcome.sites) == sorted(f"{h}-heart" for h in HOSPITALS)
    assert outcome.overall["auc"] is not None and float(outcome.overall["auc"]) > 0.6
    for hospital in HOSPITALS:
        dataset = f"{hospital}-heart"
        rows = NodeWorker(consortium.member_home(hospital)).cohort(dataset, MLP_DP)[0]
        logistic_plan, _ = plan_privacy_for(replace(MLP_DP, model="logistic"), rows)
        # the same σ and ε as the logistic model's: the accounting never looks at the model
        assert outcome.planned[dataset]["noise_multiplier"] == logistic_plan.noise_multiplier
        assert 0 < outcome.epsilons[dataset] <= 1.0

    [model] = list_models(consortium, "heart")
    assert model.lineage["settings"]["model"] == "mlp"
    plan, fitted = load_model(consortium, model.id)
    assert [a.shape for a in fitted.arrays] == [(len(plan.feature_names), 16), (16,), (16, 1), (1,)]
    [started] = show_entries(consortium, kind="job.started")
    assert started.payload["document"]["job"]["settings"]["model"] == "mlp"
