"""DP-SGD: without noise or clipping it is gradient descent; clipping bounds a row's pull;
the noise has the scale the accounting assumes; a private model still learns."""

import numpy as np
import pytest

from kumiai.adapters.models.dpsgd import clip_rows, dp_sgd
from kumiai.adapters.models.logistic import LogisticRegression
from kumiai.domain.errors import InvalidInput
from kumiai.domain.privacy import plan_dp_sgd


def _data(n_classes: int, n: int = 120, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    logits = 2.0 * X @ rng.normal(size=(d, n_classes))
    y = (logits.argmax(axis=1) if n_classes > 2 else (logits[:, 0] > logits[:, 1])).astype(np.int64)
    return X, y


def _model(X: np.ndarray, n_classes: int, l2: float = 0.05, seed: int = 3) -> LogisticRegression:
    model = LogisticRegression(X.shape[1], n_classes, l2=l2)
    rng = np.random.default_rng(seed)
    model.arrays = [
        0.3 * rng.normal(size=model.coef_.shape),
        rng.normal(size=model.intercept_.shape),
    ]
    return model


def _flat(model: LogisticRegression) -> np.ndarray:
    return np.concatenate([model.coef_.ravel(), model.intercept_])


def _one_step(model: LogisticRegression, X: np.ndarray, y: np.ndarray, **options) -> np.ndarray:
    """The parameter change of one DP-SGD step on a copy of `model`."""
    copy = LogisticRegression(X.shape[1], model.n_classes, l2=model.l2)
    copy.arrays = model.arrays
    settings = {"steps": 1, "sample_rate": 1.0, "noise_multiplier": 0.0, "learning_rate": 0.1}
    settings.update(options)
    dp_sgd(copy, X, y, rng=np.random.default_rng(settings.pop("seed", 0)), **settings)
    return _flat(copy) - _flat(model)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_without_noise_or_clipping_it_is_full_batch_gradient_descent(n_classes: int) -> None:
    X, y = _data(n_classes)
    model = _model(X, n_classes)
    reference = _model(X, n_classes)
    dp_sgd(
        model,
        X,
        y,
        steps=5,
        sample_rate=1.0,
        noise_multiplier=0.0,
        clipping_norm=1e9,
        learning_rate=0.2,
        rng=np.random.default_rng(0),
    )
    for _ in range(5):
        g_coef, g_int = reference.gradient(X, y)
        reference.coef_ -= 0.2 * g_coef
        reference.intercept_ -= 0.2 * g_int
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.intercept_, reference.intercept_, rtol=1e-10, atol=1e-12)
    assert not np.allclose(model.coef_, _model(X, n_classes).coef_)  # it did move


def test_fedprox_term_matches_the_plain_optimiser() -> None:
    X, y = _data(3)
    anchor = [np.full((X.shape[1], 3), 0.5), np.full(3, -0.5)]
    model, reference = _model(X, 3), _model(X, 3)
    dp_sgd(
        model,
        X,
        y,
        steps=3,
        sample_rate=1.0,
        noise_multiplier=0.0,
        clipping_norm=1e9,
        learning_rate=0.1,
        rng=np.random.default_rng(0),
        prox_mu=0.7,
        anchor=anchor,
    )
    reference.sgd(
        X,
        y,
        epochs=3,
        lr=0.1,
        batch_size=len(y),
        rng=np.random.default_rng(0),
        prox_mu=0.7,
        anchor=anchor,
    )
    np.testing.assert_allclose(_flat(model), _flat(reference), rtol=1e-10, atol=1e-12)


