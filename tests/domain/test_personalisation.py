"""The personalisation rule and sites_gaining, on hand-made values."""

from datetime import timedelta

import pytest

from kumiai.domain import keys
from kumiai.domain.contribution_charge import CONTRIBUTION, ReleasedRun
from kumiai.domain.job import JobKind
from kumiai.domain.personalisation import (
    DEFAULT_EPOCHS,
    MAX_EPOCHS,
    PERSONALISATION,
    agreement_refusal,
    charge_for,
    earlier_steps,
    model_refusal,
    sites_gaining,
    steps_per_epoch,
)
from kumiai.domain.privacy import epsilon_for
from kumiai.domain.training import TrainingSettings
from tests.conftest import NOW, signed

PLAIN = TrainingSettings(rounds=5)


@pytest.mark.parametrize("epochs", [1, DEFAULT_EPOCHS, MAX_EPOCHS])
def test_a_model_trained_without_dp_may_be_fine_tuned_for_1_to_max_epochs(epochs: int) -> None:
    assert model_refusal("heart-v1", PLAIN, epochs) is None


@pytest.mark.parametrize("epochs", [0, -1, MAX_EPOCHS + 1])
def test_too_few_or_too_many_epochs_are_refused(epochs: int) -> None:
    assert model_refusal("heart-v1", PLAIN, epochs) == (
        f"personalisation runs 1 to 20 local epochs, not {epochs}; more would forget what "
        "the federation learnt (try the default, 5)"
    )


@pytest.mark.parametrize(
    "private", [TrainingSettings(epsilon=1.0), TrainingSettings(noise_multiplier=1.0)]
)
def test_a_record_level_dp_model_may_be_fine_tuned(private: TrainingSettings) -> None:
    assert model_refusal("heart-v2", private, 5) is None


def test_a_client_level_dp_model_is_refused() -> None:
    client = TrainingSettings(epsilon=1.0, dp_level="client")
    assert model_refusal("heart-v3", client, 5) == (
        "model heart-v3 was trained under client-level differential privacy, whose noise the "
        "coordinator added; no node holds a σ to fine-tune it under, so personalising it is "
        "refused (personalise a model trained with record-level DP-SGD or without DP)"
    )


def _check(agreement, key, **changes):  # type: ignore[no-untyped-def]
    context = {
        "project": "heart",
        "dataset": "cleveland-heart",
        "steward": "cleveland",
        "steward_keys": (keys.public_key_b64(key),),
        "revoked": frozenset(),
        "now": NOW,
    }
    context.update(changes)
    return agreement_refusal(agreement, **context)


def test_a_plain_signed_agreement_allows_it(steward_key) -> None:  # type: ignore[no-untyped-def]
    assert _check(signed(steward_key), steward_key) is None


def test_the_node_refuses_without_a_valid_current_agreement(steward_key) -> None:  # type: ignore[no-untyped-def]
    good = signed(steward_key)
    assert _check(None, steward_key) == (
        "no signed agreement for project 'heart' on dataset 'cleveland-heart'"
    )
    forged = signed(keys.new_private_key())
    assert _check(forged, steward_key) == "agreement agr-1 is not signed with cleveland's key"
    assert _check(good, steward_key, revoked=frozenset({"agr-1"})) == (
        "agreement agr-1 was revoked; ask the steward for a new one"
    )
    late = _check(good, steward_key, now=NOW + timedelta(days=31))
    assert late is not None and late.startswith("agreement agr-1 expired at ")


def test_the_node_refuses_terms_that_do_not_cover_it(steward_key) -> None:  # type: ignore[no-untyped-def]
    evaluate_only = signed(steward_key, job_kinds=(JobKind.EVALUATE,))
    assert "does not permit training" in (_check(evaluate_only, steward_key) or "")
    capped = signed(steward_key, epsilon_cap=3.0)
    assert _check(capped, steward_key) == (
        "agreement agr-1 requires differential privacy (ε cap 3), and personalisation "
        "fine-tunes without it"
    )
    # A DP model is fine-tuned with DP-SGD: the cap is then the spend log's to check.
    assert _check(capped, steward_key, private=True) is None
    for mode in ("dp", "forbidden"):
        reason = _check(signed(steward_key, aggregate_statistics=mode), steward_key)
        assert reason == (
            f"agreement agr-1 lets evaluation scores leave only as {mode!r}, so a "
            "personalised model's scores stay at home"
        )


def test_sites_gaining_counts_the_best_consortium_model_against_local() -> None:
    local = {"a": 0.80, "b": 0.90, "c": 0.70, "d": 0.60}
    federated = {"a": 0.85, "b": 0.88, "c": 0.69, "d": None}
    personalised = {"a": 0.70, "b": 0.90, "c": 0.65}
    # a: 0.85 ≥ 0.80; b: a tie (0.90) gains; c: 0.69 < 0.70; d: no defined score.
    assert sites_gaining(local, [federated, personalised]) == 2
    assert sites_gaining(local, [federated]) == 1
    assert sites_gaining(local, []) == 0
    assert sites_gaining({"a": None}, [{"a": 1.0}]) == 0  # undefined locally: not a gain
    assert sites_gaining({}, [federated]) == 0


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


