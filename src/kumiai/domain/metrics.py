"""Evaluation that combines across sites without pooling rows.

Each site scores its own test rows and keeps only aggregates: the example count, the
number correct, the summed log loss and histograms of predicted probabilities by label.
Per-site and overall accuracy, loss and AUC all come from those aggregates, so no
individual score or label leaves a node, and every model (local, federated, pooled) is
measured by the same code.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

HISTOGRAM_BINS = 1000


@dataclass(frozen=True)
class SiteScore:
    examples: int
    correct: int
    loss_sum: float
    hist_pos: NDArray[np.int64]  # (scored classes, bins)
    hist_neg: NDArray[np.int64]

    @property
    def accuracy(self) -> float:
        return self.correct / self.examples if self.examples else float("nan")

    @property
    def loss(self) -> float:
        return self.loss_sum / self.examples if self.examples else float("nan")

    @property
    def auc(self) -> float | None:
        return auc_from_histograms(self.hist_pos, self.hist_neg)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "examples": self.examples,
            "accuracy": self.accuracy,
            "auc": self.auc,
            "loss": self.loss,
        }


def score_site(
    proba: NDArray[np.float64], labels: NDArray[np.int64], loss_bound: float | None = None
) -> SiteScore:
    """Aggregate one site's predictions; binary problems score the positive class only.

    `loss_bound` clips each row's log loss, so one row moves the sum by at most that much.
    """
    n_classes = proba.shape[1]
    scored = [1] if n_classes == 2 else list(range(n_classes))
    pos = np.zeros((len(scored), HISTOGRAM_BINS), dtype=np.int64)
    neg = np.zeros((len(scored), HISTOGRAM_BINS), dtype=np.int64)
    for row, k in enumerate(scored):
        bins = np.clip((proba[:, k] * HISTOGRAM_BINS).astype(np.int64), 0, HISTOGRAM_BINS - 1)
        is_pos = labels == k
        pos[row] = np.bincount(bins[is_pos], minlength=HISTOGRAM_BINS)
        neg[row] = np.bincount(bins[~is_pos], minlength=HISTOGRAM_BINS)
    picked = np.clip(proba[np.arange(len(labels)), labels], 1e-12, 1.0)
    losses = -np.log(picked)
    if loss_bound is not None:
        losses = np.minimum(losses, loss_bound)
    return SiteScore(
        examples=len(labels),
        correct=int((proba.argmax(axis=1) == labels).sum()),
        loss_sum=float(losses.sum()),
        hist_pos=pos,
        hist_neg=neg,
    )


def combine(scores: list[SiteScore]) -> SiteScore:
    """The score of all sites' test rows together, exactly as if they had been pooled."""
    return SiteScore(
        examples=sum(s.examples for s in scores),
        correct=sum(s.correct for s in scores),
        loss_sum=sum(s.loss_sum for s in scores),
        hist_pos=np.sum([s.hist_pos for s in scores], axis=0),
        hist_neg=np.sum([s.hist_neg for s in scores], axis=0),
    )


def auc_from_histograms(pos: NDArray[np.int64], neg: NDArray[np.int64]) -> float | None:
    """Mann-Whitney AUC from binned scores (ties within a bin count half); macro over classes.

    None when a site's test rows hold only one class, where AUC is undefined.
    """
    aucs: list[float] = []
    for p, n in zip(np.atleast_2d(pos), np.atleast_2d(neg), strict=True):
        n_pos, n_neg = int(p.sum()), int(n.sum())
        if n_pos == 0 or n_neg == 0:
            continue
        below = np.concatenate([[0], np.cumsum(n)[:-1]])
        aucs.append(float((p * (below + 0.5 * n)).sum() / (n_pos * n_neg)))
    return float(np.mean(aucs)) if aucs else None
