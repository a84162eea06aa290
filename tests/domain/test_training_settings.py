"""Training settings refuse NaN and infinity, naming the command-line option."""

import math

import pytest

from kumiai.domain.errors import InvalidInput
from kumiai.domain.training import TrainingSettings

OPTIONS = {
    "learning_rate": "--lr",
    "l2": "--l2",
    "proximal_mu": "--mu",
    "server_learning_rate": "--server-lr",
    "test_fraction": "--test-fraction",
    "epsilon": "--epsilon",
    "noise_multiplier": "--noise-multiplier",
    "clipping_norm": "--clipping",
    "delta": "--delta",
}


@pytest.mark.parametrize("field", sorted(OPTIONS))
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_settings_are_refused_with_the_option(field: str, value: float) -> None:
    with pytest.raises(InvalidInput) as error:
        TrainingSettings(**{field: value})  # type: ignore[arg-type]
    assert f"({OPTIONS[field]}) must be a finite number" in str(error.value)


def test_finite_settings_and_absent_privacy_options_are_accepted() -> None:
    settings = TrainingSettings(learning_rate=1e-6, l2=0.0, epsilon=1.0, delta=1e-6)
    assert settings.private and TrainingSettings().epsilon is None
    assert TrainingSettings.from_json(settings.to_json()) == settings
