"""`kumiai contributions` on a model really trained through Flower: the shares are recorded
in the model's lineage and in a signed ledger entry that verifies; a DP model's plan names
the extra ε its nodes would charge, and writes nothing."""

import json
from pathlib import Path

import pytest

from kumiai.domain.training import TrainingSettings
from kumiai.services.models import model_detail
from kumiai.services.training import train
from kumiai.services.transparency import show_entries
from tests.interfaces.test_interrupted_job import kumiai
from tests.services.helpers import heart_consortium

pytestmark = pytest.mark.simulation


def test_contributions_of_a_trained_model_are_recorded_and_verify(tmp_path: Path) -> None:
    home = tmp_path / "c"
    consortium, _ = heart_consortium(home, plain_aggregation=True, contribution_analysis=True)
    plain = train(consortium, "heart", TrainingSettings(rounds=3, secure_aggregation=False))
    private = train(consortium, "heart", TrainingSettings(rounds=3, epsilon=8.0))

    shown = kumiai(home, "contributions", private.model_id, "--plan")
    assert shown.returncode == 0, shown.stderr
    assert "3 more DP-SGD runs per site, charged at each node first" in shown.stderr
    private_plan = json.loads(
        kumiai(home, "contributions", private.model_id, "--plan", "--json").stdout
    )
    assert private_plan["refusal"] is None
    assert all(e > 0 for e in private_plan["extra_epsilon"].values())
    assert show_entries(consortium, kind="model.contributions") == []
    assert show_entries(consortium, kind="privacy.charged") == []  # a plan charges nothing

    planned = kumiai(home, "contributions", plain.model_id, "--plan", "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["refusal"] is None and sorted(plan["members"]) == sorted(plain.sites)
    assert show_entries(consortium, kind="model.contributions") == []  # a plan writes nothing

    done = kumiai(home, "contributions", plain.model_id, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    shares = result["shares"]
    assert sorted(shares) == sorted(plain.sites)
    assert sum(shares.values()) == pytest.approx(result["v_all"] - result["v_empty"], abs=1e-9)
    [entry] = show_entries(consortium, kind="model.contributions")
    assert entry.payload["model"] == plain.model_id and entry.payload["shares"] == shares
    lineage = model_detail(consortium, plain.model_id).lineage
    assert lineage["contributions"]["shares"] == shares
    verified = kumiai(home, "ledger", "verify")
    assert verified.returncode == 0, verified.stderr
