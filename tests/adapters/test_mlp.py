"""The numpy MLP: exact gradients, per-example gradients DP-SGD can clip, seeded, non-linear."""

import numpy as np
import pytest

from kumiai.adapters.models.dpsgd import clip_rows, dp_sgd
from kumiai.adapters.models.interface import unflatten
from kumiai.adapters.models.logistic import LogisticRegression
from kumiai.adapters.models.mlp import MLP


def _data(n_classes: int, n: int = 60, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, n_classes, size=n)
    return X, y


def _xor(n: int = 400, seed: int = 0):
    """Two clusters per class on the diagonals: no line separates them."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64)
    return X, y


def _flat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([a.ravel() for a in arrays])


@pytest.mark.parametrize(
    ("n_classes", "hidden", "weight"), [(2, (6,), 1.0), (3, (5, 4), 1.0), (2, (5, 3), 7.0)]
)
def test_gradient_matches_finite_differences(n_classes: int, hidden: tuple, weight: float) -> None:
    X, y = _data(n_classes)
    model = MLP(X.shape[1], n_classes, hidden=hidden, l2=0.05, seed=1, positive_weight=weight)
    like = model.arrays
    theta = _flat(like)
    analytic = _flat(model.gradient(X, y))
    eps = 1e-6
    for i in np.random.default_rng(2).choice(theta.size, size=25, replace=False):
        up, down = theta.copy(), theta.copy()
        up[i] += eps
        down[i] -= eps
        model.arrays = unflatten(up, like)
        loss_up = model.loss(X, y)
        model.arrays = unflatten(down, like)
        loss_down = model.loss(X, y)
        assert analytic[i] == pytest.approx((loss_up - loss_down) / (2 * eps), abs=1e-6)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_per_example_gradients_add_up_to_the_batch_gradient(n_classes: int) -> None:
    X, y = _data(n_classes)
    model = MLP(X.shape[1], n_classes, hidden=(7, 5), l2=0.3, seed=4)
    rows = model.per_example_gradients(X, y)
    assert rows.shape == (len(y), sum(a.size for a in model.arrays))
    without_l2 = _flat(model.gradient(X, y)) - _flat(model.penalty_gradients())
    np.testing.assert_allclose(rows.mean(axis=0), without_l2, atol=1e-12)
    one = model.per_example_gradients(X[3:4], y[3:4])[0]
    np.testing.assert_allclose(rows[3], one, atol=1e-12)  # a row reads only its own example


def test_clipping_bounds_every_examples_pull_in_dp_sgd() -> None:
    """σ = 0 and q = 1: one step moves the data term by at most lr·C·n / (q·n) = lr·C."""
    X, y = _data(2, n=40)
    X[0] *= 1000.0  # an outlier whose raw gradient is huge
    model = MLP(X.shape[1], 2, hidden=(8,), l2=0.0, seed=0)
    rows = model.per_example_gradients(X, y)
    assert np.linalg.norm(rows, axis=1).max() > 10.0
    clipped = clip_rows(rows, 0.5)
    assert np.linalg.norm(clipped, axis=1).max() == pytest.approx(0.5)
    before = _flat(model.arrays)
    dp_sgd(
        model, X, y, steps=1, sample_rate=1.0, noise_multiplier=0.0, clipping_norm=0.5,
        learning_rate=1.0, rng=np.random.default_rng(0),
    )  # fmt: skip
    moved = _flat(model.arrays) - before
    np.testing.assert_allclose(moved, -clipped.mean(axis=0), atol=1e-12)
    assert np.linalg.norm(moved) <= 0.5 + 1e-12


def test_without_noise_or_clipping_dp_sgd_is_gradient_descent() -> None:
    X, y = _data(2)
    model = MLP(X.shape[1], 2, hidden=(6,), l2=0.05, seed=2)
    reference = MLP(X.shape[1], 2, hidden=(6,), l2=0.05, seed=2)
    dp_sgd(
        model, X, y, steps=3, sample_rate=1.0, noise_multiplier=0.0, clipping_norm=1e9,
        learning_rate=0.2, rng=np.random.default_rng(0),
    )  # fmt: skip
    for _ in range(3):
        reference.apply_gradients(reference.gradient(X, y), 0.2)
    np.testing.assert_allclose(_flat(model.arrays), _flat(reference.arrays), atol=1e-12)


def test_the_same_seed_trains_the_same_model_and_another_seed_does_not() -> None:
    X, y = _xor(200)

    def trained(seed: int) -> np.ndarray:
        model = MLP(2, 2, hidden=(16,), seed=seed)
        model.sgd(X, y, epochs=3, lr=0.1, batch_size=16, rng=np.random.default_rng(seed))
        return _flat(model.arrays)

    np.testing.assert_array_equal(trained(7), trained(7))
    assert not np.array_equal(trained(7), trained(8))


def test_it_learns_xor_which_the_logistic_model_cannot() -> None:
    X, y = _xor()
    X_test, y_test = _xor(seed=1)
    mlp = MLP(2, 2, hidden=(32,), l2=1e-4, seed=0).fit(X, y)
    logistic = LogisticRegression(2, 2, l2=1e-4).fit(X, y)
    assert (mlp.predict(X_test) == y_test).mean() >= 0.95
    assert (logistic.predict(X_test) == y_test).mean() <= 0.65
    federated_step = MLP(2, 2, hidden=(32,), seed=0)
    for epoch in range(150):  # plain local SGD, as a node trains, also gets there
        federated_step.sgd(X, y, epochs=1, lr=0.3, batch_size=32, rng=np.random.default_rng(epoch))
    assert (federated_step.predict(X_test) == y_test).mean() >= 0.9


def test_a_private_mlp_still_learns_xor() -> None:
    X, y = _xor(2000)
    X_test, y_test = _xor(seed=1)
    model = MLP(2, 2, hidden=(32,), l2=0.0, seed=0)
    dp_sgd(
        model, X, y, steps=600, sample_rate=0.05, noise_multiplier=1.0, clipping_norm=1.0,
        learning_rate=0.5, rng=np.random.default_rng(0),
    )  # fmt: skip
    assert (model.predict(X_test) == y_test).mean() >= 0.85


def test_parameters_of_another_shape_are_refused() -> None:
    model = MLP(3, 2, hidden=(4,))
    with pytest.raises(ValueError, match="do not match"):
        model.arrays = MLP(3, 2, hidden=(5,)).arrays
