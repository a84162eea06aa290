"""User-level differential privacy for the personal agent: DP-FedAvg with Poisson sampling.

The privacy unit is the user (one device, all their ratings). Each round every device is
sampled independently with probability q; a sampled device clips its whole update to norm
C; the coordinator adds Gaussian noise of standard deviation σ·C to the sum and divides by
the *expected* number of devices qN (a fixed denominator: the realised count would itself
depend on who took part). Adding or removing one user moves the sum by at most C, so a
round is a Poisson-subsampled Gaussian mechanism with noise multiplier σ, and a job is
`rounds` of them composed — the same event as DP-SGD's (`domain.privacy.dp_sgd_event`) with
users in place of rows, accounted by dp-accounting (McMahan et al., 2018, "Learning
Differentially Private Recurrent Language Models", the user-level DP-FedAvg analysis).

Example: 671 users, q = 0.1, 100 rounds, δ = 1/671^1.1: the σ whose ε is 8 comes from
`noise_for_epsilon(8, 0.1, 100, δ)`; that σ·C is the noise the coordinator adds.

A device that drops out after being sampled only removes its own term from the sum: the
noise was calibrated to the sampling, so its absence costs no privacy and needs no change.

Nothing here does I/O.
"""

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from kumiai.domain.errors import InvalidInput
from kumiai.domain.privacy import (
    DEFAULT_ACCOUNTANT,
    check_clipping,
    check_epsilon_cap,
    check_sample_rate,
    check_steps,
    epsilon_for,
    noise_for_epsilon,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


def default_user_delta(users: int) -> float:
    """δ below 1/N: 1/N^1.1 (the usual choice; 671 users give δ ≈ 7.7e-4)."""
    if users < 1:
        raise InvalidInput(f"user-level DP needs at least one user, got {users}")
    return 1.0 / users**1.1


@dataclass(frozen=True)
class UserDpPlan:
    """The noise, clipping and sampling of one job, and the ε they spend per user."""

    epsilon: float
    delta: float
    noise_multiplier: float
    clipping_norm: float
    sample_rate: float
    rounds: int
    accountant: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def spent_after(self, rounds: int) -> float:
        """ε per user once `rounds` rounds are released (every user's, sampled or not)."""
        return epsilon_for(
            self.noise_multiplier, self.sample_rate, rounds, self.delta, self.accountant
        )


def plan_user_dp(
    *,
    epsilon: float,
    users: int,
    sample_rate: float,
    rounds: int,
    clipping_norm: float,
    delta: float | None = None,
    accountant: str = DEFAULT_ACCOUNTANT,
) -> UserDpPlan:
    """The smallest σ whose user-level ε over `rounds` Poisson-sampled rounds meets `epsilon`."""
    epsilon = check_epsilon_cap(epsilon)
    q = check_sample_rate(sample_rate)
    rounds = check_steps(rounds)
    clip = check_clipping(clipping_norm)
    delta = default_user_delta(users) if delta is None else delta
    if not 0.0 < delta < 1.0 / users:
        raise InvalidInput(
            f"δ must be below 1/users = {1.0 / users:.3g} for user-level DP, got {delta:g}"
        )
    sigma = noise_for_epsilon(epsilon, q, rounds, delta, accountant)
    spent = epsilon_for(sigma, q, rounds, delta, accountant)
    return UserDpPlan(spent, delta, sigma, clip, q, rounds, accountant)


def clip_update(
    update: "list[NDArray[np.float64]]", clipping_norm: float
) -> "tuple[list[NDArray[np.float64]], float]":
    """The update scaled to L2 norm ≤ C over all its arrays together, and its norm before."""
    import numpy as np

    norm = math.sqrt(sum(float(np.sum(a * a)) for a in update))
    scale = min(1.0, clipping_norm / norm) if norm > 0 else 1.0
    return [a * scale for a in update], norm


def noisy_mean(
    total: "list[NDArray[np.float64]]",
    plan: UserDpPlan,
    users: int,
    rng: "np.random.Generator",
) -> "list[NDArray[np.float64]]":
    """The sum of clipped updates plus N(0, (σC)²) per coordinate, over the expected qN."""
    expected = plan.sample_rate * users
    if expected <= 0:
        raise InvalidInput("the expected number of sampled users is zero; raise the fraction")
    std = plan.noise_multiplier * plan.clipping_norm
    return [(a + rng.normal(0.0, std, a.shape)) / expected for a in total]
