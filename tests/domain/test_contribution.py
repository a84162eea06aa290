"""Shapley shares on synthetic games: efficiency, symmetry, null player, brute force."""

import itertools
import math
import statistics

import numpy as np
import pytest

from kumiai.domain.contribution import (
    CountingUtility,
    edge_covariate,
    edge_spreads,
    exact_shapley,
    kernel_shapley,
    neyman_weights,
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


@pytest.mark.parametrize("estimator", [stratified_shapley, sampled_shapley, kernel_shapley])
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


# Synthetic games whose Shapley values are known in closed form, none of them the benchmark.


def interaction_game(seed: int, n: int = 10):  # type: ignore[no-untyped-def]
    """Additive + pairwise + three-way terms: φ_i = a_i + Σ b_ij / 2 + Σ c_ijk / 3."""
    rng = np.random.default_rng(seed)
    names = [f"m{i}" for i in range(n)]
    a = dict(zip(names, rng.normal(0.05, 0.03, n), strict=True))
    b = {p: rng.normal(0, 0.02) for p in itertools.combinations(names, 2)}
    c = {t: rng.normal(0, 0.01) for t in itertools.combinations(names, 3)}

    def v(s: frozenset[str]) -> float:
        return (
            sum(a[m] for m in s)
            + sum(x for p, x in b.items() if set(p) <= s)
            + sum(x for t, x in c.items() if set(t) <= s)
        )

    known = {
        m: a[m]
        + sum(x for p, x in b.items() if m in p) / 2
        + sum(x for t, x in c.items() if m in t) / 3
        for m in names
    }
    return names, v, known


def voting_game(weights: dict[str, int]):  # type: ignore[no-untyped-def]
    """A weighted majority: a coalition wins (1) with more than half the weight."""
    quota = sum(weights.values()) // 2 + 1
    return lambda s: float(sum(weights[m] for m in s) >= quota)


def pearson(a: dict[str, float], b: dict[str, float]) -> float:
    names = sorted(a)
    return float(np.corrcoef([a[n] for n in names], [b[n] for n in names])[0, 1])


def test_the_interaction_game_has_the_values_it_claims() -> None:
    names, v, known = interaction_game(0, n=6)
    assert exact_shapley(names, v).shares == pytest.approx(known, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_stratified_is_efficient_exactly(seed: int) -> None:
    names, v, _ = interaction_game(seed)
    result = stratified_shapley(names, v, budget=102, seed=seed)
    assert math.fsum(result.shares.values()) == pytest.approx(
        v(frozenset(names)) - v(frozenset()), abs=1e-12
    )


def test_stratified_is_unbiased_on_a_game_with_known_values() -> None:
    names, v, known = interaction_game(7)
    runs = [stratified_shapley(names, v, budget=102, seed=s) for s in range(60)]
    for name in names:  # the mean over seeds sits on the known value
        assert statistics.fmean(r.shares[name] for r in runs) == pytest.approx(
            known[name], abs=0.003
        )
    pearsons = [pearson(r.shares, known) for r in runs]
    assert statistics.fmean(pearsons) >= 0.99 and min(pearsons) >= 0.97


def test_stratified_standard_errors_cover_the_error() -> None:
    names, v, known = interaction_game(11)
    z = [
        (r.shares[m] - known[m]) / r.standard_errors[m]
        for r in (stratified_shapley(names, v, budget=102, seed=s) for s in range(40))
        for m in names
    ]
    assert 0.85 <= sum(abs(x) < 2 for x in z) / len(z) <= 1.0


def test_symmetric_members_get_equal_shares_on_average_and_a_null_player_none() -> None:
    weights = {f"m{i}": 0.1 * (i + 1) for i in range(8)} | {"twin-a": 0.5, "twin-b": 0.5}
    weights["null"] = 0.0
    v = saturating_game(weights)
    runs = [stratified_shapley(weights, v, budget=204, seed=s) for s in range(40)]
    twins = [r.shares["twin-a"] - r.shares["twin-b"] for r in runs]
    assert abs(statistics.fmean(twins)) <= 0.001
    nulls = [r.shares["null"] for r in runs]
    assert abs(statistics.fmean(nulls)) <= 0.001
    # The null player's estimate is only sampling noise: within 4 standard errors.
    assert all(abs(r.shares["null"]) <= 4 * r.standard_errors["null"] + 1e-9 for r in runs)


def test_weighted_voting_ranks_the_heavy_members_first() -> None:
    weights = {"big": 9, "mid-1": 5, "mid-2": 5, "small-1": 2, "small-2": 2, "small-3": 1}
    weights |= {f"dummy-{i}": 0 for i in range(4)}  # null players: never pivotal
    v = voting_game(weights)
    exact = exact_shapley(weights, v, limit=10).shares
    runs = [stratified_shapley(weights, v, budget=102, seed=s) for s in range(20)]
    assert statistics.fmean(pearson(r.shares, exact) for r in runs) >= 0.85  # hard: 0/1 values
    for name in weights:
        assert statistics.fmean(r.shares[name] for r in runs) == pytest.approx(
            exact[name], abs=0.03
        )


@pytest.mark.parametrize("estimator", [stratified_shapley, kernel_shapley])
@pytest.mark.parametrize("n", [9, 10, 12])
def test_the_budget_is_never_exceeded(estimator, n: int) -> None:  # type: ignore[no-untyped-def]
    names, v, _ = interaction_game(n, n=n)
    for budget in sorted({2 * n + 2, 2 * n + 3, 50, 102, 2**n // 10, 2**n - 1}):
        calls: list[frozenset[str]] = []

        def counted(s: frozenset[str], calls: list[frozenset[str]] = calls) -> float:
            calls.append(s)
            return v(s)

        result = estimator(names, counted, budget=budget, seed=n)
        assert len(calls) == result.evaluations <= budget
        assert len(set(calls)) == len(calls)  # never the same coalition twice


@pytest.mark.parametrize("estimator", [stratified_shapley, kernel_shapley])
def test_a_budget_below_the_edges_is_refused_before_any_training(estimator) -> None:  # type: ignore[no-untyped-def]
    names, v, _ = interaction_game(0)
    calls: list[frozenset[str]] = []
    with pytest.raises(InvalidInput, match="needs a budget of 22"):
        estimator(names, lambda s: calls.append(s) or v(s), budget=21)
    assert calls == []


def test_a_budget_that_covers_every_coalition_is_exact() -> None:
    names, v, known = interaction_game(3, n=6)
    result = stratified_shapley(names, v, budget=64)
    assert result.method == "exact" and result.shares == pytest.approx(known, abs=1e-12)
    assert set(result.standard_errors.values()) == {0.0}


def test_the_spreads_are_read_off_the_full_sizes_alone() -> None:
    weights = {f"m{i}": float(i) for i in range(6)}
    v = CountingUtility(lambda s: sum(weights[m] for m in s) ** 2)
    spreads = edge_spreads(sorted(weights), v)
    total = sum(weights.values())
    first = statistics.pstdev(w**2 for w in weights.values())  # sizes 1: w_i²
    last = statistics.pstdev((total - w) ** 2 for w in weights.values())  # sizes n-1
    assert spreads == pytest.approx(
        {2: first + (last - first) / 4, 3: (first + last) / 2, 4: first + 3 * (last - first) / 4}
    )
    assert v.evaluations == 12  # sizes 1 and n-1 only: no sampled value sets the allocation


def test_an_additive_game_is_estimated_exactly_with_no_error() -> None:
    # The covariate x(S) = Σ u_j is then v(S) itself: the adjustment leaves no residual.
    gains = {f"m{i}": 0.01 * (i + 1) for i in range(10)}
    result = stratified_shapley(gains, lambda s: 0.5 + sum(gains[m] for m in s), budget=102)
    assert result.shares == pytest.approx(gains, abs=1e-12)
    assert max(result.standard_errors.values()) == pytest.approx(0.0, abs=1e-9)


def test_the_covariate_blends_the_gain_alone_and_the_gain_last() -> None:
    names = ["a", "b", "c", "d", "e"]
    alone = {"a": 0.3, "b": 0.2, "c": 0.2, "d": 0.1, "e": 0.0}  # v({j}) - v(∅)
    last = {"a": 0.1, "b": 0.1, "c": 0.0, "d": 0.0, "e": -0.1}  # v(all) - v(all \\ j)
    everyone = frozenset(names)
    values = {frozenset(): 0.5, everyone: 0.9}
    values |= {frozenset([j]): 0.5 + alone[j] for j in names}
    values |= {everyone - {j}: 0.9 - last[j] for j in names}
    assert edge_covariate(names, values, 1) == pytest.approx(alone)
    assert edge_covariate(names, values, 4) == pytest.approx(last)
    middle = edge_covariate(names, values, 2)  # a third of the way from size 1 to size 4
    assert middle == pytest.approx({j: alone[j] * 2 / 3 + last[j] / 3 for j in names})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_utility_that_is_not_a_finite_number_is_refused(bad: float) -> None:
    names, v, _ = interaction_game(0)
    poisoned = "m3"
    with pytest.raises(InvalidInput, match="not a finite number"):
        stratified_shapley(names, lambda s: bad if poisoned in s else v(s), budget=102)


def test_each_sampled_size_holds_every_member_evenly() -> None:
    names, v, _ = interaction_game(5)
    counted = CountingUtility(v)
    stratified_shapley(names, counted, budget=102, seed=5)
    for size in range(2, 9):
        drawn = [c for c in counted.cache if len(c) == size]
        holding = [sum(name in c for c in drawn) for name in names]
        # ⌊mk/n⌋ or ⌈mk/n⌉, one more or less where a chunk repeated a coalition
        assert max(holding) - min(holding) <= 2, (size, holding)
        assert all(0 < h < len(drawn) for h in holding)  # every member in and out


def test_neyman_weights_favour_the_sizes_that_vary_and_starve_none() -> None:
    # A size k is sampled in proportion to σ_k / sqrt(k(n-k)); a flat size keeps 5%.
    weights = neyman_weights(10, {2: 0.04, 3: 0.01, 5: 0.0})
    assert weights[2] == pytest.approx(0.04 / 4)
    assert weights[3] == pytest.approx(0.01 / math.sqrt(21))
    assert weights[5] == pytest.approx(0.002 / 5)  # the 5% floor, not zero
    assert neyman_weights(10, {2: 0.0, 5: 0.0}) == {2: 0.25, 5: 0.2}


def test_kernel_is_exact_on_an_additive_game() -> None:
    weights = {f"m{i}": 0.01 * (i + 1) for i in range(10)}
    v = lambda s: 0.5 + sum(weights[m] for m in s)  # noqa: E731
    result = kernel_shapley(weights, v, budget=50, seed=1)
    assert result.shares == pytest.approx(weights, abs=1e-12)
    assert result.evaluations <= 50


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
