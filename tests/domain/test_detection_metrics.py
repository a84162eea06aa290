"""Rare-event metrics from the per-site histograms: hand-checked cases, and sklearn agrees."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score

from kumiai.domain.metrics import (
    HISTOGRAM_BINS,
    average_precision,
    balanced_accuracy,
    combine,
    detection_metrics,
    recall_at_precision,
    score_site,
)


def _hist(bins: dict[int, int], size: int = 10) -> np.ndarray:
    out = np.zeros(size, dtype=np.int64)
    for b, count in bins.items():
        out[b] = count
    return out


def test_average_precision_by_hand() -> None:
    # positives at 0.9 and 0.5, negatives at 0.7 and 0.1: AP = 1/2·1 + 1/2·2/3
    assert average_precision(_hist({9: 1, 5: 1}), _hist({7: 1, 1: 1})) == pytest.approx(5 / 6)
    # a perfect ranking: 1; every positive below every negative, 1 positive in 4: 1/4
    assert average_precision(_hist({8: 2}), _hist({2: 5})) == 1.0
    assert average_precision(_hist({1: 1}), _hist({6: 3})) == pytest.approx(1 / 4)
    assert average_precision(_hist({}), _hist({3: 4})) is None


def test_tied_scores_cross_a_threshold_together() -> None:
    # one bin holds 1 positive and 3 negatives: one threshold, precision 1/4
    assert average_precision(_hist({4: 1}), _hist({4: 3})) == pytest.approx(1 / 4)


def test_recall_at_90_percent_precision_by_hand() -> None:
    # 9 positives at 0.9, 1 negative at 0.8, then 10 positives tied with 10 negatives at 0.3:
    # bin 9: 9/9 precise, recall 9/19; bin 8: 9/10 = 0.9 exactly, still counts; bin 3: 19/30
    pos, neg = _hist({9: 9, 3: 10}), _hist({8: 1, 3: 10})
    assert recall_at_precision(pos, neg, 0.9) == pytest.approx(9 / 19)
    assert recall_at_precision(pos, neg, 0.6) == 1.0  # 19/30 >= 0.6 at bin 3
    # the best-scored row is a false alarm and the next are 1 real in 2: never 90% precise
    assert recall_at_precision(_hist({5: 1}), _hist({9: 1, 5: 1}), 0.9) == 0.0
    assert recall_at_precision(_hist({}), _hist({1: 1})) is None


def test_balanced_accuracy_by_hand() -> None:
    # 4 failures, 2 caught (bins >= 5); 96 healthy, 6 flagged: (2/4 + 90/96) / 2
    pos, neg = _hist({7: 2, 2: 2}), _hist({6: 6, 1: 90})
    assert balanced_accuracy(pos, neg) == pytest.approx((0.5 + 90 / 96) / 2)
    # never predicting a failure scores 1/2, however rare failures are
    assert balanced_accuracy(_hist({1: 3}), _hist({0: 997})) == 0.5
    assert balanced_accuracy(_hist({1: 3}), _hist({})) is None


def test_they_agree_with_sklearn_on_scores_sitting_in_distinct_bins() -> None:
    rng = np.random.default_rng(0)
    n = 400
    labels = (rng.random(n) < 0.08).astype(np.int64)  # rare positives
    bins = np.clip(rng.normal(300 + 350 * labels, 150), 0, HISTOGRAM_BINS - 1).astype(np.int64)
    p = (bins + 0.5) / HISTOGRAM_BINS  # bin centres: binning merges only equal scores
    score = score_site(np.column_stack([1 - p, p]), labels)
    metrics = detection_metrics(score)
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(labels, p), abs=1e-12)
    assert metrics["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(labels, (p > 0.5).astype(int)), abs=1e-12
    )
    assert metrics["roc_auc"] == score.auc


def test_combined_sites_score_as_their_rows_pooled() -> None:
    rng = np.random.default_rng(3)
    parts = []
    for n in (80, 300, 45):
        y = (rng.random(n) < 0.1).astype(np.int64)
        p = np.clip(rng.normal(0.2 + 0.5 * y, 0.2), 0, 1)
        parts.append((np.column_stack([1 - p, p]), y))
    combined = combine([score_site(p, y) for p, y in parts])
    pooled = score_site(np.vstack([p for p, _ in parts]), np.concatenate([y for _, y in parts]))
    assert detection_metrics(combined) == detection_metrics(pooled)
