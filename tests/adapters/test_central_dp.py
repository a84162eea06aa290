"""Client-level DP on Flower's pieces: its accountant agrees with ours; its legacy wrapper
adds the noise only over a full quorum of members."""

import numpy as np
import pytest
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import strategy as legacy

from kumiai.adapters.flower.central_dp import (
    AccountedLegacyClipping,
    flower_accountant,
    spent_by_members,
)
from kumiai.domain.client_dp import plan_client_dp
from kumiai.domain.errors import JobFailed
from kumiai.domain.training import TrainingSettings


@pytest.mark.parametrize(("cap", "rounds", "rows"), [(1.0, 30, 300), (8.0, 5, 120)])
def test_flowers_accountant_reports_our_member_epsilon(cap: float, rounds: int, rows: int) -> None:
    plan = plan_client_dp(
        rows=rows, clipping_norm=1.0, rounds=rounds, epsilon_cap=cap, accountant="rdp"
    )
    accountant = flower_accountant(plan.delta, members=4)
    wrapper = AccountedLegacyClipping(
        legacy.FedAvg(),
        TrainingSettings(noise_multiplier=plan.noise_multiplier, dp_level="client"),
        4,
        accountant,
    )
    assert spent_by_members(accountant) is None  # nothing released yet
    for server_round in range(1, rounds + 1):
        wrapper.aggregate_fit(server_round, updates(4), [])
    assert accountant.num_releases == rounds
    assert spent_by_members(accountant) == pytest.approx(plan.member_epsilon, rel=1e-9)


def updates(members: int) -> list:
    arrays = [np.full(3, 1.0), np.zeros(1)]
    fitres = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), 1, {})
    return [(None, fitres) for _ in range(members)]


def test_the_legacy_wrapper_adds_noise_only_over_every_member() -> None:
    sigma = 2.0
    accountant = flower_accountant(1e-4, members=3)
    settings = TrainingSettings(noise_multiplier=sigma, clipping_norm=0.5, dp_level="client")
    wrapper = AccountedLegacyClipping(legacy.FedAvg(), settings, 3, accountant)
    parameters, _ = wrapper.aggregate_fit(1, updates(3), [])
    noised = parameters_to_ndarrays(parameters)
    # the mean of identical updates, plus noise of stdev σ·C/members per coordinate
    assert not np.allclose(noised[0], 1.0)
    assert np.abs(noised[0] - 1.0).max() < 10 * sigma * 0.5 / 3
    with pytest.raises(JobFailed, match="needs all 3 members in every round; round 2 got 2"):
        wrapper.aggregate_fit(2, updates(2), [])
    with pytest.raises(JobFailed, match="1 failure"):
        wrapper.aggregate_fit(3, updates(3), [RuntimeError("node crashed")])
    assert accountant.num_releases == 1  # refused rounds released nothing
