"""Differential privacy plans and accounting: DP-SGD at each node, or client-level DP-FedAvg.

Each DP-SGD step Poisson-samples every row with probability q, clips each example's gradient
to norm C and adds Gaussian noise of standard deviation σ·C to the sum: a Poisson-subsampled
Gaussian mechanism with noise multiplier σ. A job is `steps` of those, composed. The ε that
composition spends is computed by Google's `dp_accounting` library rather than by our own
formulas, so the numbers a consortium relies on come from audited, widely used code.

Neighbouring datasets differ by adding or removing one row (the relation Poisson sampling
and dividing by the *expected* batch size are analysed under).

Client-level DP (DP-FedAvg, `plan_client_dp` in kumiai.domain.client_dp) is the other
level: each member's node clips its whole update to C and the coordinator adds Gaussian
noise σ·C to the sum once per round, so q = 1 and a job is `rounds` Gaussian releases.

Two accountants are offered. PLD (privacy loss distributions, the default) is numerically
tight; RDP (Rényi DP) is the older, looser bound kept for comparison with published results.

PLD discretisation: every ε kumiai reports or records uses dp_accounting's own default
PLD grid, so it equals what an auditor gets from the library (σ=1, q=0.01, 1000 steps,
δ=1e-5: 1.8282). Only the search that *calibrates* σ (dp_accounting's own
calibrate_dp_mechanism, in a bracket kumiai finds on cached ε) uses a coarser grid,
`CALIBRATION_DISCRETIZATION` = 1e-3, about ten times faster. The library rounds
pessimistically, so a coarse grid can only raise ε: a σ that meets the target on the coarse
grid meets it on the fine one too (the final ε is then recomputed on the fine grid).

Nothing here does I/O.
"""

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Literal, cast

from kumiai.domain.errors import InvalidInput

Accountant = Literal["pld", "rdp"]
ACCOUNTANTS: tuple[Accountant, ...] = ("pld", "rdp")
DEFAULT_ACCOUNTANT: Accountant = "pld"

CALIBRATION_DISCRETIZATION = 1e-3
"""value_discretization_interval of the PLD accountant inside σ calibration only."""

LIBRARY_DISCRETIZATION = 1e-4
"""PLDAccountant's default value_discretization_interval (a test holds it to the library's)."""

MIN_NOISE = 0.25
"""Smallest σ that noise_for_epsilon searches. Below it a single step already leaks a lot,
DP-SGD protects little, and the PLD of each step grows so wide that accounting slows to
seconds; a target that less noise would meet gets MIN_NOISE, which meets it with room."""

MAX_NOISE = 1000.0
"""Largest σ that noise_for_epsilon searches: beyond it the model learns nothing."""

NOISE_TOLERANCE = 1e-3
"""Relative precision of the σ that noise_for_epsilon returns."""


# -- validation ------------------------------------------------------------------------
def _finite_positive(name: str, value: float, hint: str = "") -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number greater than 0, got {value!r}{hint}") from None
    if not math.isfinite(number) or number <= 0:
        raise InvalidInput(f"{name} must be a finite number greater than 0, got {value!r}{hint}")
    return number


def check_accountant(accountant: str) -> Accountant:
    """The accountant name, checked: a typo must not silently fall back to another bound."""
    if accountant not in ACCOUNTANTS:
        raise InvalidInput(
            f"accountant must be one of {', '.join(ACCOUNTANTS)}, got {accountant!r} "
            f"(the default, {DEFAULT_ACCOUNTANT}, gives the tightest ε)"
        )
    return cast(Accountant, accountant)


def check_epsilon_cap(epsilon_cap: float) -> float:
    """An ε cap is a budget: it has to be a real, positive amount."""
    return _finite_positive(
        "epsilon_cap", epsilon_cap, " (ε caps in practice lie between about 0.1 and 10)"
    )


