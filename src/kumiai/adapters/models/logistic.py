"""Logistic regression in numpy: binary (sigmoid) and multinomial (softmax), with L2.

Written by hand rather than taken from scikit-learn because federated training and
record-level DP-SGD need what sklearn does not expose: parameters as plain arrays to
average, warm-started local SGD with a proximal term, and per-example gradients. It is the
`logistic` family of the model interface (`kumiai.adapters.models.interface.Model`).
"""

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from kumiai.adapters.models.interface import (
    FloatArray,
    IntArray,
    example_weights,
    minibatch_sgd,
    output_proba,
    output_residual,
)

__all__ = ["FloatArray", "IntArray", "LogisticRegression"]


class LogisticRegression:
    """Weights `coef_` (features x k) and `intercept_` (k), k = 1 for binary problems.

    Every parameter is federated; it starts at zero whatever the seed.
    """

    family = "logistic"

    def __init__(
        self, n_features: int, n_classes: int, l2: float = 1e-3, positive_weight: float = 1.0
    ) -> None:
        if n_classes < 2:
            raise ValueError("a classifier needs at least two classes")
        self.n_classes = n_classes
        self.l2 = l2
        self.positive_weight = positive_weight
        width = 1 if n_classes == 2 else n_classes
        self.coef_: FloatArray = np.zeros((n_features, width))
        self.intercept_: FloatArray = np.zeros(width)
        self.classes_: NDArray[Any] = np.arange(n_classes)

    # -- parameters as arrays, the unit of federated exchange -------------------------
    @property
    def arrays(self) -> list[FloatArray]:
        return [self.coef_.copy(), self.intercept_.copy()]

    @arrays.setter
    def arrays(self, values: list[FloatArray]) -> None:
        coef, intercept = (np.asarray(v, dtype=np.float64) for v in values)
        if coef.shape != self.coef_.shape or intercept.shape != self.intercept_.shape:
            raise ValueError(
                f"parameter shapes {coef.shape}/{intercept.shape} do not match the model's "
                f"{self.coef_.shape}/{self.intercept_.shape}"
            )
        self.coef_, self.intercept_ = coef.copy(), intercept.copy()

    @property
    def local_arrays(self) -> list[FloatArray]:
        return []

    # -- prediction -------------------------------------------------------------------
    def decision_function(self, X: FloatArray) -> FloatArray:
        return X @ self.coef_ + self.intercept_

    def predict_proba(self, X: FloatArray) -> FloatArray:
        return output_proba(self.decision_function(X), self.n_classes)

    def predict(self, X: FloatArray) -> NDArray[Any]:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    # -- loss and gradients -----------------------------------------------------------
    def _residual(self, X: FloatArray, y: IntArray) -> FloatArray:
        """d(loss_i)/d(score_i), each row times its class weight, shape (n, k)."""
        residual = output_residual(self.predict_proba(X), y, self.n_classes)
        weights = example_weights(y, self.n_classes, self.positive_weight)
        return residual if weights is None else residual * weights[:, None]

    def loss(self, X: FloatArray, y: IntArray) -> float:
        proba = np.clip(self.predict_proba(X)[np.arange(len(y)), y], 1e-12, 1.0)
        losses = -np.log(proba)
        weights = example_weights(y, self.n_classes, self.positive_weight)
        if weights is not None:
            losses = losses * weights
        return float(losses.mean() + 0.5 * self.l2 * np.sum(self.coef_**2))

    def gradient(self, X: FloatArray, y: IntArray) -> list[FloatArray]:
        residual = self._residual(X, y)
        n = max(len(y), 1)
        return [X.T @ residual / n + self.l2 * self.coef_, residual.sum(axis=0) / n]

    def per_example_gradients(self, X: FloatArray, y: IntArray) -> FloatArray:
        """Row i is the flattened gradient of example i's loss (without the L2 term).

        Shape (n, features*k + k), laid out as [coef.ravel(), intercept]. DP-SGD clips these
        rows before summing; the data-independent L2 term is added after clipping.
        """
        residual = self._residual(X, y)
        coef_grads = (X[:, :, None] * residual[:, None, :]).reshape(len(y), -1)
        return np.hstack([coef_grads, residual])

    def penalty_gradients(self) -> list[FloatArray]:
        return [self.l2 * self.coef_, np.zeros_like(self.intercept_)]

    def apply_gradients(
        self,
        gradients: list[FloatArray],
        lr: float,
        prox_mu: float = 0.0,
        anchor: list[FloatArray] | None = None,
    ) -> None:
        g_coef, g_int = gradients
        self.step(g_coef, g_int, lr, prox_mu, anchor)

    # -- training ---------------------------------------------------------------------
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
        """Mini-batch SGD; with prox_mu > 0 it adds FedProx's pull towards `anchor`."""
        minibatch_sgd(
            self, X, y, epochs=epochs, lr=lr, batch_size=batch_size, rng=rng,
            prox_mu=prox_mu, anchor=anchor,
        )  # fmt: skip

    def step(
        self,
        g_coef: FloatArray,
        g_int: FloatArray,
        lr: float,
        prox_mu: float = 0.0,
        anchor: list[FloatArray] | None = None,
    ) -> None:
        """One gradient step; with prox_mu > 0 it adds FedProx's pull towards `anchor`."""
        if prox_mu and anchor is not None:
            g_coef = g_coef + prox_mu * (self.coef_ - anchor[0])
            g_int = g_int + prox_mu * (self.intercept_ - anchor[1])
        self.coef_ -= lr * g_coef
        self.intercept_ -= lr * g_int

    def fit(self, X: FloatArray, y: IntArray, max_iter: int = 500) -> "LogisticRegression":
        """Full-batch L-BFGS to the optimum: the pooled and local-only reference models."""
        shapes = [self.coef_.shape, self.intercept_.shape]
        split = self.coef_.size

        def unpack(theta: FloatArray) -> None:
            self.coef_ = theta[:split].reshape(shapes[0]).copy()
            self.intercept_ = theta[split:].reshape(shapes[1]).copy()

        def objective(theta: FloatArray) -> tuple[float, FloatArray]:
            unpack(theta)
            g_coef, g_int = self.gradient(X, y)
            return self.loss(X, y), np.concatenate([g_coef.ravel(), g_int])

        start = np.concatenate([self.coef_.ravel(), self.intercept_])
        result = minimize(
            objective, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
        )
        unpack(result.x)
        return self
