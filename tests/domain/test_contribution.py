"""Shapley shares on synthetic games: efficiency, symmetry, null player, brute force."""

import itertools
import math
import statistics

import numpy as np
import pytest

from kumiai.domain.contribution import (
    CountingUtility,
    exact_shapley,
    sampled_shapley,
    shapley,
    stratified_shapley,
)
from kumiai.domain.contribution_charge import charge_for
from kumiai.domain.contribution_rules import SiteTerms, plan_contribution
from kumiai.domain.errors import InvalidInput
from kumiai.domain.training import TrainingSettings
from tests.domain.test_contribution_charge import RUN


def brute_force(members: list[str], v) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The definition: the mean marginal contribution over every ordering."""
    totals = dict.fromkeys(members, 0.0)
    orders = list(itertools.permutations(members))
    for order in orders:
        for i, name in enumerate(order):
            totals[name] += v(frozenset(order[: i + 1])) - v(frozenset(order[:i]))
    return {name: total / len(orders) for name, total in totals.items()}


def saturating_game(weights: dict[str, float], empty: float = 0.5):  # type: ignore[no-untyped-def]
    """A model-like utility: diminishing returns in the weight of the coalition's data."""
    return lambda s: empty + 0.4 * (1 - math.exp(-sum(weights[m] for m in s)))


WEIGHTS = {"a": 1.0, "b": 0.5, "c": 0.5, "d": 0.0, "e": 2.0, "f": 0.2}


def test_exact_equals_brute_force_and_is_efficient() -> None:
    v = saturating_game(WEIGHTS)
    result = exact_shapley(WEIGHTS, v)
    expected = brute_force(sorted(WEIGHTS), v)
    assert result.shares == pytest.approx(expected, abs=1e-12)
    assert sum(result.shares.values()) == pytest.approx(v(frozenset(WEIGHTS)) - v(frozenset()))
    assert result.evaluations == 2 ** len(WEIGHTS)


def test_symmetric_members_get_equal_shares_and_a_null_player_none() -> None:
    result = exact_shapley(WEIGHTS, saturating_game(WEIGHTS))
    assert result.shares["b"] == pytest.approx(result.shares["c"])
    assert result.shares["d"] == pytest.approx(0.0, abs=1e-12)


def test_exact_refuses_beyond_its_limit_and_shapley_then_samples() -> None:
    weights = {f"m{i}": 0.1 * (i + 1) for i in range(10)}
    with pytest.raises(InvalidInput, match="sampled"):
        exact_shapley(weights, saturating_game(weights))
    result = shapley(weights, saturating_game(weights))
    assert result.method == "sampled" and result.evaluations <= 1024 // 10


def test_each_coalition_is_evaluated_once() -> None:
    calls: list[frozenset[str]] = []
    v = CountingUtility(lambda s: calls.append(s) or len(s))
    for _ in range(3):
        v({"a", "b"})
    assert v.evaluations == 1 and len(calls) == 1


@pytest.mark.parametrize("estimator", [stratified_shapley, sampled_shapley])
def test_sampled_estimates_are_close_to_exact_on_average(estimator) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    weights = {f"m{i}": float(w) for i, w in enumerate(rng.exponential(0.5, 10))}
    v = saturating_game(weights)
    exact = exact_shapley(weights, v, limit=10).shares
    runs = [estimator(weights, v, budget=102, seed=s) for s in range(20)]
    for name in weights:  # unbiased-ish: the mean over seeds sits near the exact value
        mean = statistics.fmean(r.shares[name] for r in runs)
        assert mean == pytest.approx(exact[name], abs=0.01)
    assert all(r.evaluations <= 102 for r in runs)
    if estimator is stratified_shapley:
        names = sorted(weights)
        pearson = np.corrcoef([runs[0].shares[n] for n in names], [exact[n] for n in names])
        assert pearson[0, 1] >= 0.95
        assert sum(runs[0].shares.values()) == pytest.approx(runs[0].grand - runs[0].empty)


def test_the_rule_refuses_a_singleton_reveal_without_consent_and_counts_extra_epsilon() -> None:
    settings = TrainingSettings(secure_aggregation=True)
    refused = plan_contribution(
        "m-v1", settings, {"a": SiteTerms("a", consents=False), "b": SiteTerms("b", consents=True)}
    )
    assert refused.refusal is not None and "a do not consent" in refused.refusal
    allowed = plan_contribution(
        "m-v1", settings, {"a": SiteTerms("a", consents=True), "b": SiteTerms("b", consents=True)}
    )
    assert allowed.refusal is None and allowed.coalitions == 4
    assert allowed.extra_epsilon == {"a": 0.0, "b": 0.0}
    consenting = {d: SiteTerms(d, True) for d in "abc"}
    unknown = plan_contribution("m-v1", TrainingSettings(epsilon=1.0), consenting)
    # Each site is in 4 of the 8 coalitions; the grand one was already paid for. Without the
    # node's record of its run, only basic composition can be shown, and nothing runs.
    assert unknown.retrainings == 3 and unknown.extra_epsilon == {d: 3.0 for d in "abc"}
    assert unknown.refusal is not None and "hold no record of the released job" in unknown.refusal
    runs = {d: RUN for d in "abc"}
    private = plan_contribution("m-v1", TrainingSettings(epsilon=1.0), consenting, runs)
    assert private.refusal is None
    assert private.extra_epsilon == {d: charge_for(RUN, 3).extra for d in "abc"}
    client = plan_contribution(
        "m-v1", TrainingSettings(epsilon=8.0, dp_level="client"), consenting, runs
    )
    assert client.refusal is not None and "client-level DP" in client.refusal
    adam = plan_contribution("m", TrainingSettings(strategy="fedadam"), {"a": SiteTerms("a", True)})
    assert adam.refusal is not None and "fedadam" in adam.refusal
