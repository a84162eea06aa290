"""Each member's share of a model's value: Shapley values over members, exact or sampled.

Pure arithmetic over a utility callable v(S) -> float (S a coalition of member names), so
the same code serves property tests on synthetic games and the retraining service. Every
distinct coalition is evaluated once (cached) and counted: evaluations are the cost, since
each one is a model trained by that coalition.

Convention: v(∅) is the utility of the untrained model every job starts from, so the
shares add up to v(all) - v(∅), the value the federation added (efficiency).
"""

import math
import random
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kumiai.domain.errors import InvalidInput

Coalition = frozenset[str]
Utility = Callable[[Coalition], float]

MAX_EXACT = 8  # 2^8 = 256 coalitions; beyond, sampling


class CountingUtility:
    """v(S), each coalition evaluated once; `evaluations` counts the distinct ones."""

    def __init__(self, utility: Utility) -> None:
        self._utility = utility
        self.cache: dict[Coalition, float] = {}

    def __call__(self, coalition: Iterable[str]) -> float:
        key = frozenset(coalition)
        if key not in self.cache:
            self.cache[key] = float(self._utility(key))
        return self.cache[key]

    @property
    def evaluations(self) -> int:
        return len(self.cache)


@dataclass(frozen=True)
class Shares:
    """Shapley shares and how they were obtained."""

    shares: dict[str, float]
    empty: float  # v(∅), the untrained model
    grand: float  # v(all members)
    evaluations: int  # distinct coalitions evaluated, ∅ and the grand coalition included
    method: str  # "exact" | "sampled"
    standard_errors: dict[str, float] = field(default_factory=dict)  # zero when exact
    permutations: int = 0  # sampled only

    def as_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "shares": self.shares,
            "standard_errors": self.standard_errors,
            "v_empty": self.empty,
            "v_all": self.grand,
            "evaluations": self.evaluations,
            "permutations": self.permutations,
        }


def _members(members: Iterable[str]) -> list[str]:
    names = sorted(set(members))
    if not names:
        raise InvalidInput("a contribution needs at least one member")
    return names


def exact_shapley(members: Iterable[str], utility: Utility, *, limit: int = MAX_EXACT) -> Shares:
    """Every coalition: φ_i = Σ_S |S|!(n-|S|-1)!/n! · (v(S ∪ i) - v(S)). 2^n evaluations."""
    names = _members(members)
    n = len(names)
    if n > limit:
        raise InvalidInput(
            f"exact Shapley over {n} members needs {2**n} coalitions; above {limit} members "
            "use the sampled estimate"
        )
    v = CountingUtility(utility)
    values = [v(name for bit, name in enumerate(names) if mask >> bit & 1) for mask in range(2**n)]
    weight = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    shares = dict.fromkeys(names, 0.0)
    for mask in range(2**n):
        size = mask.bit_count()
        for bit, name in enumerate(names):
            if not mask >> bit & 1:
                shares[name] += weight[size] * (values[mask | 1 << bit] - values[mask])
    return Shares(
        shares=shares,
        empty=values[0],
        grand=values[-1],
        evaluations=v.evaluations,
        method="exact",
        standard_errors=dict.fromkeys(names, 0.0),
    )


def _walk(order: list[str], v: CountingUtility, grand: float, cutoff: float) -> dict[str, float]:
    """Marginal contributions along one ordering, truncated once the prefix is worth v(all)."""
    marginals = dict.fromkeys(order, 0.0)
    previous = v(())
    for position, name in enumerate(order):
        if abs(grand - previous) <= cutoff:
            break  # the rest add (about) nothing: no more coalitions trained for this order
        current = grand if position == len(order) - 1 else v(order[: position + 1])
        marginals[name] = current - previous
        previous = current
    return marginals


