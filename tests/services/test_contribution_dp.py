"""A model trained with DP-SGD: every node charges the extra ε itself before any retraining,
all or nothing; the shares add up, the charges show in each node's log and in `kumiai
budget`, and the ledger verifies."""

import json
from pathlib import Path

import pytest

from kumiai.domain.training import TrainingSettings
from kumiai.services.jobs import list_jobs
from kumiai.services.models import model_detail
from kumiai.services.training import train
from kumiai.services.transparency import show_entries
from tests.domain.test_contribution_charge import pld_epsilon
from tests.interfaces.test_interrupted_job import kumiai
from tests.services.helpers import heart_consortium, spend_records

pytestmark = pytest.mark.simulation


def owner(dataset: str) -> str:
    return dataset.removesuffix("-heart")


def test_a_dp_model_is_analysed_only_after_every_node_has_paid(tmp_path: Path) -> None:
    home = tmp_path / "c"
    consortium, _ = heart_consortium(home, epsilon_cap=10.0, contribution_analysis=True)
    model = train(consortium, "heart", TrainingSettings(rounds=3, epsilon=1.0))
    datasets = sorted(model.sites)
    assert len(datasets) == 3

    # The plan shows, per dataset, exactly what its node will charge: the PLD composition
    # of the job and 3 more runs (a site is in 4 of 8 coalitions), minus the job's ε.
    planned = kumiai(home, "contributions", model.model_id, "--plan", "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["refusal"] is None and plan["retrainings"] == 3
    for d in datasets:
        held = consortium.node(owner(d)).budget(d).jobs[model.job_id]
        sigma, q = held.details["noise_multiplier"], held.details["sample_rate"]
        steps, delta = 3 * held.details["steps_per_round"], held.details["delta"]
        expected = pld_epsilon(sigma, q, 4 * steps, delta) - pld_epsilon(sigma, q, steps, delta)
        assert plan["extra_epsilon"][d] == pytest.approx(expected, abs=1e-6)

    # All or nothing: the last node cannot pay, so nothing is retrained; the charges the
    # first two nodes recorded stay in their logs, and the message says so.
    last = datasets[-1]
    spent = consortium.node(owner(last)).budget(last).spent
    assert kumiai(home, "budget", "set", last, "--epsilon", f"{spent + 0.01}").returncode == 0
    logs = {d: spend_records(consortium, owner(d)) for d in datasets}
    refused = kumiai(home, "contributions", model.model_id)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    message = " ".join(refused.stderr.split())
    assert f"the node of {last} refused its charge" in message, message
    assert "lifetime budget" in message and "stay recorded" in message
    assert show_entries(consortium, kind="model.contributions") == []
    assert spend_records(consortium, owner(last)) == logs[last]
    for d in datasets[:-1]:
        added = [r["kind"] for r in spend_records(consortium, owner(d))[len(logs[d]) :]]
        assert added == ["reserve", "spend", "release"]
    [failed] = [j for j in list_jobs(consortium) if j.kind == "contribution"]
    assert failed.status == "failed" and f"the node of {last} refused" in str(failed.error)

    assert kumiai(home, "budget", "set", last, "--epsilon", "50").returncode == 0
    done = kumiai(home, "contributions", model.model_id, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    shares = result["shares"]
    assert sorted(shares) == datasets
    assert sum(shares.values()) == pytest.approx(result["v_all"] - result["v_empty"], abs=1e-9)
    assert result["charged_epsilon"] == pytest.approx(plan["extra_epsilon"], abs=1e-9)
    lineage = model_detail(consortium, model.model_id).lineage
    assert lineage["contributions"]["charged_epsilon"] == result["charged_epsilon"]

    # Each node's log holds the charge; `kumiai budget` mirrors every node's log.
    budget = {b["dataset"]: b for b in json.loads(kumiai(home, "budget", "--json").stdout)}
    for d in datasets:
        view = consortium.node(owner(d)).budget(d)
        assert view.jobs[result["job"]].spent == pytest.approx(result["charged_epsilon"][d])
        assert budget[d]["spent"] == pytest.approx(view.spent, abs=1e-9)
        assert budget[d]["committed"] == 0
    charges = show_entries(consortium, kind="privacy.charged")
    assert len(charges) == 2 + 3 and {e.actor for e in charges} == {owner(d) for d in datasets}
    verified = kumiai(home, "ledger", "verify")
    assert verified.returncode == 0, verified.stderr
