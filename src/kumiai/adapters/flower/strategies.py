"""Flower's own strategies, configured for a handful of silos (never wait for absent nodes)."""

from flwr.serverapp.strategy import FedAdam, FedAvg, FedProx, FedYogi, Strategy

from kumiai.domain.training import TrainingSettings


def make_strategy(settings: TrainingSettings) -> Strategy:
    # min_* = 1: the coordinator trains with whichever admitted nodes remain, and never
    # blocks waiting for a node that refused.
    common = {"min_train_nodes": 1, "min_evaluate_nodes": 1, "min_available_nodes": 1}
    if settings.strategy == "fedprox":
        return FedProx(proximal_mu=settings.local_proximal_mu, **common)
    if settings.strategy == "fedadam":
        return FedAdam(eta=settings.server_learning_rate, eta_l=settings.learning_rate, **common)
    if settings.strategy == "fedyogi":
        return FedYogi(eta=settings.server_learning_rate, eta_l=settings.learning_rate, **common)
    return FedAvg(**common)
