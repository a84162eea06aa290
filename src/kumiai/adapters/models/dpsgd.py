"""Record-level DP-SGD for any model family behind `kumiai.adapters.models.interface.Model`.

Each step Poisson-samples rows, clips every example's gradient to norm C, sums, adds
N(0, σ²C²) noise to every coordinate and divides by the *expected* batch size q·n. That is
exactly the Poisson-subsampled Gaussian mechanism `kumiai.domain.privacy` accounts for,
whose analysis needs a denominator fixed in advance: dividing by the realised batch size
would make one row's presence change every other row's weight, not just add its own term.
The L2 and FedProx terms do not read the data, so they are added after the noise and cost
no privacy.

Class weights are applied *through* the clipping, not undone by it: a row of weight w is
clipped to C·w/w_max, where w_max is the heaviest weight the model gives any row (fixed by
the job's settings, not by the data). A rare failure of weight 10 keeps norm up to C and a
healthy row up to C/10, so the failure still counts ten times as much after clipping,
where clipping every weighted row to C would give both the same pull. Every row still
moves a step's sum by at most C, the sensitivity the accountant assumes, so the weights
cost no privacy.
"""

import math

import numpy as np

from kumiai.adapters.models.interface import (
    FloatArray,
    IntArray,
    Model,
    example_weights,
    unflatten,
)
from kumiai.domain.errors import InvalidInput
from kumiai.domain.privacy import (
    check_clipping,
    check_noise_multiplier,
    check_sample_rate,
    check_steps,
)


def clip_rows(gradients: FloatArray, clipping_norm: float | FloatArray) -> FloatArray:
    """Scale each row down to L2 norm ≤ C (one C, or one per row); rows already within their
    C are left as they are."""
    norms = np.linalg.norm(gradients, axis=1)
    return gradients * (clipping_norm / np.maximum(norms, clipping_norm))[:, None]


def row_clipping_norms(model: Model, y: IntArray, clipping_norm: float) -> float | FloatArray:
    """C·w_i/w_max for each row (C itself when the model weighs every row alike).

    Example: C=1, positive weight 10: a failure is clipped to 1, a healthy row to 0.1.
    """
    weight = float(getattr(model, "positive_weight", 1.0))
    weights = example_weights(y, model.n_classes, weight)
    if weights is None:
        return clipping_norm
    return clipping_norm * weights / max(weight, 1.0)


def dp_sgd(
    model: Model,
    X: FloatArray,
    y: IntArray,
    *,
    steps: int,
    sample_rate: float,
    noise_multiplier: float,
    clipping_norm: float,
    learning_rate: float,
    rng: np.random.Generator,
    prox_mu: float = 0.0,
    anchor: list[FloatArray] | None = None,
) -> None:
    """Run `steps` DP-SGD steps on `model` in place; prox_mu > 0 adds FedProx's pull to `anchor`.

    σ = 0 is allowed (it is what tests compare against plain gradient descent), but then
    nothing is private; `kumiai.domain.privacy.plan_dp_sgd` is where real σ values come from.
    """
    steps = check_steps(steps, allow_zero=True)
    q = check_sample_rate(sample_rate)
    sigma = check_noise_multiplier(noise_multiplier, allow_zero=True)
    clip = check_clipping(clipping_norm)
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise InvalidInput(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    if not (math.isfinite(prox_mu) and prox_mu >= 0):
        raise InvalidInput(f"prox_mu must be a finite number >= 0, got {prox_mu!r}")
    n = len(y)
    if n == 0 or len(X) != n:
        raise InvalidInput(f"DP-SGD needs as many rows of X as labels, at least one: {len(X)}/{n}")
    anchor = anchor if anchor is not None else model.arrays

    shapes = model.arrays  # only their shapes are used
    width = sum(a.size for a in shapes)
    expected_batch = q * n
    for _ in range(steps):
        picked = rng.random(n) < q
        if picked.any():
            limits = row_clipping_norms(model, y[picked], clip)
            total = clip_rows(model.per_example_gradients(X[picked], y[picked]), limits).sum(axis=0)
        else:
            total = np.zeros(width)  # an empty lot is still released, noise and all
        noisy = (total + rng.normal(0.0, sigma * clip, size=width)) / expected_batch
        gradients = [
            g + penalty
            for g, penalty in zip(unflatten(noisy, shapes), model.penalty_gradients(), strict=True)
        ]
        model.apply_gradients(gradients, learning_rate, prox_mu, anchor)
