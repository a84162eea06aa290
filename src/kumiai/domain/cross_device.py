"""Cross-device rounds: which users a round asks, and which of them never answer.

Each round samples users from the whole population, either Poisson (each user
independently with probability `fraction`: what user-level DP's amplification by sampling
is analysed under) or a fixed number (`fraction` × users, without replacement). Of the
sampled, each drops out (a phone switched off, on a metered network, a straggler past the
deadline) independently with probability `dropout`. The coordinator keeps no per-user
state: a round is a draw over indices 0..N-1 from the round's own seed.

Example: 671 users, fraction 0.1, Poisson: about 67 asked per round; with dropout 0.1,
about 60 answer.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from kumiai.domain.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

Sampling = Literal["poisson", "fixed"]
SAMPLINGS: tuple[Sampling, ...] = ("poisson", "fixed")


@dataclass(frozen=True)
class CrossDeviceSettings:
    """One agent training job's settings, the same at the coordinator and every device."""

    rounds: int = 200
    fraction: float = 0.1
    sampling: str = "poisson"
    dropout: float = 0.0
    server_lr: float = 10.0
    factors: int = 8
    l2_user: float = 10.0
    l2_item: float = 10.0
    local_lr: float = 0.05
    local_steps: int = 1
    seed: int = 0
    epsilon: float | None = None
    clipping_norm: float = 0.5

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise InvalidInput(f"rounds must be at least 1, got {self.rounds}")
        if not 0.0 < self.fraction <= 1.0:
            raise InvalidInput(
                f"--fraction must be in (0, 1], got {self.fraction!r} (0.1 asks a tenth of "
                "the users each round)"
            )
        if self.sampling not in SAMPLINGS:
            raise InvalidInput(
                f"--sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidInput(f"--dropout must be in [0, 1), got {self.dropout!r}")
        if self.epsilon is not None and self.sampling != "poisson":
            raise InvalidInput(
                "user-level DP is accounted for Poisson sampling only; use --sampling poisson"
            )
        if self.factors < 1 or self.local_steps < 1:
            raise InvalidInput("factors and local steps must be at least 1")


def sample_users(
    rng: "np.random.Generator", users: int, fraction: float, sampling: str
) -> "NDArray[np.int64]":
    """Indices of the users this round asks (sorted)."""
    import numpy as np

    if sampling == "poisson":
        return np.flatnonzero(rng.random(users) < fraction).astype(np.int64)
    size = max(1, round(fraction * users))
    return np.sort(rng.choice(users, size=size, replace=False)).astype(np.int64)


def answering(
    rng: "np.random.Generator", asked: "NDArray[np.int64]", dropout: float
) -> "NDArray[np.int64]":
    """The asked users who answer: each drops out with probability `dropout`."""
    if dropout == 0.0:
        return asked
    return asked[rng.random(len(asked)) >= dropout]
