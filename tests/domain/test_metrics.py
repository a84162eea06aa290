"""Aggregate metrics: histogram AUC tracks the exact AUC, and combining equals pooling."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kumiai.domain.metrics import auc_from_histograms, combine, score_site


def _proba(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 2, n)
    p = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1)
    return np.column_stack([1 - p, p]), labels


def test_histogram_auc_matches_exact_auc() -> None:
    proba, labels = _proba(np.random.default_rng(0), 500)
    score = score_site(proba, labels)
    assert score.auc == pytest.approx(roc_auc_score(labels, proba[:, 1]), abs=2e-3)
    assert score.accuracy == pytest.approx(np.mean(proba.argmax(1) == labels))


def test_combining_sites_equals_scoring_their_rows_together() -> None:
    rng = np.random.default_rng(1)
    parts = [_proba(rng, n) for n in (50, 120, 33)]
    together = score_site(np.vstack([p for p, _ in parts]), np.concatenate([y for _, y in parts]))
    combined = combine([score_site(p, y) for p, y in parts])
    assert combined.examples == together.examples == 203
    assert combined.correct == together.correct
    assert combined.auc == pytest.approx(together.auc, abs=1e-12)
    assert combined.loss == pytest.approx(together.loss)


def test_auc_is_undefined_for_a_single_class() -> None:
    proba = np.array([[0.2, 0.8], [0.4, 0.6]])
    assert score_site(proba, np.array([1, 1])).auc is None
    assert auc_from_histograms(np.zeros((1, 10), int), np.ones((1, 10), int)) is None


def test_multiclass_auc_is_macro_one_vs_rest() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3)) + 2.0 * np.eye(3)[labels]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    exact = roc_auc_score(labels, proba, multi_class="ovr", average="macro")
    assert score_site(proba, labels).auc == pytest.approx(exact, abs=3e-3)
