"""Each member's share of a model's value: Shapley values over members, exact or sampled.

Pure arithmetic over a utility callable v(S) -> float (S a coalition of member names), so
the same code serves property tests on synthetic games and the retraining service. Every
distinct coalition is evaluated once (cached) and counted: evaluations are the cost, since
each one is a model trained by that coalition.

Convention: v(∅) is the utility of the untrained model every job starts from, so the
shares add up to v(all) - v(∅), the value the federation added (efficiency).
"""

import itertools
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
            value = float(self._utility(key))
            if not math.isfinite(value):  # a NaN would pass through every mean into the ledger
                raise InvalidInput(
                    f"the utility of coalition {sorted(key)} is {value}, not a finite number; "
                    "check the metric and the test rows"
                )
            self.cache[key] = value
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


def edge_spreads(names: list[str], v: CountingUtility) -> dict[int, float]:
    """The spread of v at sizes 2..n-2, drawn as a straight line between sizes 1 and n-1.

    Those two sizes are evaluated in full, so the line is fixed by the game alone: no
    sampled value decides how the rest is sampled, which keeps every size's mean
    unbiased (an allocation set by a pilot's own values biases the pilot's means).
    """
    n = len(names)
    everyone = frozenset(names)
    first = statistics.pstdev(v([name]) for name in names)
    last = statistics.pstdev(v(everyone - {name}) for name in names)
    return {k: first + (last - first) * (k - 1) / (n - 2) for k in range(2, n - 1)}


def neyman_weights(n: int, spreads: dict[int, float]) -> dict[int, float]:
    """How much of the budget each size k deserves: σ_k / sqrt(k(n-k)).

    A member's share takes, from size k, the mean of v over the coalitions holding it
    (about k/n of those sampled) minus the mean over those without it ((n-k)/n of them),
    so its variance is Σ_k σ_k² n² / (m_k k (n-k)) / n²: m_k ∝ σ_k / sqrt(k(n-k)) minimises
    it for a fixed Σ m_k. A size predicted not to vary at all keeps a floor of 5% of the
    largest spread, so that no size is starved on a prediction alone.
    """
    floor = 0.05 * max(spreads.values(), default=0.0)
    if floor == 0:
        return {k: 1 / math.sqrt(k * (n - k)) for k in spreads}
    return {k: max(sigma, floor) / math.sqrt(k * (n - k)) for k, sigma in spreads.items()}


class _Stratum:
    """Distinct coalitions of one size, each uniform, members spread evenly among them.

    Coalitions are consecutive chunks of random orderings of the members (structured
    sampling, van Campen et al. 2018): after m draws of size k every member is in
    ⌊mk/n⌋ or ⌈mk/n⌉ of them. So each member soon has coalitions both with and without
    it at every size, and its estimate seldom falls back on the size's overall mean,
    which would bias it. A chunk already drawn is skipped.
    """

    def __init__(self, names: list[str], size: int, rng: random.Random) -> None:
        self.names, self.size, self.rng = names, size, rng
        self.capacity = math.comb(len(names), size)
        self.drawn: list[Coalition] = []
        self._seen: set[Coalition] = set()
        self._order: list[str] = []
        self._start = 0  # where the next chunk of the current ordering begins
        self._chunks = 0  # chunks left in the current ordering before it repeats

    @property
    def full(self) -> bool:
        return len(self.drawn) >= self.capacity

    def skip(self, coalition: Coalition) -> None:
        """Never draw this coalition (it is already known another way)."""
        self._seen.add(coalition)

    def _chunk(self) -> Coalition:
        n = len(self.names)
        if not self._chunks:
            self._order = self.rng.sample(self.names, n)
            self._chunks, self._start = n // math.gcd(n, self.size), 0
        chunk = frozenset(self._order[(self._start + j) % n] for j in range(self.size))
        self._start = (self._start + self.size) % n
        self._chunks -= 1
        return chunk

    def draw(self) -> Coalition:
        for _ in range(100):
            coalition = self._chunk()
            if coalition not in self._seen:
                break
        else:  # nearly exhausted, so small: pick among what is left
            left = [
                frozenset(c)
                for c in itertools.combinations(self.names, self.size)
                if frozenset(c) not in self._seen
            ]
            coalition = self.rng.choice(left)
        self._seen.add(coalition)
        self.drawn.append(coalition)
        return coalition