def check_lifetime(epsilon: float) -> float:
    """A dataset's lifetime ε budget: a real, positive amount, as an ε cap."""
    return _finite_positive(
        "the lifetime ε", epsilon, " (a steward's lifetime budget is a few ε, e.g. 5)"
    )


def check_rows(rows: int) -> int:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise InvalidInput(f"rows must be a whole number of at least 1, got {rows!r}")
    return rows


def default_delta(rows: int) -> float:
    """δ = 1/(10·n).

    δ bounds the probability that the ε guarantee fails outright; at δ ≥ 1/n a mechanism
    that publishes one random row whole would qualify. One tenth of 1/n keeps that chance
    an order of magnitude below "one row leaks", and ε depends on δ only logarithmically,
    so going further costs little accuracy but buys little either.
    """
    return 1.0 / (10.0 * check_rows(rows))


def check_delta(delta: float, rows: int) -> float:
    """δ must be in (0, 1/n): at 1/n or more, leaking one whole row would be within budget."""
    rows = check_rows(rows)
    largest = 1.0 / rows
    hint = (
        f"; delta must be greater than 0 and less than 1/rows = 1/{rows} = {largest:g}"
        f" (the default is 1/(10·rows) = {default_delta(rows):g})"
    )
    number = _finite_positive("delta", delta, hint)
    if number >= largest:
        raise InvalidInput(f"delta {number:g} is too large for {rows} rows{hint}")
    return number


def check_clipping(clipping_norm: float) -> float:
    """C bounds each example's gradient norm; it must be positive (and finite) to bound it."""
    return _finite_positive(
        "clipping_norm", clipping_norm, " (typical values are 0.1 to 10, e.g. 1.0)"
    )


def check_sample_rate(sample_rate: float) -> float:
    """q is a probability of sampling a row; q = 0 would train on nothing."""
    try:
        q = float(sample_rate)
    except (TypeError, ValueError):
        q = math.nan
    if not (0.0 < q <= 1.0):
        raise InvalidInput(
            f"sample_rate must be greater than 0 and at most 1, got {sample_rate!r} "
            "(it is expected batch size / rows)"
        )
    return q


def check_steps(steps: int, *, allow_zero: bool = False) -> int:
    least = 0 if allow_zero else 1
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < least:
        raise InvalidInput(f"steps must be a whole number of at least {least}, got {steps!r}")
    return steps


def check_noise_multiplier(noise_multiplier: float, *, allow_zero: bool = False) -> float:
    """σ = 0 means no privacy (ε = ∞); only accounting itself may ask about it."""
    try:
        sigma = float(noise_multiplier)
    except (TypeError, ValueError):
        sigma = math.nan
    if not math.isfinite(sigma) or sigma < 0 or (sigma == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "greater than 0"
        raise InvalidInput(
            f"noise_multiplier must be a finite number {bound}, got {noise_multiplier!r} "
            "(typical values are 0.5 to 5)"
        )
    return sigma


def _check_event(
    noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str
) -> tuple[float, float, int, float, Accountant]:
    sigma = check_noise_multiplier(noise_multiplier, allow_zero=True)
    q = check_sample_rate(sample_rate)
    steps = check_steps(steps, allow_zero=True)
    if not (isinstance(delta, int | float) and 0.0 < delta < 1.0):
        raise InvalidInput(f"delta must be greater than 0 and less than 1, got {delta!r}")
    return sigma, q, steps, float(delta), check_accountant(accountant)


# -- accounting ------------------------------------------------------------------------
def dp_sgd_event(noise_multiplier: float, sample_rate: float, steps: int) -> Any:
    """The dp_accounting event for `steps` Poisson-sampled Gaussian steps."""
    import dp_accounting  # lazy: it loads scipy; commands that only read must start fast

    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(
            sample_rate, dp_accounting.GaussianDpEvent(noise_multiplier)
        ),
        steps,
    )


