"""The node pays for a DP model's contribution analysis itself, or refuses and pays nothing.

The released job's reservation is written into the node's spend log here as the node's
worker writes it (no Flower needed): σ, q and steps from the node's own plan.
"""

from datetime import timedelta
from pathlib import Path

import pytest

from kumiai.domain.budget import RESERVE, SPEND
from kumiai.domain.clock import utc_now
from kumiai.domain.training import TrainingSettings, plan_privacy_for
from kumiai.node import charging
from kumiai.node.home import NodeHome
from kumiai.node.spendlog import SpendLog
from kumiai.services.agreements import revoke_agreement
from kumiai.services.consortium import Consortium
from tests.domain.test_contribution_charge import pld_epsilon
from tests.services.helpers import heart_consortium, spend_records

MEMBER = "cleveland-clinic"
DATASET = f"{MEMBER}-heart"
SETTINGS = TrainingSettings(rounds=3, epsilon=1.0)


def released(consortium: Consortium, job: str = "job-released", rounds: int = 3) -> dict:
    """Write a DP job's reservation and rounds into the node's log, as its worker does."""
    node = consortium.node(MEMBER)
    rows = len(node.split(DATASET, SETTINGS).train_labels)
    plan, steps = plan_privacy_for(SETTINGS, rows)
    details = {**plan.as_dict(), "steps_per_round": steps, "rounds": SETTINGS.rounds}
    log = SpendLog(NodeHome(Path(node.address)), DATASET)
    assert log.reserve(
        job=job,
        project="heart",
        planned=plan.epsilon,
        delta=plan.delta,
        agreement_cap=None,
        details=details,
    ).allowed
    for trained in range(1, rounds + 1):
        spent = pld_epsilon(plan.noise_multiplier, plan.sample_rate, trained * steps, plan.delta)
        log.spend(job=job, round_=trained, epsilon=spent)
    log.release(job)
    return details


def charge(consortium: Consortium, retrainings: int = 3, **overrides: str) -> tuple:
    asked = {
        "project": "heart",
        "model": "heart-v1",
        "released_job": "job-released",
        "charge_id": "contrib-1",
    }
    return consortium.node(MEMBER).charge_contribution(
        DATASET, retrainings=retrainings, **{**asked, **overrides}
    )


@pytest.fixture(scope="module")
def consenting(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    home = tmp_path_factory.mktemp("charging") / "c"
    consortium, _ = heart_consortium(
        home, hospitals=(MEMBER,), epsilon_cap=5.0, contribution_analysis=True
    )
    released(consortium)
    return consortium


def test_the_node_charges_the_joint_composition_minus_the_job_once(
    consenting: Consortium,
) -> None:
    d = released(consenting, job="job-released-2")
    before = spend_records(consenting, MEMBER)
    allowed, reason, epsilon = consenting.node(MEMBER).charge_contribution(
        DATASET,
        project="heart",
        model="heart-v2",
        released_job="job-released-2",
        retrainings=3,
        charge_id="contrib-exact",
    )
    steps = d["steps_per_round"] * 3
    sigma, q, delta = d["noise_multiplier"], d["sample_rate"], d["delta"]
    expected = pld_epsilon(sigma, q, 4 * steps, delta) - pld_epsilon(sigma, q, steps, delta)
    assert allowed, reason
    assert epsilon == pytest.approx(expected, abs=1e-6)
    added = spend_records(consenting, MEMBER)[len(before) :]
    assert [(r["kind"], r["job"]) for r in added] == [
        (RESERVE, "contrib-exact"),
        (SPEND, "contrib-exact"),
    ]
    assert added[1]["epsilon"] == epsilon and added[0]["details"]["rounds"] == 0
    assert consenting.node(MEMBER).budget(DATASET).jobs["contrib-exact"].spent == epsilon
    # A retry with the same charge id charges nothing more.
    again = consenting.node(MEMBER).charge_contribution(
        DATASET,
        project="heart",
        model="heart-v2",
        released_job="job-released-2",
        retrainings=3,
        charge_id="contrib-exact",
    )
    assert again[0] and again[2] == epsilon and "already charged" in again[1]
    assert len(spend_records(consenting, MEMBER)) == len(before) + 2


def refused(consortium: Consortium, match: str, **kwargs) -> None:  # type: ignore[no-untyped-def]
    before = spend_records(consortium, MEMBER)
    allowed, reason, _ = charge(consortium, **kwargs)
    assert not allowed and match in reason, reason
    assert spend_records(consortium, MEMBER) == before


def test_a_job_that_never_trained_here_is_not_charged(consenting: Consortium) -> None:
    refused(
        consenting,
        "job job-elsewhere of project 'heart' never trained",
        released_job="job-elsewhere",
    )
    refused(consenting, "no signed agreement for project 'other'", project="other")
    # A charge is no released job either: it trained no round.
    assert charge(consenting, retrainings=1)[0]
    refused(consenting, "never trained", released_job="contrib-1", charge_id="contrib-2")
    refused(consenting, "contrib-1 already names another use", released_job="job-released-2")


def test_the_node_refuses_without_the_term(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=(MEMBER,), epsilon_cap=5.0)
    released(consortium)
    refused(consortium, "does not carry the contribution_analysis term")


def test_the_node_refuses_under_a_revoked_or_expired_agreement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    consortium, _ = heart_consortium(
        tmp_path / "c", hospitals=(MEMBER,), epsilon_cap=5.0, contribution_analysis=True
    )
    released(consortium)
    later = utc_now() + timedelta(days=31)
    monkeypatch.setattr(charging, "utc_now", lambda: later)
    refused(consortium, "expired at")
    monkeypatch.undo()
    [agreement] = NodeHome(Path(consortium.node(MEMBER).address)).agreements()
    revoke_agreement(consortium, agreement.terms.agreement_id, "withdrawn")
    refused(consortium, "was revoked")


def test_the_node_refuses_over_its_cap_or_its_lifetime_budget(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(
        tmp_path / "c", hospitals=(MEMBER,), epsilon_cap=1.5, contribution_analysis=True
    )
    released(consortium)
    refused(consortium, "the agreement caps project 'heart' at ε=1.5")
    consortium, _ = heart_consortium(
        tmp_path / "d", hospitals=(MEMBER,), epsilon_cap=50.0, contribution_analysis=True
    )
    released(consortium)
    consortium.node(MEMBER).set_budget(DATASET, 1.5)
    refused(consortium, "of the dataset's lifetime budget ε=1.5 is left")
