"""DP-SGD accounting: our ε is dp_accounting's ε, σ calibration is tight, bad inputs are named."""

import math

import dp_accounting
import pytest
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from kumiai.domain.errors import InvalidInput
from kumiai.domain.privacy import (
    PrivacyPlan,
    check_clipping,
    check_delta,
    check_epsilon_cap,
    check_noise_meets_cap,
    check_sample_rate,
    default_delta,
    epsilon_for,
    noise_for_epsilon,
    plan_dp_sgd,
)

# (σ, q, steps, δ)
SETTINGS = [
    (1.0, 0.01, 1000, 1e-5),
    (0.8, 0.05, 200, 1e-5),
    (2.0, 0.1, 500, 1e-6),
    (4.0, 0.02, 3000, 1e-4),
]


def _direct(sigma: float, q: float, steps: int, delta: float, accountant: str) -> float:
    """dp_accounting called by hand, written out independently of the module under test."""
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )
    engine = PLDAccountant() if accountant == "pld" else RdpAccountant()  # library defaults
    return engine.compose(event).get_epsilon(delta)


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("accountant", ["pld", "rdp"])
def test_epsilon_equals_dp_accounting(setting: tuple, accountant: str) -> None:
    ours = epsilon_for(*setting, accountant=accountant)
    assert ours == pytest.approx(_direct(*setting, accountant), rel=1e-6)
    assert 0 < ours < math.inf


def test_reference_setting_gives_about_1_83_with_pld() -> None:
    ours = epsilon_for(1.0, 0.01, 1000, 1e-5)  # PLD is the default
    assert ours == pytest.approx(1.83, abs=0.02)
    assert ours == pytest.approx(_direct(1.0, 0.01, 1000, 1e-5, "pld"), rel=1e-6)


def test_calibration_on_the_coarse_grid_still_meets_the_target_on_the_fine_one() -> None:
    sigma = noise_for_epsilon(1.0, 0.01, 1000, 1e-5)
    assert _direct(sigma, 0.01, 1000, 1e-5, "pld") <= 1.0
    assert _direct(sigma * 0.97, 0.01, 1000, 1e-5, "pld") > 1.0  # and it is not wasteful


@pytest.mark.parametrize("setting", SETTINGS)
def test_pld_is_no_looser_than_rdp(setting: tuple) -> None:
    assert epsilon_for(*setting, accountant="pld") <= epsilon_for(*setting, accountant="rdp")


def test_epsilon_falls_with_noise_and_grows_with_steps() -> None:
    assert epsilon_for(2.0, 0.01, 1000, 1e-5) < epsilon_for(1.0, 0.01, 1000, 1e-5)
    assert epsilon_for(1.0, 0.01, 2000, 1e-5) > epsilon_for(1.0, 0.01, 1000, 1e-5)


def test_edge_cases_of_epsilon() -> None:
    assert epsilon_for(0.0, 0.01, 10, 1e-5) == math.inf
    assert epsilon_for(1.0, 0.01, 0, 1e-5) == 0.0
    with pytest.raises(InvalidInput, match="accountant"):
        epsilon_for(1.0, 0.01, 10, 1e-5, accountant="moments")
    with pytest.raises(InvalidInput, match="steps"):
        epsilon_for(1.0, 0.01, -1, 1e-5)


@pytest.mark.parametrize(
    ("target", "q", "steps", "delta", "accountant"),
    [(1.0, 0.01, 1000, 1e-5, "pld"), (3.0, 0.05, 500, 1e-6, "rdp")],
)
def test_noise_for_epsilon_is_the_smallest_that_meets_the_target(
    target: float, q: float, steps: int, delta: float, accountant: str
) -> None:
    sigma = noise_for_epsilon(target, q, steps, delta, accountant)
    assert epsilon_for(sigma, q, steps, delta, accountant) <= target
    assert epsilon_for(sigma * 0.99, q, steps, delta, accountant) > target


def test_unreachable_target_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"target epsilon 0\.0001 cannot be met.*1000"):
        noise_for_epsilon(1e-4, 1.0, 1000, 1e-5)


def test_default_delta_is_a_tenth_of_one_over_n() -> None:
    assert default_delta(1000) == pytest.approx(1e-4)
    assert check_delta(default_delta(303), 303) == default_delta(303)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_epsilon_cap_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(InvalidInput, match=r"epsilon_cap must be a finite number greater than 0"):
        check_epsilon_cap(bad)
    assert check_epsilon_cap(0.5) == 0.5


