"""Federated collaborative filtering (Ammad-ud-din et al., 2019, "Federated Collaborative
Filtering for Privacy-Preserving Personalized Recommendation System"), in NumPy.

A rating is predicted as r̂(u, i) = μ + b_i + b_u + p_u · q_i. The item side — the item
factors q_i and the item biases b_i — is federated: the coordinator
holds it and averages the devices' updates to it. The user side — p_u and b_u — is the
user's profile: the device solves it from its own ratings (a closed-form ridge regression
on the current item factors), keeps it on disk, and never sends it. What leaves a device is
only the change its ratings make to the item side (`update`), the same shape for every
user, so that neither its size nor its zeros tell which items the user rated.

`pooled` is the yardstick: the same model fitted on everyone's ratings in one place by
alternating least squares.
"""

from dataclasses import dataclass

import numpy as np

from kumiai.adapters.models.interface import FloatArray, IntArray

ITEM_FACTORS, ITEM_BIASES = 0, 1


@dataclass(frozen=True)
class FCFSettings:
    """The model's shape and regularisation, the same at every device and the coordinator."""

    factors: int = 8
    l2_user: float = 5.0
    l2_item: float = 5.0
    init_scale: float = 0.1
    # μ: a public prior on the rating scale, not learnt (a learnt mean would need a
    # federated sum of every rating, and would move at a very different scale from items).
    prior_mean: float = 3.5
    local_lr: float = 0.05
    local_steps: int = 1


class FCF:
    """The item side of a federated matrix factorisation, and one user's profile."""

    def __init__(self, n_items: int, settings: FCFSettings, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.settings = settings
        self.n_items = n_items
        self._items = [
            rng.normal(0.0, settings.init_scale, (n_items, settings.factors)),
            np.zeros(n_items),
        ]
        self.user_factor = np.zeros(settings.factors)
        self.user_bias = np.zeros(1)

    @classmethod
    def from_arrays(cls, item_arrays: list[FloatArray], settings: FCFSettings) -> "FCF":
        """A model on a given item side (a device's copy of the coordinator's)."""
        model = cls.__new__(cls)
        model.settings, model.n_items = settings, len(item_arrays[ITEM_BIASES])
        model.arrays = item_arrays
        model.user_factor, model.user_bias = np.zeros(settings.factors), np.zeros(1)
        return model

    # -- the Model interface's split: federated and local parameters --------------------
    @property
    def arrays(self) -> list[FloatArray]:
        """Federated: item factors and item biases. What the coordinator holds."""
        return [a.copy() for a in self._items]

    @arrays.setter
    def arrays(self, values: list[FloatArray]) -> None:
        factors, biases = (np.asarray(v, dtype=np.float64) for v in values)
        if factors.shape != (self.n_items, self.settings.factors) or biases.shape != (
            self.n_items,
        ):
            raise ValueError(
                f"item arrays of shape {factors.shape}, {biases.shape} do not fit "
                f"{self.n_items} items x {self.settings.factors} factors"
            )
        self._items = [factors.copy(), biases.copy()]

    @property
    def local_arrays(self) -> list[FloatArray]:
        """The user's profile: it stays on the device and is never sent."""
        return [self.user_factor.copy(), self.user_bias.copy()]

    @local_arrays.setter
    def local_arrays(self, values: list[FloatArray]) -> None:
        self.user_factor = np.asarray(values[0], dtype=np.float64).copy()
        self.user_bias = np.asarray(values[1], dtype=np.float64).reshape(1).copy()

    # -- the device's work ------------------------------------------------------------
    def solve_user(self, items: IntArray, ratings: FloatArray) -> None:
        """The user's ridge solution for p_u, b_u given the current item side (closed form)."""
        q, b = self._items
        design = np.column_stack([q[items], np.ones(len(items))])
        target = ratings - self.settings.prior_mean - b[items]
        gram = design.T @ design + self.settings.l2_user * np.eye(design.shape[1])
        solution = np.linalg.solve(gram, design.T @ target)
        self.user_factor, self.user_bias = solution[:-1], solution[-1:]

    def predict(self, items: IntArray) -> FloatArray:
        """This user's predicted ratings for `items`."""
        q, b = self._items
        return self.settings.prior_mean + b[items] + self.user_bias[0] + q[items] @ self.user_factor

    def item_gradients(self, items: IntArray, ratings: FloatArray) -> list[FloatArray]:
        """The gradient of ½Σ(r - r̂)² over this user's ratings, for every federated array.

        Dense, in the shape of `arrays`: zero rows for items the user did not rate. The
        L2 term on the item side is the coordinator's (it reads no user's data).
        """
        error = ratings - self.predict(items)
        grad_q = np.zeros_like(self._items[ITEM_FACTORS])
        grad_b = np.zeros_like(self._items[ITEM_BIASES])
        np.add.at(grad_q, items, -error[:, None] * self.user_factor[None, :])
        np.add.at(grad_b, items, -error)
        return [grad_q, grad_b]

    def update(self, items: IntArray, ratings: FloatArray) -> list[FloatArray]:
        """One device's round: solve the profile, take local steps on the item side, and
        return the change to the item side (the profile stays in `local_arrays`)."""
        start = self.arrays
        for _ in range(self.settings.local_steps):
            self.solve_user(items, ratings)
            grads = self.item_gradients(items, ratings)
            self._items = [
                a - self.settings.local_lr * g for a, g in zip(self._items, grads, strict=True)
            ]
        self.solve_user(items, ratings)
        delta = [a - s for a, s in zip(self._items, start, strict=True)]
        self._items = start
        return delta

    def item_penalty(self) -> list[FloatArray]:
        """The item-side L2 gradient, applied by the coordinator once per round."""
        q, b = self._items
        return [self.settings.l2_item * q, self.settings.l2_item * b]


def pooled(
    n_items: int,
    users: IntArray,
    items: IntArray,
    ratings: FloatArray,
    settings: FCFSettings,
    *,
    sweeps: int = 15,
    seed: int = 0,
) -> tuple[FCF, FloatArray, FloatArray]:
    """The centralised yardstick: alternating least squares on the pooled ratings.

    Returns the model (item side) and every user's factors and biases, rows by user index.
    """
    from kumiai.domain.ratings import rows_by_user

    model = FCF(n_items, settings, seed)
    n_users = int(users.max()) + 1
    by_user = rows_by_user(users, n_users)
    by_item = rows_by_user(items, n_items)
    k = settings.factors
    mu = settings.prior_mean
    p = np.zeros((n_users, k))
    bu = np.zeros(n_users)
    for _ in range(sweeps):
        q, bi = model._items
        for u, rows in enumerate(by_user):
            if len(rows) == 0:
                continue
            design = np.column_stack([q[items[rows]], np.ones(len(rows))])
            target = ratings[rows] - mu - bi[items[rows]]
            gram = design.T @ design + settings.l2_user * np.eye(k + 1)
            solution = np.linalg.solve(gram, design.T @ target)
            p[u], bu[u] = solution[:-1], solution[-1]
        for i, rows in enumerate(by_item):
            if len(rows) == 0:
                q[i], bi[i] = 0.0, 0.0
                continue
            design = np.column_stack([p[users[rows]], np.ones(len(rows))])
            target = ratings[rows] - mu - bu[users[rows]]
            gram = design.T @ design + settings.l2_item * np.eye(k + 1)
            solution = np.linalg.solve(gram, design.T @ target)
            q[i], bi[i] = solution[:-1], solution[-1]
    return model, p, bu