def stratified_shapley(
    members: Iterable[str], utility: Utility, *, budget: int, seed: int = 0
) -> Shares:
    """Stratified Shapley with Neyman allocation (at most `budget` coalitions).

    φ_i = 1/n Σ_k (mean v(S) over |S| = k+1, i ∈ S) - (mean v(S) over |S| = k, i ∉ S)
    (stratified SVARM, Kolpaczki et al., AAAI 2024): each evaluated coalition informs
    every member, in or out. Sizes 0, 1, n-1 and n are evaluated in full (2n + 2): one
    member alone is where marginal contributions differ most. Sizes 2..n-2 are sampled
    without replacement, one coalition at a time to the size furthest below its Neyman
    share (`neyman_weights`), with each size's spread read off the two full sizes
    (`edge_spreads`); members are spread evenly over each size's coalitions (`_Stratum`).
    Each member's mean over a sampled size is regression-adjusted on a covariate the full
    sizes give for every coalition (`edge_covariate`, `_stratified_estimate`). Nothing in
    it is tuned to a particular game.

    The standard error is analytic: per size, the residual variance of that adjustment
    divided by how many coalitions hold (or lack) the member, with the finite-population
    correction (0 where every coalition of that size was seen).
    The estimate is shifted evenly so that it sums to v(all) - v(∅) (efficiency).
    """
    names = _members(members)
    n = len(names)
    if n <= 3 or 2**n <= budget:
        return exact_shapley(names, utility, limit=n)
    if budget < 2 * n + 2:
        raise InvalidInput(f"a stratified estimate over {n} members needs a budget of {2 * n + 2}")
    v = CountingUtility(utility)
    empty, grand = v(()), v(names)
    for name in names:
        v([name])
        v(other for other in names if other != name)
    rng = random.Random(seed)
    strata = {k: _Stratum(names, k, rng) for k in range(2, n - 1)}
    weights = neyman_weights(n, edge_spreads(names, v))
    while v.evaluations < budget and not all(s.full for s in strata.values()):
        open_ = [k for k, s in strata.items() if not s.full]
        k = min(open_, key=lambda k: (len(strata[k].drawn) + 1) / weights[k])
        v(strata[k].draw())
    shares, errors = _stratified_estimate(names, v.cache)
    gap = (grand - empty - sum(shares.values())) / n
    return Shares(
        shares={name: share + gap for name, share in shares.items()},
        empty=empty,
        grand=grand,
        evaluations=v.evaluations,
        method="sampled",
        standard_errors=errors,
    )


def edge_covariate(names: list[str], values: dict[Coalition, float], size: int) -> dict[str, float]:
    """Each member's gain as the fully evaluated sizes show it, blended for one size.

    At size 1 the gain of j is v({j}) - v(∅); at size n-1 it is v(all) - v(all \\ j); a
    size in between takes the straight-line blend. x(S) = Σ_{j∈S} u_j is then known for
    every coalition without training it, and predicts v(S) within the size.
    """
    n = len(names)
    everyone = frozenset(names)
    empty, grand = values[frozenset()], values[everyone]
    t = (size - 1) / (n - 2)
    return {
        j: (1 - t) * (values[frozenset([j])] - empty) + t * (grand - values[everyone - {j}])
        for j in names
    }


@dataclass(frozen=True)
class _SizeFit:
    """One sampled size: v(S) ≈ α + β x(S), fitted over all its evaluated coalitions."""

    gains: dict[str, float]  # u_j for this size
    slope: float  # β, pooled over members
    residual_variance: float  # of v(S) - β x(S), for the standard error


def _fit_size(rows: list[tuple[Coalition, float]], gains: dict[str, float]) -> _SizeFit:
    """Least squares of v on x over one size's coalitions (no slope from two or fewer)."""
    xs = [sum(gains[j] for j in c) for c, _ in rows]
    ys = [val for _, val in rows]
    x_mean, y_mean = statistics.fmean(xs), statistics.fmean(ys)
    sxx = math.fsum((x - x_mean) ** 2 for x in xs)
    sxy = math.fsum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx if len(rows) > 2 and sxx > 0 else 0.0
    residuals = [y - y_mean - slope * (x - x_mean) for x, y in zip(xs, ys, strict=True)]
    spent = 2 if slope else 1  # degrees of freedom the fit used
    variance = (
        math.fsum(r * r for r in residuals) / (len(rows) - spent) if len(rows) > spent else 0.0
    )
    return _SizeFit(gains, slope, variance)


