"""The node's audit figures and the empirical ε lower bound: exact counts, a bound that holds."""

import math
from datetime import timedelta

import numpy as np
import pytest

from kumiai.domain import keys
from kumiai.domain.job import JobKind
from kumiai.domain.model_audit import (
    LOSS_THRESHOLDS,
    audit_refusal,
    card_histograms,
    clopper_pearson,
    epsilon_lower_bound,
    group_histograms,
    loss_threshold_attack,
)
from tests.conftest import NOW, signed


def _attack(members: int, others: int, flagged: list[tuple[int, int]]) -> dict:  # type: ignore[type-arg]
    return {
        "members": members,
        "non_members": others,
        "thresholds": [
            {"loss_at_most": t, "members_flagged": tp, "non_members_flagged": fp}
            for t, (tp, fp) in zip(LOSS_THRESHOLDS, flagged, strict=False)
        ],
    }


def test_clopper_pearson_at_the_edges_and_a_known_value() -> None:
    assert clopper_pearson(0, 50, 0.05)[0] == 0.0
    assert clopper_pearson(50, 50, 0.05)[1] == 1.0
    # All n successes: the lower bound solves p^n = alpha.
    assert clopper_pearson(100, 100, 0.01)[0] == pytest.approx(0.01 ** (1 / 100))
    lower, upper = clopper_pearson(20, 100, 0.025)
    assert lower < 0.2 < upper
    assert (round(lower, 3), round(upper, 3)) == (0.127, 0.292)  # the two-sided 95% interval


def test_the_worked_example_of_the_module() -> None:
    attack = _attack(100, 100, [(100, 20)] + [(0, 0)] * 5)
    bound = epsilon_lower_bound(attack, delta=0.0)
    assert bound.epsilon == pytest.approx(2.407, abs=1e-3)
    assert (bound.threshold, bound.direction) == (0.01, "not flagged")


def test_an_attack_that_learns_nothing_proves_nothing() -> None:
    assert epsilon_lower_bound(_attack(200, 200, [(50, 50)] * 6), delta=1e-3).epsilon == 0.0
    assert epsilon_lower_bound(_attack(200, 200, [(0, 0)] * 6), delta=1e-3).epsilon == 0.0


def test_a_model_that_remembers_its_training_rows_gives_a_positive_bound() -> None:
    rng = np.random.default_rng(1)
    members = rng.exponential(0.005, 300)  # near-zero loss on every training row
    others = rng.exponential(0.7, 100)
    attack = loss_threshold_attack(members, others)
    assert attack["auc"] > 0.95
    assert epsilon_lower_bound(attack, delta=1e-4).epsilon > 1.0


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 2.0])
def test_the_bound_never_exceeds_epsilon_for_a_mechanism_exactly_at_epsilon(
    epsilon: float,
) -> None:
    """Randomised response is ε-DP and meets TPR = e^ε·FPR exactly: the tightest case."""
    flag_member = math.exp(epsilon) / (1 + math.exp(epsilon))
    n, exceeded, bounds = 5000, 0, []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        # loss 0 when the mechanism says "member", 10 otherwise: every threshold sees the same
        members = np.where(rng.random(n) < flag_member, 0.0, 10.0)
        others = np.where(rng.random(n) < 1 - flag_member, 0.0, 10.0)
        bound = epsilon_lower_bound(loss_threshold_attack(members, others), delta=0.0).epsilon
        bounds.append(bound)
        exceeded += bound > epsilon
    assert exceeded <= 1  # 95% confidence: at most one in twenty by chance, here none
    assert max(bounds) <= epsilon
    assert min(bounds) > 0.6 * epsilon  # and the audit is not vacuous: it gets close


def test_the_attack_counts_each_threshold_and_its_auc() -> None:
    attack = loss_threshold_attack(np.array([0.0, 0.05, 0.3, 2.0]), np.array([0.05, 0.6, 3.0]))
    assert (attack["members"], attack["non_members"]) == (4, 3)
    flagged = [(t["members_flagged"], t["non_members_flagged"]) for t in attack["thresholds"]]
    assert flagged == [(1, 0), (2, 1), (2, 1), (2, 1), (3, 1), (3, 2)]
    # member wins: 0.0 beats 3; 0.05 ties one, beats 2; 0.3 beats 2; 2.0 beats 1 → 8.5 / 12
    assert attack["auc"] == pytest.approx(8.5 / 12)


def test_histograms_have_ten_bins_by_label() -> None:
    h = card_histograms(np.array([0.05, 0.55, 0.95, 0.5, 1.0]), np.array([0, 1, 1, 0, 1]))
    assert h["positives"] == [0, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert h["negatives"] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]


def test_a_small_level_keeps_the_whole_breakdown_at_home() -> None:
    proba, labels = np.full(25, 0.7), np.array([1, 0] * 12 + [1])
    groups = np.array(["Male"] * 21 + ["Female"] * 4, dtype=object)
    kept, why = group_histograms(proba, labels, groups, floor=10)
    assert kept is None
    assert "fewer than 10 test rows (Female (4))" in why
    groups = np.array(["Male"] * 13 + ["Female"] * 11 + [None], dtype=object)
    kept, why = group_histograms(proba, labels, groups, floor=1)
    assert kept is not None and sorted(kept) == ["(missing)", "Female", "Male"]
    assert sum(kept["Male"]["positives"]) + sum(kept["Male"]["negatives"]) == 13


def test_the_audit_needs_a_standing_agreement_for_evaluation_with_exact_aggregates() -> None:
    key = keys.new_private_key()
    steward = (keys.public_key_b64(key),)
    where = {"project": "heart", "dataset": "cleveland-heart", "steward": "cleveland"}

    def refusal(agreement, revoked=frozenset()):  # type: ignore[no-untyped-def]
        return audit_refusal(agreement, **where, steward_keys=steward, revoked=revoked, now=NOW)

    assert refusal(signed(key)) is None
    assert "does not permit evaluation" in str(refusal(signed(key, job_kinds=(JobKind.TRAIN,))))
    assert "only as 'dp'" in str(refusal(signed(key, aggregate_statistics="dp")))
    assert "only as 'forbidden'" in str(refusal(signed(key, aggregate_statistics="forbidden")))
    assert "was revoked" in str(refusal(signed(key), frozenset({"agr-1"})))
    expired = signed(key, expires_at=NOW - timedelta(days=1))
    assert "expired" in str(refusal(expired))
    forged = signed(keys.new_private_key())
    assert "not signed with cleveland's key" in str(refusal(forged))
    assert "no signed agreement" in str(refusal(None))
