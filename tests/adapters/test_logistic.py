"""The numpy GLM: gradients are right, per-example gradients add up, fit matches sklearn."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression as SkLogistic

from kumiai.adapters.models.logistic import LogisticRegression


def _data(n_classes: int, n: int = 200, d: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    logits = X @ rng.normal(size=(d, n_classes))
    y = np.array([rng.choice(n_classes, p=np.exp(r) / np.exp(r).sum()) for r in logits])
    return X, y


@pytest.mark.parametrize("n_classes", [2, 3])
def test_gradient_matches_finite_differences(n_classes: int) -> None:
    X, y = _data(n_classes)
    model = LogisticRegression(X.shape[1], n_classes, l2=0.1)
    rng = np.random.default_rng(1)
    model.arrays = [rng.normal(size=model.coef_.shape), rng.normal(size=model.intercept_.shape)]
    g_coef, g_int = model.gradient(X, y)
    eps = 1e-6
    for index in [(0, 0), (3, model.coef_.shape[1] - 1)]:
        base = model.coef_.copy()
        model.coef_[index] += eps
        up = model.loss(X, y)
        model.coef_ = base.copy()
        model.coef_[index] -= eps
        down = model.loss(X, y)
        model.coef_ = base
        assert g_coef[index] == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-7)
    assert g_int.shape == model.intercept_.shape


@pytest.mark.parametrize("n_classes", [2, 4])
def test_per_example_gradients_average_to_the_data_gradient(n_classes: int) -> None:
    X, y = _data(n_classes)
    model = LogisticRegression(X.shape[1], n_classes, l2=0.5)
    model.coef_ += 0.3
    rows = model.per_example_gradients(X, y)
    assert rows.shape == (len(y), model.coef_.size + model.intercept_.size)
    g_coef, g_int = model.gradient(X, y)
    data_part = np.concatenate([(g_coef - model.l2 * model.coef_).ravel(), g_int])
    np.testing.assert_allclose(rows.mean(axis=0), data_part, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_fit_matches_scikit_learn(n_classes: int) -> None:
    X, y = _data(n_classes, n=400)
    l2 = 0.01
    ours = LogisticRegression(X.shape[1], n_classes, l2=l2).fit(X, y)
    # sklearn minimises C * sum(loss) + ||w||^2 / 2; ours mean(loss) + l2 ||w||^2 / 2.
    theirs = SkLogistic(C=1.0 / (l2 * len(y)), tol=1e-10, max_iter=5000).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-4)
    assert (ours.predict(X) == theirs.predict(X)).mean() > 0.99


def test_predict_proba_rows_sum_to_one_and_predict_returns_classes() -> None:
    X, y = _data(3)
    model = LogisticRegression(X.shape[1], 3).fit(X, y)
    model.classes_ = np.array(["a", "b", "c"], dtype=object)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
    assert set(model.predict(X)) <= {"a", "b", "c"}


def test_sgd_with_a_proximal_term_stays_closer_to_the_anchor() -> None:
    X, y = _data(2)
    free, held = (LogisticRegression(X.shape[1], 2) for _ in range(2))
    anchor = free.arrays
    for model, mu in ((free, 0.0), (held, 5.0)):
        model.sgd(
            X,
            y,
            epochs=5,
            lr=0.1,
            batch_size=16,
            rng=np.random.default_rng(0),
            prox_mu=mu,
            anchor=anchor,
        )
    distance = [np.linalg.norm(m.coef_ - anchor[0]) for m in (free, held)]
    assert distance[1] < distance[0]


def test_parameters_of_the_wrong_shape_are_refused() -> None:
    model = LogisticRegression(3, 2)
    with pytest.raises(ValueError, match="do not match"):
        model.arrays = [np.zeros((4, 1)), np.zeros(1)]