def make_accountant(accountant: str, *, coarse: bool = False) -> Any:
    """A fresh dp_accounting accountant: the library's defaults, or the calibration grid."""
    from dp_accounting.pld import PLDAccountant  # lazy, as in dp_sgd_event
    from dp_accounting.rdp import RdpAccountant

    if check_accountant(accountant) == "pld":
        if coarse:
            return PLDAccountant(value_discretization_interval=CALIBRATION_DISCRETIZATION)
        return PLDAccountant(value_discretization_interval=LIBRARY_DISCRETIZATION)
    return RdpAccountant()


def epsilon_for(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    accountant: str = DEFAULT_ACCOUNTANT,
) -> float:
    """ε spent by `steps` Poisson-sampled Gaussian steps at (σ, q), for the given δ.

    σ = 0 gives ε = ∞ and steps = 0 gives 0, as dp_accounting does.
    """
    sigma, q, steps, delta, name = _check_event(
        noise_multiplier, sample_rate, steps, delta, accountant
    )
    if steps == 0:
        return 0.0  # dp_accounting refuses a composition count of zero
    return _epsilon(sigma, q, steps, delta, name)


@lru_cache(maxsize=4096)
def _epsilon(
    sigma: float, q: float, steps: int, delta: float, accountant: Accountant, coarse: bool = False
) -> float:
    """Cached: planning and checking a job ask about the same few settings repeatedly."""
    if accountant == "pld" and sigma > 0 and q > 0:
        return _pld_epsilon(sigma, q, steps, delta, coarse)
    engine = make_accountant(accountant, coarse=coarse)
    engine.compose(dp_sgd_event(sigma, q, steps))
    return float(engine.get_epsilon(delta))


@lru_cache(maxsize=64)
def _one_step_pld(sigma: float, q: float, coarse: bool) -> Any:
    """One Poisson-subsampled Gaussian step's PLD, built exactly as PLDAccountant builds it.

    Building it is most of the accountant's cost (≈0.35 s); a node asks for ε after every
    round of the same (σ, q), so it is built once and only the composition is redone.
    """
    from dp_accounting.pld import privacy_loss_distribution  # lazy, as in dp_sgd_event

    return privacy_loss_distribution.from_gaussian_mechanism(
        standard_deviation=sigma,
        value_discretization_interval=_discretization(coarse),
        sampling_prob=q,
    )


def _pld_epsilon(sigma: float, q: float, steps: int, delta: float, coarse: bool) -> float:
    """What PLDAccountant().compose(dp_sgd_event(σ, q, steps)).get_epsilon(δ) returns, to the
    last bit (a test holds it to that), from the cached single step."""
    from dp_accounting.pld import privacy_loss_distribution

    identity = privacy_loss_distribution.identity(
        value_discretization_interval=_discretization(coarse)
    )
    composed = identity.compose(_one_step_pld(sigma, q, coarse).self_compose(steps))
    return float(composed.get_epsilon_for_delta(delta))


def _discretization(coarse: bool) -> float:
    """The PLD grid: dp_accounting's default, or the calibration grid."""
    return CALIBRATION_DISCRETIZATION if coarse else LIBRARY_DISCRETIZATION