def test_clip_rows_bounds_norms_and_leaves_small_rows_alone() -> None:
    rows = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    clipped = clip_rows(rows, 1.0)
    np.testing.assert_allclose(np.linalg.norm(clipped, axis=1), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(clipped[0], [0.6, 0.8])
    np.testing.assert_array_equal(clipped[1:], rows[1:])


def _mislabelled(model: LogisticRegression, row: np.ndarray) -> int:
    """The label the model gets wrong for `row`, so that its gradient is not vanishingly small."""
    return int(1 - model.predict(row[None, :])[0])


def test_one_outlier_moves_the_update_by_at_most_its_clipped_share() -> None:
    X, y = _data(2, n=80)
    model = _model(X, 2, l2=0.0)
    lr, clip, n = 0.1, 0.5, len(y)
    X_out, y_out = X.copy(), y.copy()
    X_out[0] = [1e6, -1e6, 0.0, 3e5]  # swap one row for an extreme, mislabelled one
    y_out[0] = _mislabelled(model, X_out[0])
    bound = 2 * lr * clip / n  # replace-one: remove a clipped row, add a clipped row
    change = _one_step(model, X_out, y_out, clipping_norm=clip) - _one_step(
        model, X, y, clipping_norm=clip
    )
    assert 0.25 * bound < np.linalg.norm(change) <= bound * (1 + 1e-9)
    unclipped = _one_step(model, X_out, y_out, clipping_norm=1e12) - _one_step(
        model, X, y, clipping_norm=1e12
    )
    assert np.linalg.norm(unclipped) > 1e4 * bound  # without clipping the outlier dominates


def test_a_single_row_moves_the_model_by_at_most_lr_c_over_qn() -> None:
    X = np.array([[1e8, -5e7, 2.0]])
    model = _model(X, 2, l2=0.0)
    y = np.array([_mislabelled(model, X[0])])
    lr, clip = 0.3, 2.0
    step = _one_step(model, X, y, clipping_norm=clip, learning_rate=lr)
    # q = 1 and n = 1, and the row's raw gradient is enormous: clipping caps it at exactly C.
    assert np.linalg.norm(step) == pytest.approx(lr * clip / (1.0 * 1), rel=1e-9)


def test_noise_has_the_scale_the_accounting_assumes() -> None:
    X, y = _data(2, n=50)
    model = _model(X, 2)
    lr, sigma, clip = 0.1, 2.0, 1.5
    clean = _one_step(model, X, y, clipping_norm=clip, learning_rate=lr)
    noisy = np.array(
        [
            _one_step(
                model, X, y, clipping_norm=clip, learning_rate=lr, noise_multiplier=sigma, seed=seed
            )
            for seed in range(400)
        ]
    )
    deviation = noisy - clean
    expected = lr * sigma * clip / (1.0 * len(y))
    assert deviation.std() == pytest.approx(expected, rel=0.08)
    assert abs(deviation.mean()) < 0.1 * expected


def test_divides_by_the_expected_not_the_realised_batch() -> None:
    X, y = _data(2, n=200)
    model = _model(X, 2, l2=0.0)
    q, lr = 0.1, 0.1
    rng = np.random.default_rng(11)
    picked = rng.random(len(y)) < q  # the lot dp_sgd will draw with the same seed
    step = _one_step(model, X, y, sample_rate=q, clipping_norm=1e9, learning_rate=lr, seed=11)
    per_example = model.per_example_gradients(X[picked], y[picked]).sum(axis=0)
    np.testing.assert_allclose(step, -lr * per_example / (q * len(y)), rtol=1e-10)
    assert picked.sum() != q * len(y)  # the distinction matters for this draw


def test_an_empty_lot_still_gets_noise() -> None:
    X, y = _data(2, n=5)
    model = _model(X, 2, l2=0.0)
    silent = _one_step(model, X, y, sample_rate=1e-9, clipping_norm=1.0)
    np.testing.assert_array_equal(silent, 0.0)  # no rows, no noise, no L2: nothing moves
    noisy = _one_step(model, X, y, sample_rate=1e-9, clipping_norm=1.0, noise_multiplier=1.0)
    assert np.all(noisy != 0.0)


def test_a_private_model_still_beats_chance() -> None:
    rng = np.random.default_rng(5)
    n, d = 3000, 5
    X = rng.normal(size=(n, d))
    y = (X @ np.array([1.5, -1.0, 0.8, 0.0, 0.5]) + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    train, test = slice(0, 2400), slice(2400, None)
    plan = plan_dp_sgd(rows=2400, clipping_norm=1.0, batch_size=120, steps=400, epsilon_cap=2.0)
    assert plan.epsilon <= 2.0
    model = LogisticRegression(d, 2, l2=1e-3)
    dp_sgd(
        model,
        X[train],
        y[train],
        steps=plan.steps,
        sample_rate=plan.sample_rate,
        noise_multiplier=plan.noise_multiplier,
        clipping_norm=plan.clipping_norm,
        learning_rate=0.5,
        rng=np.random.default_rng(6),
    )
    accuracy = (model.predict(X[test]) == y[test]).mean()
    assert accuracy > 0.8  # chance is about 0.5 here


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"sample_rate": 0.0}, "sample_rate"),
        ({"clipping_norm": -1.0}, "clipping_norm"),
        ({"noise_multiplier": -1.0}, "noise_multiplier"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"prox_mu": -0.1}, "prox_mu"),
    ],
)
def test_bad_parameters_are_refused(changes: dict, pattern: str) -> None:
    X, y = _data(2, n=10)
    settings = {
        "steps": 1,
        "sample_rate": 0.5,
        "noise_multiplier": 1.0,
        "clipping_norm": 1.0,
        "learning_rate": 0.1,
    }
    settings.update(changes)
    with pytest.raises(InvalidInput, match=pattern):
        dp_sgd(_model(X, 2), X, y, rng=np.random.default_rng(0), **settings)


def test_class_weights_survive_clipping_and_no_row_exceeds_c() -> None:
    """A weighted row is clipped to C·w/w_max: the rare class keeps its tenfold pull, and no
    row moves the sum by more than C (the sensitivity the accountant assumes)."""
    from kumiai.adapters.models.dpsgd import row_clipping_norms

    X = np.array([[1e6, -1e6, 3.0], [-1e6, 1e6, 2.0]])  # both gradients far beyond C
    weighted = LogisticRegression(3, 2, l2=0.0, positive_weight=10.0)
    weighted.arrays = [np.array([[0.1], [0.2], [-0.1]]), np.array([0.0])]
    y = np.array([1, 0])
    np.testing.assert_allclose(row_clipping_norms(weighted, y, 2.0), [2.0, 0.2])
    clipped = clip_rows(weighted.per_example_gradients(X, y), row_clipping_norms(weighted, y, 2.0))
    np.testing.assert_allclose(np.linalg.norm(clipped, axis=1), [2.0, 0.2])
    # Unweighted, or weighted below 1: every row's limit is at most C.
    plain = LogisticRegression(3, 2, l2=0.0)
    assert row_clipping_norms(plain, y, 2.0) == 2.0
    light = LogisticRegression(3, 2, l2=0.0, positive_weight=0.5)
    np.testing.assert_allclose(row_clipping_norms(light, y, 2.0), [1.0, 2.0])
    # One step: each row alone moves the model by exactly lr·(its limit)/(q·n).
    for row, limit in ((0, 2.0), (1, 0.2)):
        copy = LogisticRegression(3, 2, l2=0.0, positive_weight=10.0)
        copy.arrays = weighted.arrays
        before = _flat(copy)
        dp_sgd(
            copy, X[row : row + 1], y[row : row + 1], steps=1, sample_rate=1.0,
            noise_multiplier=0.0, clipping_norm=2.0, learning_rate=0.1,
            rng=np.random.default_rng(0),
        )  # fmt: skip
        assert np.linalg.norm(_flat(copy) - before) == pytest.approx(0.1 * limit, rel=1e-9)
