"""The model families a node knows, built from a job's settings.

The one place a family name becomes a model: the coordinator's starting parameters, each
node's local training and scoring, the yardsticks and coalition retraining all call
`model_for`, so they build the same model from the same signed settings.
"""

from collections.abc import Callable

from kumiai.adapters.models.interface import Model
from kumiai.adapters.models.logistic import LogisticRegression
from kumiai.adapters.models.mlp import MLP
from kumiai.domain.errors import InvalidInput
from kumiai.domain.training import TrainingSettings


def _logistic(settings: TrainingSettings, n_features: int, n_classes: int) -> Model:
    return LogisticRegression(
        n_features, n_classes, l2=settings.l2, positive_weight=settings.positive_weight
    )


def _mlp(settings: TrainingSettings, n_features: int, n_classes: int) -> Model:
    return MLP(
        n_features,
        n_classes,
        hidden=(settings.hidden_units,) * settings.hidden_layers,
        l2=settings.l2,
        seed=settings.seed,
        positive_weight=settings.positive_weight,
    )


FAMILIES: dict[str, Callable[[TrainingSettings, int, int], Model]] = {
    "logistic": _logistic,
    "mlp": _mlp,
}


def model_for(settings: TrainingSettings, n_features: int, n_classes: int) -> Model:
    """A fresh model of the settings' family, seeded by the job's seed."""
    build = FAMILIES.get(settings.model)
    if build is None:
        raise InvalidInput(
            f"model family {settings.model!r} is not known to this node; it knows: "
            + ", ".join(sorted(FAMILIES))
        )
    return build(settings, n_features, n_classes)