def _calibrate(
    target_epsilon: float, sample_rate: float, steps: int, delta: float, accountant: str
) -> tuple[float, float]:
    """(σ, ε(σ)) with σ the smallest noise in [MIN_NOISE, MAX_NOISE] meeting the target."""
    target = _finite_positive("target_epsilon", target_epsilon)
    check_steps(steps)

    sigma_checked, q, steps, delta, name = _check_event(1.0, sample_rate, steps, delta, accountant)
    del sigma_checked

    def eps(sigma: float) -> float:
        return _epsilon(sigma, q, steps, delta, name, coarse=True)

    # Bracket: eps(lo) > target >= eps(hi). Grow or shrink by halving/doubling from σ = 1.
    sigma, spent = 1.0, eps(1.0)
    if spent <= target:
        hi, hi_eps = sigma, spent
        while True:
            sigma = max(hi / 2, MIN_NOISE)
            spent = eps(sigma)
            if spent > target:
                lo = sigma
                break
            hi, hi_eps = sigma, spent
            if sigma == MIN_NOISE:
                return hi, hi_eps
    else:
        lo = sigma
        while True:
            sigma = min(lo * 2, MAX_NOISE)
            spent = eps(sigma)
            if spent <= target:
                hi, hi_eps = sigma, spent
                break
            if sigma == MAX_NOISE:
                raise InvalidInput(
                    f"target epsilon {target:g} cannot be met with a noise_multiplier up to "
                    f"{MAX_NOISE:g} (it still spends ε = {spent:.4g} over {steps} steps at "
                    f"sample rate {sample_rate:g}, δ = {delta:g}); raise the epsilon cap, or "
                    "lower the number of steps or the batch size"
                )
            lo = sigma
    # The root itself: dp_accounting's own calibration (Brent's method, then its bisection
    # fallback, which guarantees ε ≤ target) inside the bracket found above on cached ε.
    from dp_accounting import mechanism_calibration  # lazy, as in dp_sgd_event

    sigma = mechanism_calibration.calibrate_dp_mechanism(
        lambda: make_accountant(name, coarse=True),
        lambda noise: dp_sgd_event(noise, q, steps),
        target,
        delta,
        bracket_interval=mechanism_calibration.ExplicitBracketInterval(lo, hi),
        tol=lo * NOISE_TOLERANCE,
    )
    del hi_eps  # on the coarse grid: the ε of record is recomputed on the library's grid
    return float(sigma), epsilon_for(float(sigma), sample_rate, steps, delta, accountant)


def noise_for_epsilon(
    target_epsilon: float,
    sample_rate: float,
    steps: int,
    delta: float,
    accountant: str = DEFAULT_ACCOUNTANT,
) -> float:
    """The smallest σ (to 0.1%, never below MIN_NOISE) whose ε over `steps` is ≤ the target."""
    return _calibrate(target_epsilon, sample_rate, steps, delta, accountant)[0]


def check_noise_meets_cap(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    cap: float,
    accountant: str = DEFAULT_ACCOUNTANT,
) -> float:
    """The ε this σ spends; refuses, naming the σ that would do, if that exceeds the cap."""
    cap = check_epsilon_cap(cap)
    spent = epsilon_for(noise_multiplier, sample_rate, steps, delta, accountant)
    if spent <= cap:
        return spent
    setting = (
        f"over {steps} steps at sample rate {sample_rate:g}, δ = {delta:g}, {accountant} accountant"
    )
    try:
        needed = noise_for_epsilon(cap, sample_rate, steps, delta, accountant)
    except InvalidInput:
        fix = (
            f"no noise_multiplier up to {MAX_NOISE:g} meets it; lower the number of steps or "
            "the batch size, or raise the cap"
        )
    else:
        # Round up so that the figure we print, typed back in, passes this check.
        fix = (
            f"noise_multiplier must be at least {math.ceil(needed * 1000) / 1000:g} to meet it "
            "(or lower the number of steps or the batch size)"
        )
    raise InvalidInput(
        f"noise_multiplier {noise_multiplier:g} would spend ε = {spent:.4g} ({setting}), "
        f"over the epsilon cap {cap:g}; {fix}"
    )


# -- a plan for one job ----------------------------------------------------------------
Level = Literal["record", "client"]
LEVELS: tuple[Level, ...] = ("record", "client")

RECORD_SENSITIVITY: dict[str, int] = {"record": 1, "client": 2}
"""How far one row can move the noised sum, in units of the clipping norm C.

DP-SGD clips each example's gradient to C, so adding or removing a row moves a step's sum by
at most C. Client-level DP clips a member's whole update to C; one row changed inside that
member can turn its clipped update into another of norm C, a move of up to 2C. A dataset's
budget is counted per row (its patients), so client-level rounds are accounted at σ/2."""


