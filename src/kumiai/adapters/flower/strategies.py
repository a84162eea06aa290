"""One table of Flower's strategies, for both of its APIs.

The plain path runs the Message-API strategies; SecAgg+ runs only on Flower's legacy API.
Each name maps to both classes and to the options that come from the job's settings, so the
two paths cannot drift apart (tau is set explicitly: the two APIs' defaults differ).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flwr.server import strategy as legacy
from flwr.serverapp.strategy import FedAdam, FedAvg, FedProx, FedYogi, Strategy

from kumiai.domain.training import TrainingSettings

Options = Callable[[TrainingSettings], dict[str, Any]]


def _none(settings: TrainingSettings) -> dict[str, Any]:
    return {}


def _proximal(settings: TrainingSettings) -> dict[str, Any]:
    return {"proximal_mu": settings.local_proximal_mu}


def _adaptive(settings: TrainingSettings) -> dict[str, Any]:
    return {"eta": settings.server_learning_rate, "eta_l": settings.learning_rate, "tau": 1e-3}


@dataclass(frozen=True)
class FlowerStrategy:
    message_api: type[Strategy]
    legacy_api: type[legacy.Strategy]
    options: Options


FLOWER_STRATEGIES: dict[str, FlowerStrategy] = {
    "fedavg": FlowerStrategy(FedAvg, legacy.FedAvg, _none),
    "fedprox": FlowerStrategy(FedProx, legacy.FedProx, _proximal),
    "fedadam": FlowerStrategy(FedAdam, legacy.FedAdam, _adaptive),
    "fedyogi": FlowerStrategy(FedYogi, legacy.FedYogi, _adaptive),
}


def make_strategy(settings: TrainingSettings) -> Strategy:
    """The Message-API strategy of the plain path."""
    entry = FLOWER_STRATEGIES[settings.strategy]
    # min_* = 1: the coordinator trains with whichever admitted nodes remain, and never
    # blocks waiting for a node that refused.
    common = {"min_train_nodes": 1, "min_evaluate_nodes": 1, "min_available_nodes": 1}
    return entry.message_api(**entry.options(settings), **common)


def make_legacy_strategy(settings: TrainingSettings, **common: Any) -> legacy.Strategy:
    """The legacy-API strategy SecAgg+ runs, with the caller's quorum and callbacks."""
    entry = FLOWER_STRATEGIES[settings.strategy]
    return entry.legacy_api(**entry.options(settings), **common)
