"""The model families behind one interface, built from the job's settings."""

from types import SimpleNamespace

import numpy as np
import pytest

from kumiai.adapters.models.families import FAMILIES, model_for
from kumiai.adapters.models.logistic import LogisticRegression
from kumiai.adapters.models.mlp import MLP
from kumiai.domain.errors import InvalidInput
from kumiai.domain.training import MODEL_FAMILIES, TrainingSettings


def test_every_family_the_settings_accept_is_one_a_node_can_build() -> None:
    assert sorted(FAMILIES) == sorted(MODEL_FAMILIES)


def test_logistic_is_the_default_and_starts_at_zero_whatever_the_seed() -> None:
    settings = TrainingSettings(seed=5, l2=0.01)
    assert settings.model == "logistic"
    model = model_for(settings, 4, 2)
    assert isinstance(model, LogisticRegression) and model.l2 == 0.01
    assert all(not a.any() for a in model.arrays) and model.local_arrays == []


def test_an_mlp_has_the_settings_shape_and_its_seeded_start() -> None:
    settings = TrainingSettings(model="mlp", hidden_layers=2, hidden_units=8, seed=3)
    model = model_for(settings, 5, 2)
    assert isinstance(model, MLP)
    assert [a.shape for a in model.arrays] == [(5, 8), (8,), (8, 8), (8,), (8, 1), (1,)]
    again = model_for(settings, 5, 2)
    assert all(np.array_equal(a, b) for a, b in zip(model.arrays, again.arrays, strict=True))
    other = model_for(TrainingSettings(model="mlp", hidden_layers=2, hidden_units=8, seed=4), 5, 2)
    assert not np.array_equal(model.arrays[0], other.arrays[0])


def test_a_family_the_node_does_not_know_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="model family 'xgboost' is not known to this node"):
        model_for(SimpleNamespace(model="xgboost"), 3, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "forest"}, "model family 'forest' is not known; use one of: logistic, mlp"),
        ({"hidden_layers": 0}, "hidden layers (--hidden-layers) must be 1 to 3 (got 0)"),
        ({"hidden_units": 5000}, "hidden units (--hidden-units) must be 1 to 1024 (got 5000)"),
        ({"positive_weight": 0.0}, "positive weight (--positive-weight) must be > 0 (got 0.0)"),
        ({"positive_weight": float("nan")}, "positive weight (--positive-weight) must be a finite"),
    ],
)
def test_settings_refuse_a_bad_model_before_any_node_is_contacted(
    change: dict, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        TrainingSettings(**change)
    assert message in str(caught.value)


def test_a_positive_weight_needs_a_two_class_target() -> None:
    model = model_for(TrainingSettings(positive_weight=3.0), 2, 3)
    with pytest.raises(InvalidInput, match="applies to two-class targets; this one has 3"):
        model.loss(np.zeros((2, 2)), np.array([0, 2]))


def test_a_positive_weight_scales_a_positive_example_gradient_only() -> None:
    X = np.array([[1.0, -2.0], [0.5, 3.0]])
    y = np.array([1, 0])
    plain = model_for(TrainingSettings(), 2, 2)
    weighted = model_for(TrainingSettings(positive_weight=4.0), 2, 2)
    g_plain = plain.per_example_gradients(X, y)
    g_weighted = weighted.per_example_gradients(X, y)
    np.testing.assert_allclose(g_weighted[0], 4.0 * g_plain[0])
    np.testing.assert_allclose(g_weighted[1], g_plain[1])
    # at zero weights every probability is 1/2: loss = (4·log 2 + log 2) / 2
    assert weighted.loss(X, y) == pytest.approx(2.5 * np.log(2))


@pytest.mark.parametrize("family", ["logistic", "mlp"])
def test_a_proximal_fit_balances_the_rows_against_the_pull_back(family: str) -> None:
    """At the end, the rows' gradient and μ·(θ − θ₀) cancel; μ=0 is the rows' own fit, and
    a large μ keeps the start."""
    import numpy as np

    from kumiai.adapters.models.interface import proximal_fit

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] * X[:, 1] + 0.3 * X[:, 2] > 0).astype(np.int64)
    settings = TrainingSettings(model=family, hidden_units=4, l2=1e-3)
    start = model_for(settings, 3, 2)
    theta0 = np.concatenate([a.ravel() for a in start.arrays])
    for mu in (0.0, 0.05, 1e3):
        model = model_for(settings, 3, 2)
        model.arrays = start.arrays
        proximal_fit(model, X, y, mu=mu, max_iter=2000)
        theta = np.concatenate([a.ravel() for a in model.arrays])
        gradient = np.concatenate([g.ravel() for g in model.gradient(X, y)])
        # The MLP's ReLU kinks stop L-BFGS short of a tight gradient; the convex model
        # reaches it.
        assert np.linalg.norm(gradient + mu * (theta - theta0)) < (
            1e-3 if family == "logistic" else 5e-2
        )
        if mu == 0.0:
            assert model.loss(X, y) < start.loss(X, y)
        if mu == 1e3:
            assert np.linalg.norm(theta - theta0) < 1e-2
