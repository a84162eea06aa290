"""The strategy table serves both Flower APIs with the same options."""

from dataclasses import replace

import numpy as np
import pytest
from flwr.common import ndarrays_to_parameters
from flwr.server import strategy as legacy

from kumiai.adapters.flower.strategies import (
    FLOWER_STRATEGIES,
    make_legacy_strategy,
    make_strategy,
)
from kumiai.domain.training import STRATEGIES, TrainingSettings


def test_every_strategy_a_job_may_name_is_in_the_table() -> None:
    assert set(FLOWER_STRATEGIES) == set(STRATEGIES)


@pytest.mark.parametrize("name", STRATEGIES)
def test_both_apis_get_the_same_settings(name: str) -> None:
    settings = replace(
        TrainingSettings(),
        strategy=name,
        proximal_mu=0.25 if name == "fedprox" else 0.0,
        server_learning_rate=0.07,
        learning_rate=0.03,
    )
    modern = make_strategy(settings)
    old = make_legacy_strategy(settings, initial_parameters=ndarrays_to_parameters([np.zeros(2)]))
    assert isinstance(modern, FLOWER_STRATEGIES[name].message_api)
    assert isinstance(old, FLOWER_STRATEGIES[name].legacy_api)
    assert isinstance(old, legacy.Strategy)
    for option, value in FLOWER_STRATEGIES[name].options(settings).items():
        assert getattr(modern, option) == value == getattr(old, option), option
