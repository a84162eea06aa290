"""Client-level differential privacy (DP-FedAvg): the plan a node checks before round one.

Each participating node clips its whole model update to norm C; the coordinator adds
Gaussian noise of standard deviation σ·C to the sum of updates, once per round, and divides
by the number of members (uniform weights: a row count would itself leak). Every member
takes part in every round, so there is no sampling to amplify privacy: a job is `rounds`
Gaussian releases, composed by dp_accounting like everything else.

Two figures come out. Per member (adding or removing a member's whole dataset moves the sum
by at most C): the ε of σ, which Flower's accountant also reports. Per row, which is what a
dataset's budget counts: one row can move the member's clipped update by up to 2C, so the
ε of σ/2 (RECORD_SENSITIVITY). The per-row figure is the one reserved and spent.

The noise is added by the coordinator, so this level protects members from everyone who
sees the released model, not from the coordinator itself (record-level DP-SGD does both).
"""

import math

from kumiai.domain.errors import InvalidInput
from kumiai.domain.privacy import (
    DEFAULT_ACCOUNTANT,
    MAX_NOISE,
    RECORD_SENSITIVITY,
    PrivacyPlan,
    check_accountant,
    check_clipping,
    check_delta,
    check_epsilon_cap,
    check_noise_multiplier,
    check_rows,
    check_steps,
    default_delta,
    epsilon_for,
    noise_for_epsilon,
)

CLIENT_STRATEGIES = ("fedavg", "fedprox")
"""Strategies whose aggregate is the plain mean the noise is calibrated to. A server
optimiser (FedAdam, FedYogi) steps on the mean before Flower's wrapper adds the noise, so
the noise would no longer bound what is released."""

_SENSITIVITY = RECORD_SENSITIVITY["client"]


def _needed_noise(cap: float, rounds: int, delta: float, accountant: str) -> float:
    """The smallest σ whose per-row ε over `rounds` releases is within the cap."""
    try:
        return _SENSITIVITY * noise_for_epsilon(cap, 1.0, rounds, delta, accountant)
    except InvalidInput:
        raise InvalidInput(
            f"epsilon {cap:g} per row cannot be met by client-level DP over {rounds} rounds "
            f"with a noise_multiplier up to {_SENSITIVITY * MAX_NOISE:g} (δ = {delta:g}); "
            "raise the epsilon cap or lower the rounds"
        ) from None


def plan_client_dp(
    *,
    rows: int,
    clipping_norm: float,
    rounds: int,
    epsilon_cap: float | None = None,
    noise_multiplier: float | None = None,
    delta: float | None = None,
    accountant: str = DEFAULT_ACCOUNTANT,
) -> PrivacyPlan:
    """Fix client-level DP for one dataset's part of a job (rows set the default δ).

    Give epsilon_cap to calibrate σ, noise_multiplier to report its ε, or both to refuse a
    σ that overspends the cap, as plan_dp_sgd does for DP-SGD.
    """
    rows = check_rows(rows)
    clipping_norm = check_clipping(clipping_norm)
    rounds = check_steps(rounds)
    name = check_accountant(accountant)
    delta = default_delta(rows) if delta is None else check_delta(delta, rows)
    if noise_multiplier is None:
        if epsilon_cap is None:
            raise InvalidInput(
                "client-level DP needs an epsilon_cap (to calibrate the noise) or a "
                "noise_multiplier (to report its ε); give at least one"
            )
        sigma = _needed_noise(check_epsilon_cap(epsilon_cap), rounds, delta, name)
    else:
        sigma = check_noise_multiplier(noise_multiplier)
    epsilon = epsilon_for(sigma / _SENSITIVITY, 1.0, rounds, delta, name)
    if epsilon_cap is not None and epsilon > check_epsilon_cap(epsilon_cap):
        needed = _needed_noise(epsilon_cap, rounds, delta, name)
        raise InvalidInput(
            f"noise_multiplier {sigma:g} would spend ε = {epsilon:.4g} per row over {rounds} "
            f"rounds of client-level DP (δ = {delta:g}, {name} accountant), over the epsilon "
            f"cap {epsilon_cap:g}; noise_multiplier must be at least "
            f"{math.ceil(needed * 1000) / 1000:g} to meet it (or lower the rounds)"
        )
    return PrivacyPlan(
        noise_multiplier=sigma,
        clipping_norm=clipping_norm,
        sample_rate=1.0,
        steps=rounds,
        delta=delta,
        epsilon=epsilon,
        accountant=name,
        level="client",
        member_epsilon=epsilon_for(sigma, 1.0, rounds, delta, name),
    )
