"""The extra ε of retraining a DP model's coalitions, and when a node refuses to pay it."""

from dataclasses import replace
from datetime import timedelta

import dp_accounting
import pytest
from dp_accounting.pld import PLDAccountant

from kumiai.domain import keys
from kumiai.domain.agreement import AgreementTerms, sign_agreement
from kumiai.domain.clock import utc_now
from kumiai.domain.contribution_charge import (
    ReleasedRun,
    charge_for,
    charge_refusal,
    current_agreement,
)
from kumiai.domain.errors import InvalidInput
from kumiai.domain.job import JobKind

RUN = ReleasedRun(
    noise_multiplier=1.1,
    sample_rate=0.05,
    steps_per_round=20,
    rounds=3,
    trained=3,
    clipping_norm=1.0,
    delta=1e-5,
    accountant="pld",
)


def pld_epsilon(sigma: float, q: float, steps: int, delta: float) -> float:
    """dp_accounting called by hand, independently of the module under test."""
    accountant = PLDAccountant()
    accountant.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
        )
    )
    return float(accountant.get_epsilon(delta))


def test_the_charge_is_the_joint_pld_composition_minus_the_job() -> None:
    charge = charge_for(RUN, 3)
    job = pld_epsilon(1.1, 0.05, 60, 1e-5)
    total = pld_epsilon(1.1, 0.05, 240, 1e-5)  # h = 4 runs of 3 rounds × 20 steps
    assert charge.steps == 180
    assert charge.epsilon_job == pytest.approx(job, abs=1e-6)
    assert charge.epsilon_total == pytest.approx(total, abs=1e-6)
    assert charge.extra == pytest.approx(total - job, abs=1e-6)
    # Tighter than basic composition, which would charge 3 × ε_job.
    assert 0 < charge.extra < 3 * job
    assert charge_for(RUN, 0).extra == 0.0


def test_a_site_that_trained_fewer_rounds_is_charged_from_what_it_trained() -> None:
    short = replace(RUN, trained=2)
    charge = charge_for(short, 1)
    assert charge.epsilon_job == pytest.approx(pld_epsilon(1.1, 0.05, 40, 1e-5), abs=1e-6)
    assert charge.epsilon_total == pytest.approx(pld_epsilon(1.1, 0.05, 100, 1e-5), abs=1e-6)


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_retrainings_must_be_a_whole_number(bad: object) -> None:
    with pytest.raises(InvalidInput, match="retrainings must be a whole number"):
        charge_for(RUN, bad)  # type: ignore[arg-type]


def test_only_record_level_runs_are_charged() -> None:
    details = {**RUN.as_dict(), "level": "record"}
    assert ReleasedRun.from_reservation(details, 3) == RUN
    with pytest.raises(InvalidInput, match="client-level"):
        ReleasedRun.from_reservation({**details, "level": "client"}, 3)
    with pytest.raises(InvalidInput, match="record-level DP-SGD"):
        ReleasedRun.from_reservation({"rounds": 3}, 0)  # a job trained without DP


def _agreement(key, *, consent=True, expires_in=timedelta(days=1), signed_at=None, aid="agr-1"):  # type: ignore[no-untyped-def]
    now = utc_now()
    terms = AgreementTerms(
        agreement_id=aid,
        request_id="req-1",
        project="heart",
        dataset="st-mary-heart",
        steward="st-mary",
        purpose="diagnosis",
        job_kinds=(JobKind.TRAIN,),
        max_rounds=10,
        expires_at=now + expires_in,
        signed_at=signed_at or now,
        epsilon_cap=5.0,
        contribution_analysis=consent,
    )
    return sign_agreement(terms, key)


def test_the_node_refuses_without_a_current_consenting_agreement() -> None:
    key, other = keys.new_private_key(), keys.new_private_key()
    public = (keys.public_key_b64(key),)

    def refusal(agreement, revoked=frozenset()):  # type: ignore[no-untyped-def]
        return charge_refusal(
            agreement,
            project="heart",
            dataset="st-mary-heart",
            steward="st-mary",
            steward_keys=public,
            revoked=revoked,
            now=utc_now(),
        )

    assert refusal(_agreement(key)) is None
    assert "no signed agreement for project 'heart'" in str(refusal(None))
    assert "not signed with st-mary's key" in str(refusal(_agreement(other)))
    assert "agr-1 was revoked" in str(refusal(_agreement(key), frozenset({"agr-1"})))
    assert "agr-1 expired at" in str(refusal(_agreement(key, expires_in=timedelta(seconds=-1))))
    lacking = refusal(_agreement(key, consent=False))
    assert "does not carry the contribution_analysis term" in str(lacking)


def test_the_newest_agreement_for_the_project_and_dataset_is_the_current_one() -> None:
    key = keys.new_private_key()
    old = _agreement(key, signed_at=utc_now() - timedelta(days=2), aid="agr-old")
    new = _agreement(key, consent=False, aid="agr-new")
    assert current_agreement([new, old], project="heart", dataset="st-mary-heart") == new
    assert current_agreement([new, old], project="other", dataset="st-mary-heart") is None