@pytest.mark.parametrize("bad", [1e-3, 0.5, 2.0])
def test_delta_at_or_above_one_over_n_is_refused(bad: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_delta(bad, 1000)
    message = str(caught.value)
    assert "delta" in message
    assert "less than 1/rows = 1/1000 = 0.001" in message
    assert "default is 1/(10·rows) = 0.0001" in message


def test_delta_must_be_positive() -> None:
    with pytest.raises(InvalidInput, match=r"delta must be a finite number greater than 0"):
        check_delta(0.0, 1000)
    assert check_delta(9.9e-4, 1000) == 9.9e-4


@pytest.mark.parametrize("bad", [0.0, -0.5])
def test_clipping_norm_must_be_positive(bad: float) -> None:
    with pytest.raises(InvalidInput, match=r"clipping_norm must be a finite number greater than 0"):
        check_clipping(bad)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_sample_rate_must_be_a_probability(bad: float) -> None:
    with pytest.raises(InvalidInput, match=r"sample_rate must be greater than 0 and at most 1"):
        check_sample_rate(bad)
    assert check_sample_rate(1.0) == 1.0


def test_noise_too_small_for_the_cap_names_the_spend_and_the_fix() -> None:
    setting = (0.05, 200, 1e-5)
    spend = epsilon_for(0.7, *setting)
    needed = noise_for_epsilon(2.0, *setting)
    with pytest.raises(InvalidInput) as caught:
        check_noise_meets_cap(0.7, *setting, 2.0, "pld")
    message = str(caught.value)
    assert f"noise_multiplier 0.7 would spend ε = {spend:.4g}" in message
    assert "epsilon cap 2" in message
    shown = float(message.split("must be at least ")[1].split()[0])
    assert needed <= shown <= needed + 1e-3
    assert check_noise_meets_cap(shown, *setting, 2.0, "pld") <= 2.0  # typing it back in passes


def test_cap_no_noise_can_meet_says_so() -> None:
    with pytest.raises(InvalidInput, match=r"no noise_multiplier up to 1000 meets it"):
        check_noise_meets_cap(1.0, 1.0, 1000, 1e-5, 1e-4, "pld")


def test_plan_calibrates_noise_from_a_cap() -> None:
    plan = plan_dp_sgd(rows=2000, clipping_norm=1.0, batch_size=100, steps=300, epsilon_cap=3.0)
    assert isinstance(plan, PrivacyPlan)
    assert plan.sample_rate == pytest.approx(0.05)
    assert plan.delta == pytest.approx(5e-5)
    assert plan.accountant == "pld"
    assert plan.epsilon <= 3.0
    assert plan.epsilon == pytest.approx(
        epsilon_for(plan.noise_multiplier, 0.05, 300, 5e-5), rel=1e-9
    )
    assert epsilon_for(plan.noise_multiplier * 0.99, 0.05, 300, 5e-5) > 3.0
    assert plan.as_dict()["steps"] == 300


def test_plan_reports_epsilon_for_a_given_noise() -> None:
    plan = plan_dp_sgd(
        rows=1000,
        clipping_norm=0.5,
        batch_size=10,
        steps=1000,
        noise_multiplier=1.0,
        delta=1e-5,
        accountant="rdp",
    )
    assert plan.noise_multiplier == 1.0
    assert plan.epsilon == pytest.approx(_direct(1.0, 0.01, 1000, 1e-5, "rdp"), rel=1e-6)


def test_plan_with_noise_and_cap_checks_one_against_the_other() -> None:
    ok = plan_dp_sgd(
        rows=1000,
        clipping_norm=1.0,
        batch_size=10,
        steps=1000,
        noise_multiplier=1.0,
        epsilon_cap=2.0,
        delta=1e-5,
    )
    assert ok.epsilon == pytest.approx(1.83, abs=0.02)
    with pytest.raises(InvalidInput, match=r"over the epsilon cap 1\b"):
        plan_dp_sgd(
            rows=1000,
            clipping_norm=1.0,
            batch_size=10,
            steps=1000,
            noise_multiplier=1.0,
            epsilon_cap=1.0,
            delta=1e-5,
        )


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({}, r"epsilon_cap .* or a noise_multiplier"),
        ({"epsilon_cap": 1.0, "batch_size": 5000}, r"batch_size 5000 is larger than the 1000 rows"),
        ({"epsilon_cap": 1.0, "delta": 0.01}, r"less than 1/rows"),
        ({"epsilon_cap": 1.0, "clipping_norm": 0.0}, r"clipping_norm"),
        ({"epsilon_cap": 1.0, "steps": 0}, r"steps must be a whole number of at least 1"),
        ({"noise_multiplier": 0.0}, r"noise_multiplier must be a finite number greater than 0"),
        ({"epsilon_cap": -2.0}, r"epsilon_cap must be a finite number greater than 0"),
        ({"epsilon_cap": 1.0, "accountant": "gdp"}, r"accountant must be one of pld, rdp"),
    ],
)
def test_plan_refuses_bad_parameters(changes: dict, pattern: str) -> None:
    arguments: dict = {"rows": 1000, "clipping_norm": 1.0, "batch_size": 10, "steps": 100}
    arguments.update(changes)
    with pytest.raises(InvalidInput, match=pattern):
        plan_dp_sgd(**arguments)


def test_the_library_grid_is_dp_accountings_default() -> None:
    import inspect

    from kumiai.domain.privacy import LIBRARY_DISCRETIZATION

    default = inspect.signature(PLDAccountant.__init__).parameters["value_discretization_interval"]
    assert default.default == LIBRARY_DISCRETIZATION


@pytest.mark.parametrize(
    ("sigma", "q", "steps", "delta"),
    [(1.0, 0.01, 1000, 1e-5), (1.2, 0.1, 37, 1e-4), (0.6, 1.0, 5, 1e-6), (4.0, 0.3, 1, 1e-5)],
)
def test_the_cached_step_gives_exactly_what_the_accountant_gives(
    sigma: float, q: float, steps: int, delta: float
) -> None:
    """Auditors recompute ε with PLDAccountant: the node's faster path must agree to the bit."""
    from kumiai.domain.privacy import epsilon_for

    library = PLDAccountant()
    library.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
        )
    )
    assert epsilon_for(sigma, q, steps, delta, "pld") == library.get_epsilon(delta)