def test_dp_fine_tuning_is_charged_the_increment_of_the_joint_composition() -> None:
    """The docstring's example: 60 steps trained, 5 epochs of 20 steps more."""
    assert steps_per_epoch(RUN) == 20
    charge = charge_for(RUN, 5)
    assert (charge.steps, charge.earlier_steps) == (100, 0)
    assert charge.epsilon_before == epsilon_for(1.1, 0.05, 60, 1e-5)
    assert charge.epsilon_after == epsilon_for(1.1, 0.05, 160, 1e-5)
    assert round(charge.epsilon_before, 2) == 2.34
    assert round(charge.epsilon_after, 2) == 3.57
    assert round(charge.extra, 2) == 1.23
    # Cheaper than a separate run of the same steps, which basic composition would add.
    assert charge.extra < epsilon_for(1.1, 0.05, 100, 1e-5)


def test_earlier_charges_against_the_job_are_composed_first() -> None:
    """Two fine-tunings of one job: the log's lines telescope to the joint composition."""
    first = charge_for(RUN, 5)
    logged = [
        {"kind": PERSONALISATION, "released_job": "job-1", "steps": first.steps},
        {"kind": CONTRIBUTION, "released_job": "job-1", "steps": 120},
        {"kind": PERSONALISATION, "released_job": "job-2", "steps": 999},  # another job
        {"rounds": 3, "steps_per_round": 20},  # the job's own reservation
    ]
    assert earlier_steps(logged, "job-1") == 220
    second = charge_for(RUN, 5, earlier_steps(logged, "job-1"))
    assert second.epsilon_before == epsilon_for(1.1, 0.05, 60 + 220, 1e-5)
    assert second.epsilon_after == epsilon_for(1.1, 0.05, 60 + 320, 1e-5)
    # Job, first charge, contribution and second charge add up to every step composed.
    contribution = epsilon_for(1.1, 0.05, 280, 1e-5) - first.epsilon_after
    total = first.epsilon_before + first.extra + contribution + second.extra
    assert total == pytest.approx(epsilon_for(1.1, 0.05, 380, 1e-5), rel=1e-12)


@pytest.mark.parametrize("epochs", [0, -2, True, 1.5])
def test_a_charge_needs_whole_epochs(epochs: object) -> None:
    with pytest.raises(ValueError, match="epochs must be a whole number of at least 1"):
        charge_for(RUN, epochs)  # type: ignore[arg-type]


def test_a_job_reserves_a_personalisation_slice_in_its_plan() -> None:
    """σ is calibrated for the rounds and the slice together: training plus fine-tuning
    within the slice spends at most the job's target."""
    from kumiai.domain.training import plan_privacy_for

    plain = TrainingSettings(rounds=10, epsilon=1.0, batch_size=32)
    sliced = TrainingSettings(rounds=10, epsilon=1.0, batch_size=32, personalisation_epochs=5)
    plan, per_round = plan_privacy_for(plain, 320)
    with_slice, per_round_too = plan_privacy_for(sliced, 320)
    assert per_round == per_round_too == 10
    assert (plan.steps, with_slice.steps) == (100, 150)
    assert with_slice.noise_multiplier > plan.noise_multiplier
    run = ReleasedRun(
        noise_multiplier=with_slice.noise_multiplier,
        sample_rate=with_slice.sample_rate,
        steps_per_round=per_round,
        rounds=10,
        trained=10,
        clipping_norm=1.0,
        delta=with_slice.delta,
        accountant="pld",
    )
    charge = charge_for(run, 5)
    assert charge.epsilon_after == pytest.approx(with_slice.epsilon, rel=1e-12)
    assert charge.epsilon_after <= 1.0


@pytest.mark.parametrize("epochs", [-1, 21, True])
def test_the_slice_is_0_to_20_epochs(epochs: object) -> None:
    from kumiai.domain.errors import InvalidInput

    with pytest.raises(
        InvalidInput, match=r"personalisation epochs \(--personalisation-epochs\) must be 0 to 20"
    ):
        TrainingSettings(personalisation_epochs=epochs)  # type: ignore[arg-type]


@pytest.mark.parametrize("mu", [-0.1, float("nan"), float("inf"), 1e4, True, "0.01"])
def test_a_proximal_pull_out_of_range_is_refused(mu: object) -> None:
    assert model_refusal("heart-v1", PLAIN, 5, mu) == (  # type: ignore[arg-type]
        f"the proximal pull (--proximal-mu) must be a number from 0 to 1000, not {mu!r} (try 0.01)"
    )


def test_a_proximal_fit_is_for_models_trained_without_dp() -> None:
    assert model_refusal("heart-v1", PLAIN, 5, 0.01) is None
    assert model_refusal("heart-v1", PLAIN, 5, 0.0) is None
    reason = model_refusal("heart-v2", TrainingSettings(epsilon=1.0), 5, 0.01)
    assert reason == (
        "model heart-v2 was trained under differential privacy; a proximal fit runs to the "
        "optimum without noise, so it is refused (leave out --proximal-mu: the nodes "
        "fine-tune it with DP-SGD epochs, charged in their spend logs)"
    )
