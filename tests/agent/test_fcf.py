"""The FCF model: the device's closed-form profile, the item gradient, what leaves."""

import pickle
from pathlib import Path

import numpy as np

from kumiai.adapters.models.fcf import FCF, FCFSettings, pooled
from kumiai.domain.clock import utc_now
from kumiai.domain.cross_device import CrossDeviceSettings
from kumiai.domain.ratings import RatingTable
from kumiai.services.agent import device, device_root, fcf_settings

SETTINGS = FCFSettings(factors=3, l2_user=2.0, l2_item=2.0)
ITEMS = np.array([0, 2, 5, 7])
RATINGS = np.array([4.0, 2.5, 5.0, 3.0])


def test_the_profile_is_the_ridge_solution() -> None:
    model = FCF(10, SETTINGS, seed=1)
    model.solve_user(ITEMS, RATINGS)
    q, b = model.arrays
    design = np.column_stack([q[ITEMS], np.ones(4)])
    target = RATINGS - SETTINGS.prior_mean - b[ITEMS]
    expected = np.linalg.solve(design.T @ design + 2.0 * np.eye(4), design.T @ target)
    np.testing.assert_allclose(model.user_factor, expected[:3])
    np.testing.assert_allclose(model.user_bias, expected[3:])


def test_the_item_gradient_matches_finite_differences() -> None:
    model = FCF(10, SETTINGS, seed=2)
    model.solve_user(ITEMS, RATINGS)
    grads = model.item_gradients(ITEMS, RATINGS)

    def loss(arrays: list[np.ndarray]) -> float:
        other = FCF.from_arrays(arrays, SETTINGS)
        other.local_arrays = model.local_arrays
        return 0.5 * float(np.sum((RATINGS - other.predict(ITEMS)) ** 2))

    for which, index in ((0, (2, 1)), (1, (5,)), (0, (3, 0))):
        arrays = model.arrays
        arrays[which][index] += 1e-6
        numeric = (loss(arrays) - loss(model.arrays)) / 1e-6
        assert abs(numeric - grads[which][index]) < 1e-4
    assert grads[0][3].tolist() == [0.0, 0.0, 0.0]  # item 3 was not rated: no gradient


def test_a_device_round_sends_the_item_side_only_never_the_profile(run: Path) -> None:
    settings = CrossDeviceSettings(factors=3)
    item_arrays = FCF(20, fcf_settings(settings), 0).arrays
    phone = device(device_root(run, 4))
    reply = phone.train_round(
        job="j",
        project="agent",
        round_=1,
        item_arrays=item_arrays,
        settings=fcf_settings(settings),
        clipping_norm=None,
        privacy=None,
        now=utc_now(),
    )
    assert reply.refusal is None and reply.update is not None
    assert [a.shape for a in reply.update] == [(20, 3), (20,)]
    profile = np.load(run / "devices" / "0000004" / "profile.npz")
    factor, bias = profile["factor"], profile["bias"]
    assert np.abs(factor).max() > 0  # a profile was solved and kept on the device
    sent = np.concatenate([a.ravel() for a in reply.update])
    assert not np.isin(factor, sent).any() and not np.isin(bias, sent).any()
    message = pickle.dumps(reply.update)
    assert factor.tobytes() not in message and bias.tobytes() not in message


def test_pooled_alternating_least_squares_fits_the_training_ratings(table: RatingTable) -> None:
    model, p, bu = pooled(20, table.user, table.item, table.rating, SETTINGS, sweeps=10)
    q, b = model.arrays
    fitted = (
        SETTINGS.prior_mean
        + b[table.item]
        + bu[table.user]
        + np.sum(q[table.item] * p[table.user], axis=1)
    )
    rmse = float(np.sqrt(np.mean((fitted - table.rating) ** 2)))
    baseline = float(np.sqrt(np.mean((table.rating.mean() - table.rating) ** 2)))
    assert rmse < 0.6 * baseline
