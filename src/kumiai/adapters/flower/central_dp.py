"""Client-level DP on Flower, the coordinator's side: noise on the sum, and its accounting.

Each node clips its own update (`kumiai.node.clipping`); the coordinator adds the noise.

Flower's own pieces do the work: `fixedclipping_mod` on the node (the Message-API one, or
the legacy one inside SecAgg+ masking), `DifferentialPrivacyClientSideFixedClipping` on the
coordinator, and Flower's RDP accountant for the member-level ε it reports. kumiai adds what
a consortium needs around them:

- the node clips at the norm its own budget reservation was planned with, and refuses a
  message asking for another;
- every admitted member must answer every round: the noise is calibrated to a fixed number
  of members, and a mean over fewer would be under-noised, so a drop fails the job;
- the legacy wrapper (for SecAgg+) gets the same accounting the Message-API one has.
"""

from typing import Any

from flwr.server import strategy as legacy
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg
from flwr.supercore.privacy_accounting import (
    GaussianPrivacyEvent,
    NeighboringRelation,
    PrivacyConfig,
    SamplingMethod,
)
from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant

from kumiai.domain.errors import JobFailed
from kumiai.domain.training import TrainingSettings


def flower_accountant(delta: float, members: int) -> RdpAccountant:
    """Flower's accountant for one job: every member in every round (no amplification)."""
    return RdpAccountant(
        PrivacyConfig(
            target_delta=delta,
            population_size=members,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION,
        )
    )


def spent_by_members(accountant: RdpAccountant | None) -> float | None:
    """The member-level ε Flower's accountant has counted so far (None before any round)."""
    if accountant is None or accountant.num_releases == 0:
        return None
    return float(accountant.get_privacy_spent().epsilon)


def message_strategy(
    strategy: FedAvg, settings: TrainingSettings, members: int, accountant: RdpAccountant
) -> DifferentialPrivacyClientSideFixedClipping:
    """Flower's Message-API wrapper: noise σ·C on the sum, accounted by Flower."""
    assert settings.noise_multiplier is not None  # resolved before the job starts
    return DifferentialPrivacyClientSideFixedClipping(
        strategy,
        noise_multiplier=settings.noise_multiplier,
        clipping_norm=settings.clipping_norm,
        num_sampled_clients=members,
        accountant=accountant,
    )


class AccountedLegacyClipping(legacy.DifferentialPrivacyClientSideFixedClipping):  # type: ignore[misc]
    """Flower's legacy wrapper (the one SecAgg+ runs), with a full quorum and accounting.

    Flower's legacy wrapper warns and still adds noise for `num_sampled_clients` when fewer
    answered; that mean would be under-noised, so here it fails the job instead.
    """

    def __init__(
        self, strategy: legacy.Strategy, settings: TrainingSettings, members: int, accountant: Any
    ) -> None:
        assert settings.noise_multiplier is not None
        super().__init__(strategy, settings.noise_multiplier, settings.clipping_norm, members)
        self.accountant = accountant

    def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
        if failures or len(results) != self.num_sampled_clients:
            raise JobFailed(
                f"client-level DP needs all {self.num_sampled_clients} members in every round; "
                f"round {server_round} got {len(results)} update(s) and {len(failures)} "
                "failure(s), so the job stopped (a mean over fewer members would be under-noised)"
            )
        parameters, metrics = super().aggregate_fit(server_round, results, failures)
        if parameters is not None:
            members = self.num_sampled_clients
            self.accountant.compose(GaussianPrivacyEvent(self.noise_multiplier, members, members))
        return parameters, metrics
