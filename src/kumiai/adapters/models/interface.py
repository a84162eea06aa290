"""The model interface: what federated training, DP-SGD and the yardsticks ask of a model.

A model family is pluggable when it can: start from a feature count and a seed, say which of
its parameters are federated (averaged by the coordinator) and which stay at the node, give
every example's own gradient (DP-SGD clips each one before summing), take a gradient step,
and predict probabilities. `kumiai.adapters.models.families.model_for` builds one from the
job's settings; nothing outside this package names a concrete family.

The helpers below are the output layer every family shares (sigmoid for two classes,
softmax otherwise) and the per-example class weights (failures are rare, so a positive
example may count more than a negative one).
"""

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit, softmax

from kumiai.domain.errors import InvalidInput

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class Model(Protocol):
    """One model family behind the federation. Gradients exclude the data-free L2 term."""

    n_classes: int
    l2: float
    positive_weight: float  # a positive example's loss weight (two classes; 1: unweighted)

    @property
    def arrays(self) -> list[FloatArray]:
        """The federated parameters, copied: what leaves the node and is averaged."""
        ...

    @arrays.setter
    def arrays(self, values: list[FloatArray]) -> None: ...

    @property
    def local_arrays(self) -> list[FloatArray]:
        """Parameters that stay at the node and are never sent (none for a global model)."""
        ...

    def predict_proba(self, X: FloatArray) -> FloatArray:
        """(n, classes) probabilities."""
        ...

    def loss(self, X: FloatArray, y: IntArray) -> float:
        """Mean (class-weighted) log loss plus the L2 term."""
        ...

    def gradient(self, X: FloatArray, y: IntArray) -> list[FloatArray]:
        """The mean gradient over the rows, L2 included, in the order of `arrays`."""
        ...

    def per_example_gradients(self, X: FloatArray, y: IntArray) -> FloatArray:
        """Row i: the flattened gradient of example i's loss over `arrays`, in their order."""
        ...

    def penalty_gradients(self) -> list[FloatArray]:
        """The L2 term's gradient per array; it reads no data, so DP adds it after the noise."""
        ...

    def apply_gradients(
        self,
        gradients: list[FloatArray],
        lr: float,
        prox_mu: float = 0.0,
        anchor: list[FloatArray] | None = None,
    ) -> None:
        """One step down `gradients`; prox_mu > 0 adds FedProx's pull towards `anchor`."""
        ...

    def sgd(
        self,
        X: FloatArray,
        y: IntArray,
        *,
        epochs: int,
        lr: float,
        batch_size: int,
        rng: np.random.Generator,
        prox_mu: float = 0.0,
        anchor: list[FloatArray] | None = None,
    ) -> None:
        """Non-private local mini-batch SGD (one federated round at a node)."""
        ...

    def fit(self, X: FloatArray, y: IntArray, max_iter: int = 500) -> Any:
        """Full-batch L-BFGS: the local-only and pooled yardsticks. Returns the model."""
        ...


def unflatten(flat: FloatArray, like: list[FloatArray]) -> list[FloatArray]:
    """Cut one flat vector into arrays shaped as `like` (the inverse of concatenating ravels)."""
    out, start = [], 0
    for array in like:
        out.append(flat[start : start + array.size].reshape(array.shape))
        start += array.size
    return out


def output_proba(scores: FloatArray, n_classes: int) -> FloatArray:
    """Sigmoid over the one score column of a binary model, softmax over k otherwise."""
    if n_classes == 2:
        p = expit(scores[:, 0])
        return np.column_stack([1.0 - p, p])
    return softmax(scores, axis=1)


def output_residual(proba: FloatArray, y: IntArray, n_classes: int) -> FloatArray:
    """d(loss_i)/d(score_i): probability minus one-hot target, shape (n, score columns)."""
    if n_classes == 2:
        return (proba[:, 1] - (y == 1))[:, None]
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y)), y] = 1.0
    return proba - onehot


def example_weights(y: IntArray, n_classes: int, positive_weight: float) -> FloatArray | None:
    """Each example's loss weight: `positive_weight` for class 1 of a binary task, else 1.

    None when every weight is 1, so an unweighted model computes exactly as before. The
    mean stays over n examples (not over the weights' sum): one example's weighted gradient
    is still clipped to C by DP-SGD, so weighting costs no privacy.
    """
    if positive_weight == 1.0:
        return None
    if n_classes != 2:
        raise InvalidInput(
            f"a positive-class weight applies to two-class targets; this one has {n_classes} "
            "classes (leave --positive-weight at 1)"
        )
    return np.where(y == 1, positive_weight, 1.0)


def minibatch_sgd(
    model: "Model",
    X: FloatArray,
    y: IntArray,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    rng: np.random.Generator,
    prox_mu: float = 0.0,
    anchor: list[FloatArray] | None = None,
) -> None:
    """Mini-batch SGD for any family; with prox_mu > 0, FedProx's pull towards `anchor`."""
    anchor = anchor if anchor is not None else model.arrays
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            batch = order[start : start + batch_size]
            model.apply_gradients(model.gradient(X[batch], y[batch]), lr, prox_mu, anchor)


def proximal_fit(
    model: "Model", X: FloatArray, y: IntArray, *, mu: float, max_iter: int = 500
) -> None:
    """Full-batch L-BFGS from the model's parameters to the optimum of the rows' loss plus
    μ/2·‖θ − θ₀‖², θ₀ the parameters it starts from (Ditto-style personalisation).

    μ = 0 is the rows' own optimum (the site alone, from the federated start); a large μ
    keeps the federated model. In between, the site's own data pull only as far as they
    outweigh the pull back. Example: on the heart data, μ=0.01 lets Hungary keep its own
    optimum (AUC 0.912) while VA Long Beach stays near the federation (0.696 against 0.627
    alone).
    """
    from scipy.optimize import minimize  # lazy, as the families' fit

    like = model.arrays
    anchor = np.concatenate([a.ravel() for a in like])

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        model.arrays = unflatten(theta, like)
        gradient = np.concatenate([g.ravel() for g in model.gradient(X, y)])
        pull = theta - anchor
        return model.loss(X, y) + 0.5 * mu * float(pull @ pull), gradient + mu * pull

    result = minimize(
        objective, anchor.copy(), jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
    )
    model.arrays = unflatten(result.x, like)
