"""A small multilayer perceptron in numpy: ReLU hidden layers, sigmoid or softmax output.

The `mlp` family of the model interface. It exists for what a linear model cannot learn
(interactions such as "high torque *and* low speed fails"), and it keeps what federated
training and record-level DP-SGD need: parameters as plain arrays, every one federated,
and per-example gradients by an explicit backward pass, so DP-SGD clips each example's
gradient exactly as it does the logistic model's, and the accounting is the same.

Initialisation is seeded (He for the hidden layers, Glorot-like for the output), so the
coordinator's starting model is the same for every run of a job's seed.
"""

from itertools import pairwise
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
    unflatten,
)


class MLP:
    """Layers `weights[i]` (fan-in x fan-out) and `biases[i]`; `arrays` interleaves them."""

    family = "mlp"

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        *,
        hidden: tuple[int, ...] = (32,),
        l2: float = 1e-3,
        seed: int = 0,
        positive_weight: float = 1.0,
    ) -> None:
        if n_classes < 2:
            raise ValueError("a classifier needs at least two classes")
        if not hidden or min(hidden) < 1:
            raise ValueError(f"an MLP needs at least one hidden layer of 1+ units, got {hidden}")
        self.n_classes = n_classes
        self.l2 = l2
        self.positive_weight = positive_weight
        rng = np.random.default_rng(seed)
        sizes = [n_features, *hidden, 1 if n_classes == 2 else n_classes]
        self.weights: list[FloatArray] = []
        self.biases: list[FloatArray] = []
        for layer, (fan_in, fan_out) in enumerate(pairwise(sizes)):
            last = layer == len(hidden)
            scale = np.sqrt((1.0 if last else 2.0) / max(fan_in, 1))
            self.weights.append(rng.normal(0.0, scale, size=(fan_in, fan_out)))
            self.biases.append(np.zeros(fan_out))
        self.classes_: NDArray[Any] = np.arange(n_classes)

    # -- parameters as arrays, the unit of federated exchange -------------------------
    @property
    def arrays(self) -> list[FloatArray]:
        return [a.copy() for pair in zip(self.weights, self.biases, strict=True) for a in pair]

    @arrays.setter
    def arrays(self, values: list[FloatArray]) -> None:
        values = [np.asarray(v, dtype=np.float64) for v in values]
        mine = self.arrays
        if len(values) != len(mine) or any(
            v.shape != m.shape for v, m in zip(values, mine, strict=True)
        ):
            raise ValueError(
                f"parameter shapes {[v.shape for v in values]} do not match the model's "
                f"{[m.shape for m in mine]}"
            )
        self.weights = [v.copy() for v in values[0::2]]
        self.biases = [v.copy() for v in values[1::2]]

    @property
    def local_arrays(self) -> list[FloatArray]:
        return []

    # -- prediction -------------------------------------------------------------------
    def _forward(self, X: FloatArray) -> tuple[list[FloatArray], FloatArray]:
        """(each layer's input, output scores); a hidden layer's input > 0 marks active units."""
        inputs = [X]
        for W, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            inputs.append(np.maximum(inputs[-1] @ W + b, 0.0))
        return inputs, inputs[-1] @ self.weights[-1] + self.biases[-1]

    def predict_proba(self, X: FloatArray) -> FloatArray:
        return output_proba(self._forward(X)[1], self.n_classes)

    def predict(self, X: FloatArray) -> NDArray[Any]:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    # -- loss and gradients -----------------------------------------------------------
    def _deltas(self, X: FloatArray, y: IntArray) -> tuple[list[FloatArray], list[FloatArray]]:
        """Backward pass: each layer's input and d(loss_i)/d(layer output), per example."""
        inputs, scores = self._forward(X)
        delta = output_residual(output_proba(scores, self.n_classes), y, self.n_classes)
        weights = example_weights(y, self.n_classes, self.positive_weight)
        if weights is not None:
            delta = delta * weights[:, None]
        deltas = [delta]
        for layer in range(len(self.weights) - 1, 0, -1):
            delta = (delta @ self.weights[layer].T) * (inputs[layer] > 0)
            deltas.insert(0, delta)
        return inputs, deltas

    def loss(self, X: FloatArray, y: IntArray) -> float:
        proba = np.clip(self.predict_proba(X)[np.arange(len(y)), y], 1e-12, 1.0)
        losses = -np.log(proba)
        weights = example_weights(y, self.n_classes, self.positive_weight)
        if weights is not None:
            losses = losses * weights
        penalty = 0.5 * self.l2 * sum(float(np.sum(W**2)) for W in self.weights)
        return float(losses.mean() + penalty)

    def gradient(self, X: FloatArray, y: IntArray) -> list[FloatArray]:
        """Mean gradient over the rows, L2 included, in the order of `arrays`."""
        inputs, deltas = self._deltas(X, y)
        n = max(len(y), 1)
        out: list[FloatArray] = []
        for a, d, W in zip(inputs, deltas, self.weights, strict=True):
            out += [a.T @ d / n + self.l2 * W, d.sum(axis=0) / n]
        return out

    def per_example_gradients(self, X: FloatArray, y: IntArray) -> FloatArray:
        """Row i is example i's flattened gradient (no L2), laid out as `arrays` ravelled."""
        inputs, deltas = self._deltas(X, y)
        n = len(y)
        parts: list[FloatArray] = []
        for a, d in zip(inputs, deltas, strict=True):
            parts += [(a[:, :, None] * d[:, None, :]).reshape(n, -1), d]
        return np.hstack(parts)

    def penalty_gradients(self) -> list[FloatArray]:
        return [
            g
            for W, b in zip(self.weights, self.biases, strict=True)
            for g in (
                self.l2 * W,
                np.zeros_like(b),
            )
        ]

    # -- training ---------------------------------------------------------------------
    def apply_gradients(
        self,
        gradients: list[FloatArray],
        lr: float,
        prox_mu: float = 0.0,
        anchor: list[FloatArray] | None = None,
    ) -> None:
        current = self.arrays
        if prox_mu and anchor is not None:
            gradients = [
                g + prox_mu * (p - a) for g, p, a in zip(gradients, current, anchor, strict=True)
            ]
        self.arrays = [p - lr * g for p, g in zip(current, gradients, strict=True)]

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

    def fit(self, X: FloatArray, y: IntArray, max_iter: int = 500) -> "MLP":
        """Full-batch L-BFGS from the seeded start: the local-only and pooled yardsticks."""
        like = self.arrays

        def objective(theta: FloatArray) -> tuple[float, FloatArray]:
            self.arrays = unflatten(theta, like)
            return self.loss(X, y), np.concatenate([g.ravel() for g in self.gradient(X, y)])

        start = np.concatenate([a.ravel() for a in like])
        result = minimize(
            objective, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
        )
        self.arrays = unflatten(result.x, like)
        return self