def _stratified_estimate(
    names: list[str], values: dict[Coalition, float]
) -> tuple[dict[str, float], dict[str, float]]:
    """Shares and standard errors from the evaluated coalitions, grouped by size.

    Each mean over a member's sampled coalitions of one size is regression-adjusted
    (Cochran, Sampling Techniques, ch. 7): ȳ + β (X - x̄), where x̄ is the mean of
    x(S) = Σ_{j∈S} u_j over those coalitions, X its mean over every coalition of that
    size holding (or lacking) the member, exact because x is additive, and β is the
    size's slope of v on x. If the sample happened to hold stronger members than the
    size does on average, the adjustment takes that back. Sizes evaluated in full need
    none. A size with no coalition holding (or lacking) a member falls back to the
    overall mean of sizes k and k+1: no difference, no variance counted.
    """
    n = len(names)
    by_size: dict[int, list[tuple[Coalition, float]]] = {}
    for coalition, value in values.items():
        by_size.setdefault(len(coalition), []).append((coalition, value))
    fits = {
        k: _fit_size(rows, edge_covariate(names, values, k))
        for k, rows in by_size.items()
        if len(rows) < math.comb(n, k)
    }
    shares: dict[str, float] = {}
    errors: dict[str, float] = {}
    for name in names:
        total, variance = 0.0, 0.0
        for k in range(n):
            pooled = [val for _, val in by_size.get(k + 1, []) + by_size.get(k, [])]
            fallback = statistics.fmean(pooled) if pooled else 0.0
            for size, sign in ((k + 1, 1), (k, -1)):
                holds = sign > 0
                sample = [(c, val) for c, val in by_size.get(size, []) if (name in c) == holds]
                if not sample:
                    total += sign * fallback
                    continue
                mean = statistics.fmean(val for _, val in sample)
                fit = fits.get(size)
                if fit is None:  # every coalition of this size was evaluated
                    total += sign * mean
                    continue
                u, others = fit.gains, sum(fit.gains.values()) - fit.gains[name]
                population = (
                    u[name] + (size - 1) * others / (n - 1) if holds else size * others / (n - 1)
                )
                sampled = statistics.fmean(sum(u[j] for j in c) for c, _ in sample)
                total += sign * (mean + fit.slope * (population - sampled))
                kept = 1 - len(sample) / math.comb(n - 1, k)  # finite population
                variance += fit.residual_variance / len(sample) * kept
        shares[name] = total / n
        errors[name] = math.sqrt(variance) / n
    return shares, errors


def kernel_shapley(
    members: Iterable[str], utility: Utility, *, budget: int, seed: int = 0
) -> Shares:
    """KernelSHAP with paired sampling (Covert & Lee, AISTATS 2021), for comparison.

    The Shapley values solve a weighted least squares: v(S) - v(∅) ≈ Σ_{i∈S} φ_i under
    the Shapley kernel, with Σ φ_i = v(all) - v(∅) as a constraint. Sizes 1 and n-1 are
    evaluated in full; the rest of the budget samples coalitions with their complements
    (paired), sizes in proportion to the kernel's mass, without replacement, each weighted
    by the kernel over its sampling fraction. Exact for additive games; on model-training
    utilities that saturate after one member it does worse than `stratified_shapley`
    (docs/contribution.md), so it is not the default. No standard error.
    """
    import numpy as np  # only when estimating; reading a share loads no NumPy

    names = _members(members)
    n = len(names)
    if n <= 3 or 2**n <= budget:
        return exact_shapley(names, utility, limit=n)
    if budget < 2 * n + 2:
        raise InvalidInput(f"a kernel estimate over {n} members needs a budget of {2 * n + 2}")
    v = CountingUtility(utility)
    everyone = frozenset(names)
    empty, grand = v(()), v(everyone)
    for name in names:
        v([name])
        v(everyone - {name})
    rng = random.Random(seed)
    # One stratum per pair of sizes (k, n-k); at k = n/2 a coalition and its complement
    # are of one size, so half as many pairs exist.
    strata = {k: _Stratum(names, k, rng) for k in range(2, n // 2 + 1)}
    pairs = {k: math.comb(n, k) // (2 if 2 * k == n else 1) for k in strata}
    mass = {k: (n - 1) / (k * (n - k)) * (1 if 2 * k == n else 2) for k in strata}
    while v.evaluations + 2 <= budget:
        open_ = [k for k in strata if len(strata[k].drawn) < pairs[k]]
        if not open_:
            break
        k = min(open_, key=lambda k: (len(strata[k].drawn) + 1) / mass[k])
        coalition = strata[k].draw()
        if 2 * k == n:
            strata[k].skip(everyone - coalition)  # its pair: never drawn twice
        v(coalition)
        v(everyone - coalition)

    def kernel(size: int) -> float:
        return (n - 1) / (math.comb(n, size) * size * (n - size))

    rows = [(c, kernel(len(c))) for c in v.cache if 0 < len(c) < n and len(c) in (1, n - 1)]
    for k, stratum in strata.items():
        weight = kernel(k) * pairs[k] / max(len(stratum.drawn), 1)  # over the sampled fraction
        for coalition in stratum.drawn:
            rows += [(coalition, weight), (everyone - coalition, weight)]
    Z = np.array([[name in c for name in names] for c, _ in rows], dtype=float)
    w = np.array([weight for _, weight in rows])
    total = grand - empty
    y = np.array([v(c) - empty for c, _ in rows]) - Z.sum(axis=1) * total / n
    centre = np.eye(n) - np.ones((n, n)) / n  # the constraint: Σ φ_i = total
    gram = centre @ Z.T @ (w[:, None] * Z) @ centre
    phi = centre @ np.linalg.lstsq(gram, centre @ Z.T @ (w * y), rcond=None)[0] + total / n
    return Shares(
        shares={name: float(x) for name, x in zip(names, phi, strict=True)},
        empty=empty,
        grand=grand,
        evaluations=v.evaluations,
        method="sampled",
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