def sampled_shapley(
    members: Iterable[str],
    utility: Utility,
    *,
    budget: int,
    seed: int = 0,
    tolerance: float = 0.0,
    truncation: float = 0.0,
) -> Shares:
    """Truncated Monte Carlo over antithetic pairs of orderings, with a stopping rule.

    Each step walks a random ordering and its reverse (antithetic: a member early in one
    is late in the other, which cancels much of the variance) and averages the two. It
    stops when the next pair might exceed `budget` distinct coalitions, or when every
    member's standard error is below `tolerance` x |v(all) - v(∅)|. A walk stops early
    once the prefix is within `truncation` x |v(all) - v(∅)| of v(all) (TMC-Shapley).
    The standard error is that of the mean over pairs.
    """
    names = _members(members)
    n = len(names)
    v = CountingUtility(utility)
    empty, grand = v(()), v(names)
    if budget < 2:
        raise InvalidInput("a sampled estimate needs a budget of at least 2 coalitions")
    scale = abs(grand - empty) or 1.0
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {name: [] for name in names}
    worst_pair = 2 * max(n - 1, 0)  # new coalitions one pair can need; ∅ and all are known
    while v.evaluations + worst_pair <= budget or not samples[names[0]]:
        order = names[:]
        rng.shuffle(order)
        forward = _walk(order, v, grand, truncation * scale)
        backward = _walk(order[::-1], v, grand, truncation * scale)
        for name in names:
            samples[name].append((forward[name] + backward[name]) / 2)
        pairs = len(samples[names[0]])
        if pairs >= 3 and tolerance > 0:
            worst = max(statistics.stdev(s) / math.sqrt(pairs) for s in samples.values())
            if worst <= tolerance * scale:
                break
    pairs = len(samples[names[0]])
    return Shares(
        shares={name: statistics.fmean(s) for name, s in samples.items()},
        empty=empty,
        grand=grand,
        evaluations=v.evaluations,
        method="sampled",
        standard_errors={
            name: statistics.stdev(s) / math.sqrt(pairs) if pairs > 1 else 0.0
            for name, s in samples.items()
        },
        permutations=2 * pairs,
    )


def stratified_shapley(
    members: Iterable[str], utility: Utility, *, budget: int, seed: int = 0
) -> Shares:
    """Stratified SVARM (Kolpaczki et al., AAAI 2024): no marginal pairs needed.

    φ_i = 1/n Σ_k (mean v(S) over |S| = k+1, i ∈ S) - (mean v(S) over |S| = k, i ∉ S).
    Every coalition of size 0, 1, n-1 and n is evaluated (2n + 2): those strata carry
    most of the value when a member alone already makes a fair model. The rest of the
    budget samples sizes 2..n-2 in turn, and each sampled coalition informs every member,
    in or out (small sizes most often). Empty strata fall back to the stratum's overall
    mean (no difference).
    The estimate is shifted evenly so that it sums to v(all) - v(∅) (efficiency).
    """
    names = _members(members)
    n = len(names)
    if n <= 3 or 2**n <= budget:
        return exact_shapley(names, utility, limit=n)
    v = CountingUtility(utility)
    empty, grand = v(()), v(names)
    if budget < 2 * n + 2:
        raise InvalidInput(f"a stratified estimate over {n} members needs a budget of {2 * n + 2}")
    for name in names:
        v([name])
        v(other for other in names if other != name)
    rng = random.Random(seed)
    # Small coalitions get more of the budget (sizes 2 and 3: four and three turns per
    # cycle): there one member's marginal contribution varies most.
    turns = {k: {2: 4, 3: 3}.get(k, 1) for k in range(2, n - 1)}
    sizes = [k for cycle in range(4) for k in turns if turns[k] > cycle]
    turn, misses = 0, 0
    while v.evaluations < budget and misses < 100 * budget:
        size = sizes[turn % len(sizes)]
        before = v.evaluations
        v(rng.sample(names, size))
        misses += v.evaluations == before
        turn += v.evaluations > before
    # Per size k, v(S) of every evaluated coalition, split by whether it holds each member.
    by_size: dict[int, list[tuple[Coalition, float]]] = {}
    for coalition, value in v.cache.items():
        by_size.setdefault(len(coalition), []).append((coalition, value))
    shares: dict[str, float] = {}
    errors: dict[str, float] = {}
    for name in names:
        total, variance = 0.0, 0.0
        for k in range(n):
            inside = [val for c, val in by_size.get(k + 1, []) if name in c]
            outside = [val for c, val in by_size.get(k, []) if name not in c]
            fallback = statistics.fmean(val for _, val in by_size[k + 1] + by_size[k])
            for values, sign, stratum in ((inside, 1, k + 1), (outside, -1, k)):
                total += sign * (statistics.fmean(values) if values else fallback)
                if values and len(values) < math.comb(n - 1, stratum - (sign > 0)):
                    spread = statistics.pvariance(values) if len(values) > 1 else 0.0
                    variance += spread / len(values)
        shares[name] = total / n
        errors[name] = math.sqrt(variance) / n
    gap = (grand - empty - sum(shares.values())) / n
    return Shares(
        shares={name: share + gap for name, share in shares.items()},
        empty=empty,
        grand=grand,
        evaluations=v.evaluations,
        method="sampled",
        standard_errors=errors,
    )


def shapley(
    members: Iterable[str], utility: Utility, *, budget: int | None = None, seed: int = 0
) -> Shares:
    """Exact up to MAX_EXACT members; beyond, stratified within `budget` (default 10%)."""
    names = _members(members)
    if len(names) <= MAX_EXACT:
        return exact_shapley(names, utility)
    default = max(2 ** len(names) // 10, 4 * len(names))
    return stratified_shapley(names, utility, budget=budget or default, seed=seed)
