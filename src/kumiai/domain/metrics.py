"""Evaluation that combines across sites without pooling rows.

Each site scores its own test rows and keeps only aggregates: the example count, the
number correct, the summed log loss and histograms of predicted probabilities by label.
Per-site and overall accuracy, loss and AUC all come from those aggregates, so no
individual score or label leaves a node, and every model (local, federated, pooled) is
measured by the same code.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


# -- rare events: failures are a few percent of rows, so accuracy says little ---------------
# Each figure below comes from the same per-site histograms as the AUC, so it combines across
# sites without pooling rows. A threshold sweeps the bins from the highest score down; scores
# within one bin are ties (they cross any threshold together).


def _sweep(pos: NDArray[np.int64], neg: NDArray[np.int64]) -> tuple[NDArray[Any], NDArray[Any]]:
    """(true positives, false positives) flagged at each threshold, highest bin first."""
    return np.cumsum(pos[::-1]), np.cumsum(neg[::-1])


def average_precision(pos: NDArray[np.int64], neg: NDArray[np.int64]) -> float | None:
    """PR-AUC as average precision: Σ (recall gained at a threshold) x (precision there).

    Example: positives in bins 9 and 5, negatives in bins 7 and 1 (scores 0.9 > 0.7 > 0.5 >
    0.1): thresholds give precision 1 at recall 1/2, then 2/3 at recall 1, so AP = 1/2·1 +
    1/2·2/3 = 5/6. None when there is no positive row (undefined).
    """
    n_pos = int(pos.sum())
    if n_pos == 0:
        return None
    tp, fp = _sweep(pos, neg)
    flagged = tp + fp
    precision = np.divide(tp, flagged, out=np.ones(len(tp)), where=flagged > 0)
    gained = np.diff(np.concatenate([[0], tp])) / n_pos
    return float((gained * precision).sum())


def recall_at_precision(
    pos: NDArray[np.int64], neg: NDArray[np.int64], precision: float = 0.9
) -> float | None:
    """The most positives a threshold catches while at least `precision` of its alarms are real.

    0 when no threshold is that precise (every alarm list mixes in too many false ones);
    None when there is no positive row.
    """
    n_pos = int(pos.sum())
    if n_pos == 0:
        return None
    tp, fp = _sweep(pos, neg)
    # tp/(tp+fp) >= precision, in integers: no rounding decides a borderline threshold
    precise = (tp > 0) & (tp * 1_000_000 >= np.round(precision * 1_000_000) * (tp + fp))
    return float(tp[precise].max() / n_pos) if precise.any() else 0.0


def balanced_accuracy(pos: NDArray[np.int64], neg: NDArray[np.int64]) -> float | None:
    """Mean of the recall on positives and on negatives at the 0.5 threshold (argmax).

    A model that never predicts a failure scores 0.5 however rare failures are. A score in
    bin b is in [b/B, (b+1)/B), so 'p > 0.5' is every bin from B/2 up (p = 0.5 exactly,
    argmax's tie, is negligible). None when either class has no row.
    """
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    if n_pos == 0 or n_neg == 0:
        return None
    half = len(pos) // 2
    return 0.5 * (int(pos[half:].sum()) / n_pos + int(neg[:half].sum()) / n_neg)


def _macro(
    score: SiteScore, metric: Callable[[NDArray[np.int64], NDArray[np.int64]], float | None]
) -> float | None:
    values = [
        v
        for p, n in zip(np.atleast_2d(score.hist_pos), np.atleast_2d(score.hist_neg), strict=True)
        if (v := metric(p, n)) is not None
    ]
    return float(np.mean(values)) if values else None


def detection_metrics(score: SiteScore) -> dict[str, float | None]:
    """The rare-event yardsticks of one site's (or a combined) score, macro over classes."""
    return {
        "pr_auc": _macro(score, average_precision),
        "roc_auc": score.auc,
        "balanced_accuracy": _macro(score, balanced_accuracy),
        "recall_at_90_precision": _macro(score, recall_at_precision),
    }
