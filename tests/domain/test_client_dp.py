"""Client-level DP plans: per-row and per-member ε from dp_accounting, calibration, refusals."""

import dp_accounting
import pytest
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from kumiai.domain.client_dp import plan_client_dp
from kumiai.domain.errors import InvalidInput
from kumiai.domain.privacy import epsilon_for, spent_after
from kumiai.domain.training import TrainingSettings


def gaussian_rounds(sigma: float, rounds: int, delta: float, accountant: str) -> float:
    """ε of `rounds` unsampled Gaussian releases, straight from dp_accounting."""
    engine = PLDAccountant() if accountant == "pld" else RdpAccountant()
    engine.compose(dp_accounting.GaussianDpEvent(sigma), rounds)
    return float(engine.get_epsilon(delta))


@pytest.mark.parametrize("accountant", ["pld", "rdp"])
@pytest.mark.parametrize(("cap", "rounds"), [(1.0, 30), (4.0, 10), (8.0, 50)])
def test_calibration_meets_the_cap_per_row_with_the_least_noise(
    cap: float, rounds: int, accountant: str
) -> None:
    plan = plan_client_dp(
        rows=300, clipping_norm=0.5, rounds=rounds, epsilon_cap=cap, accountant=accountant
    )
    assert (plan.level, plan.sample_rate, plan.steps) == ("client", 1.0, rounds)
    assert plan.delta == pytest.approx(1 / 3000)
    # one row moves a member's clipped update by up to 2C: the row's ε is that of σ/2
    per_row = gaussian_rounds(plan.noise_multiplier / 2, rounds, plan.delta, accountant)
    per_member = gaussian_rounds(plan.noise_multiplier, rounds, plan.delta, accountant)
    assert plan.epsilon == pytest.approx(per_row, rel=1e-6)
    assert plan.member_epsilon == pytest.approx(per_member, rel=1e-6)
    assert plan.epsilon <= cap and plan.member_epsilon < plan.epsilon
    # and σ is the least that does: 0.5% less noise overspends
    less = epsilon_for(plan.noise_multiplier * 0.995 / 2, 1.0, rounds, plan.delta, accountant)
    assert less > cap


def test_a_given_noise_reports_its_epsilon_and_is_checked_against_a_cap() -> None:
    plan = plan_client_dp(rows=300, clipping_norm=1.0, rounds=20, noise_multiplier=10.0)
    assert plan.noise_multiplier == 10.0
    assert plan.epsilon == pytest.approx(gaussian_rounds(5.0, 20, 1 / 3000, "pld"), rel=1e-6)
    with pytest.raises(InvalidInput) as refused:
        plan_client_dp(
            rows=300, clipping_norm=1.0, rounds=20, noise_multiplier=10.0, epsilon_cap=1.0
        )
    message = str(refused.value)
    assert "noise_multiplier 10 would spend" in message and "over the epsilon cap 1" in message
    needed = float(message.split("must be at least ")[1].split()[0])
    ok = plan_client_dp(
        rows=300, clipping_norm=1.0, rounds=20, noise_multiplier=needed, epsilon_cap=1.0
    )
    assert ok.epsilon <= 1.0


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"epsilon_cap": 0.0}, "epsilon_cap"),
        ({"epsilon_cap": -1.0}, "epsilon_cap"),
        ({"epsilon_cap": 1.0, "clipping_norm": 0.0}, "clipping_norm"),
        ({"epsilon_cap": 1.0, "delta": 1 / 300}, "delta"),
        ({"noise_multiplier": 0.0}, "noise_multiplier"),
        ({}, "epsilon_cap"),
    ],
)
def test_bad_parameters_are_refused_naming_them(values: dict, named: str) -> None:
    arguments = {"rows": 300, "clipping_norm": 1.0, "rounds": 10, **values}
    with pytest.raises(InvalidInput, match=named):
        plan_client_dp(**arguments)


def test_spend_after_each_round_counts_per_row_at_either_level() -> None:
    plan = plan_client_dp(rows=300, clipping_norm=1.0, rounds=12, epsilon_cap=2.0)
    details = {**plan.as_dict(), "steps_per_round": 1}
    spends = [spent_after(details, k) for k in range(1, 13)]
    assert spends == sorted(spends) and spends[-1] == pytest.approx(plan.epsilon)
    assert spends[0] == pytest.approx(
        gaussian_rounds(plan.noise_multiplier / 2, 1, plan.delta, "pld"), rel=1e-6
    )
    # a spend log written before levels existed is record-level DP-SGD
    old = {"noise_multiplier": 1.0, "sample_rate": 0.01, "steps_per_round": 100}
    old |= {"delta": 1e-5, "accountant": "pld"}
    assert spent_after(old, 10) == pytest.approx(1.8282, abs=1e-4)
    with pytest.raises(InvalidInput, match="dp level"):
        spent_after({**details, "level": "device"}, 1)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"dp_level": "client"}, "needs --epsilon"),
        ({"dp_level": "client", "epsilon": 1.0, "strategy": "fedadam"}, "fedavg or fedprox"),
        ({"dp_level": "client", "epsilon": 1.0, "strategy": "fedyogi"}, "server optimiser"),
        ({"dp_level": "devices", "epsilon": 1.0}, "dp level must be one of record, client"),
    ],
)
def test_settings_refuse_what_client_level_dp_cannot_do(values: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        TrainingSettings(**values)
    assert TrainingSettings(dp_level="client", epsilon=1.0, strategy="fedprox").private
