"""The personalisation rule and sites_gaining, on hand-made values."""

from datetime import timedelta

import pytest

from kumiai.domain import keys
from kumiai.domain.job import JobKind
from kumiai.domain.personalisation import (
    DEFAULT_EPOCHS,
    MAX_EPOCHS,
    agreement_refusal,
    model_refusal,
    sites_gaining,
)
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
def test_a_private_model_is_refused(private: TrainingSettings) -> None:
    reason = model_refusal("heart-v2", private, 5)
    assert reason is not None
    assert reason.startswith("model heart-v2 was trained under differential privacy;")
    assert "personalising a private model is refused" in reason


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