def check_level(level: str) -> Level:
    if level not in LEVELS:
        raise InvalidInput(
            f"dp level must be one of {', '.join(LEVELS)}, got {level!r} (record: DP-SGD "
            "at each node; client: each node clips its update, the coordinator adds noise)"
        )
    return cast(Level, level)


@dataclass(frozen=True)
class PrivacyPlan:
    """Everything one dataset's part of a private job needs, and the ε it spends.

    `epsilon` is always per row of the dataset (what its budget counts). For client-level
    DP, `member_epsilon` is the guarantee for the member's whole dataset at once, the figure
    DP-FedAvg papers and Flower's accountant report; `steps` are then rounds, q = 1.
    """

    noise_multiplier: float
    clipping_norm: float
    sample_rate: float
    steps: int
    delta: float
    epsilon: float
    accountant: Accountant
    level: Level = "record"
    member_epsilon: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def spent_after(details: Mapping[str, Any], rounds: int) -> float:
    """ε per row after `rounds` rounds of a plan (as stored in a node's spend log).

    One function for both levels, so a node counts its spend the same way whichever kind of
    job it serves.
    """
    level = check_level(str(details.get("level", "record")))
    return epsilon_for(
        float(details["noise_multiplier"]) / RECORD_SENSITIVITY[level],
        float(details["sample_rate"]),
        rounds * int(details["steps_per_round"]),
        float(details["delta"]),
        str(details["accountant"]),
    )


def plan_dp_sgd(
    *,
    rows: int,
    clipping_norm: float,
    batch_size: float,
    steps: int,
    epsilon_cap: float | None = None,
    noise_multiplier: float | None = None,
    delta: float | None = None,
    accountant: str = DEFAULT_ACCOUNTANT,
) -> PrivacyPlan:
    """Fix DP-SGD's parameters for one site's part of a job.

    rows: the site's training rows (n). batch_size: the *expected* lot size; each row is
    sampled with probability q = batch_size / rows. steps: total local steps over the whole
    job (rounds × local steps per round), since every step touches the data. delta defaults
    to 1/(10·rows).

    Give epsilon_cap to calibrate σ to the smallest noise meeting it; give noise_multiplier
    to use that σ and report its ε; give both to use σ but refuse it if it overspends the cap.
    """
    rows = check_rows(rows)
    clipping_norm = check_clipping(clipping_norm)
    steps = check_steps(steps)
    name = check_accountant(accountant)
    lot = _finite_positive("batch_size", batch_size, f" (between 1 and rows = {rows})")
    if lot > rows:
        raise InvalidInput(
            f"batch_size {lot:g} is larger than the {rows} rows; it must be between 1 and {rows}"
        )
    sample_rate = check_sample_rate(lot / rows)
    delta = default_delta(rows) if delta is None else check_delta(delta, rows)

    if noise_multiplier is None:
        if epsilon_cap is None:
            raise InvalidInput(
                "DP-SGD needs an epsilon_cap (to calibrate the noise) or a noise_multiplier "
                "(to report its ε); give at least one"
            )
        cap = check_epsilon_cap(epsilon_cap)
        sigma, epsilon = _calibrate(cap, sample_rate, steps, delta, name)
    else:
        sigma = check_noise_multiplier(noise_multiplier)
        if epsilon_cap is None:
            epsilon = epsilon_for(sigma, sample_rate, steps, delta, name)
        else:
            epsilon = check_noise_meets_cap(sigma, sample_rate, steps, delta, epsilon_cap, name)
    return PrivacyPlan(
        noise_multiplier=sigma,
        clipping_norm=clipping_norm,
        sample_rate=sample_rate,
        steps=steps,
        delta=delta,
        epsilon=epsilon,
        accountant=name,
    )
