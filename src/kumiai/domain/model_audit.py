"""What a node measures about a released model on its own rows, and the empirical ε bound.

A model card needs figures only the data can give: calibration, scores per group of a
sensitive attribute, which columns matter, and how much the model remembers its training
rows. Each node computes them on its own split and releases aggregates only:

- 10-bin histograms of the predicted probability of the positive class, by label, overall
  and per level of the sensitive attribute. From them the card derives calibration, a
  coarse AUC, accuracy and the true and false positive rates at 0.5, summed across sites
  exactly as if the test rows had been pooled (`domain.model_card`).
- A level's figures leave only when every level has at least `group_floor` test rows (the
  agreement's minimum cohort, and never fewer than `GROUP_FLOOR`). When one level is too
  small the whole breakdown stays home: with two levels, the overall histogram minus the
  large level's would give the small one away.
- Permutation importance: how much the test rows' mean log loss rises when one column is
  shuffled (seeded), per column.
- A loss-threshold membership-inference attack (Yeom et al. 2018): the node flags a row as
  a training row when the model's loss on it is at most t, for a few public thresholds t,
  and counts how many of its training rows (members) and test rows (non-members) are
  flagged, plus the attack's AUC. No loss of any row leaves.

From those counts `epsilon_lower_bound` gives a lower bound on ε that holds with 95%
confidence for any (ε, δ)-DP training: for every threshold, TPR ≤ e^ε·FPR + δ and
(1 − FPR) ≤ e^ε·(1 − TPR) + δ, with TPR and FPR replaced by their Clopper–Pearson bounds
(one-sided, Bonferroni-corrected over every threshold and both directions). Example, six
thresholds, δ = 0: at one of them 100 of 100 training rows and 20 of 100 test rows are
flagged. At the corrected level TPR ≥ 0.940 and FPR ≤ 0.335, so ε ≥ ln(0.940/0.335) ≈ 1.03
from the flagged rows, and ε ≥ ln((1 − 0.335)/(1 − 0.940)) ≈ 2.41 from the rows not
flagged: the bound is 2.41. A model whose accounted ε is 1 that showed that would prove the
accounting or the DP-SGD wrong. The split is random,
so members and non-members are exchangeable draws; rows of one model are not independent
trials, which makes the bound a sound audit in practice rather than a proof (Steinke,
Nasr and Jagielski 2023 study auditing in one training run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kumiai.domain.agreement import SignedAgreement, standing_refusal
from kumiai.domain.disclosure import ALLOWED
from kumiai.domain.job import JobKind

CARD_BINS = 10
GROUP_FLOOR = 10
# Flag a row as a training row when its log loss is at most t. Public constants, so the
# thresholds reveal nothing about any row: p(true label) ≥ 0.99, 0.95, 0.9, 0.8, 0.6, 0.37.
LOSS_THRESHOLDS = (0.01, 0.05, 0.1, 0.2, 0.5, 1.0)
CONFIDENCE = 0.95


def card_histograms(proba_pos: NDArray[np.float64], labels: NDArray[np.int64]) -> dict[str, Any]:
    """10-bin counts of the positive-class probability, by label: what the card reads."""
    bins = np.clip((proba_pos * CARD_BINS).astype(np.int64), 0, CARD_BINS - 1)
    is_pos = labels == 1
    return {
        "positives": [int(v) for v in np.bincount(bins[is_pos], minlength=CARD_BINS)],
        "negatives": [int(v) for v in np.bincount(bins[~is_pos], minlength=CARD_BINS)],
    }


def group_histograms(
    proba_pos: NDArray[np.float64],
    labels: NDArray[np.int64],
    groups: NDArray[Any],
    floor: int,
) -> tuple[dict[str, dict[str, Any]] | None, str]:
    """(histograms per level, "") or (None, why the breakdown stays at the node)."""
    names = np.array(["(missing)" if g is None else str(g) for g in groups], dtype=object)
    levels, counts = np.unique(names.astype(str), return_counts=True)
    small = [f"{lv} ({n})" for lv, n in zip(levels, counts, strict=True) if n < floor]
    if small:
        return None, (
            f"a level has fewer than {floor} test rows ({', '.join(small)}): the breakdown "
            "stays at the node, since the overall figures minus the other levels would "
            "reveal it"
        )
    if len(levels) < 2:
        return None, "the attribute has one level among this site's test rows"
    return {
        str(lv): card_histograms(proba_pos[names == lv], labels[names == lv]) for lv in levels
    }, ""


def row_losses(proba: NDArray[np.float64], labels: NDArray[np.int64]) -> NDArray[np.float64]:
    """Each row's log loss, −log p(true label), unweighted."""
    picked = np.clip(proba[np.arange(len(labels)), labels], 1e-12, 1.0)
    return -np.log(picked)


def loss_threshold_attack(
    member_losses: NDArray[np.float64], non_member_losses: NDArray[np.float64]
) -> dict[str, Any]:
    """The attack's counts at each public threshold, and its AUC (a lower loss: member)."""
    members = np.sort(np.asarray(member_losses, dtype=np.float64))
    others = np.sort(np.asarray(non_member_losses, dtype=np.float64))
    if len(members) == 0 or len(others) == 0:
        raise ValueError("the attack needs training rows and test rows")
    # AUC = P(member loss < non-member loss) + ½ P(equal), by binary search: O(n log n).
    right = np.searchsorted(others, members, side="right")
    left = np.searchsorted(others, members, side="left")
    wins = (len(others) - right).sum() + 0.5 * (right - left).sum()
    return {
        "members": len(members),
        "non_members": len(others),
        "auc": float(wins / (len(members) * len(others))),
        "thresholds": [
            {
                "loss_at_most": t,
                "members_flagged": int(np.searchsorted(members, t, side="right")),
                "non_members_flagged": int(np.searchsorted(others, t, side="right")),
            }
            for t in LOSS_THRESHOLDS
        ],
    }


def clopper_pearson(k: int, n: int, alpha: float) -> tuple[float, float]:
    """One-sided (lower, upper) bounds on a binomial rate, each holding with 1 − alpha."""
    from scipy.stats import beta

    lower = 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))
    upper = 1.0 if k == n else float(beta.ppf(1 - alpha, k + 1, n - k))
    return lower, upper


@dataclass(frozen=True)
class EpsilonBound:
    epsilon: float  # ≥ 0; 0 when the attack shows nothing significant
    threshold: float | None  # the loss threshold that gave it
    direction: str  # "flagged" (TPR vs FPR) or "not flagged" (TNR vs FNR), "" when 0


def epsilon_lower_bound(
    attack: dict[str, Any], delta: float, confidence: float = CONFIDENCE
) -> EpsilonBound:
    """The largest ε the attack's counts prove, at `confidence`, for (ε, δ)-DP training."""
    members, others = int(attack["members"]), int(attack["non_members"])
    thresholds = attack["thresholds"]
    # Two intervals per comparison, two comparisons per threshold: Bonferroni over all.
    alpha = (1 - confidence) / (4 * len(thresholds))
    best = EpsilonBound(0.0, None, "")
    for row in thresholds:
        tp, fp = int(row["members_flagged"]), int(row["non_members_flagged"])
        tpr_lo, _ = clopper_pearson(tp, members, alpha)
        _, fpr_hi = clopper_pearson(fp, others, alpha)
        # flagged: TPR ≤ e^ε FPR + δ;  not flagged: TNR ≤ e^ε FNR + δ.
        for direction, big, small in (
            ("flagged", tpr_lo, fpr_hi),
            ("not flagged", 1 - fpr_hi, 1 - tpr_lo),
        ):
            if big - delta <= 0 or small <= 0:
                continue
            value = math.log((big - delta) / small)
            if value > best.epsilon:
                best = EpsilonBound(value, float(row["loss_at_most"]), direction)
    return best


def audit_refusal(
    agreement: SignedAgreement | None,
    *,
    project: str,
    dataset: str,
    steward: str,
    steward_keys: tuple[str, ...],
    revoked: frozenset[str],
    now: datetime,
) -> str | None:
    """Why the node must not audit a model on `dataset` under its newest agreement, or None.

    The audit scores the model on the site's rows (evaluation) and releases exact
    aggregates, so it needs a standing agreement that permits `evaluate` and lets
    aggregates leave as they are (`allowed`). Under `dp` the figures would need noise paid
    from the ε budget, which the audit does not do yet; under `forbidden` nothing leaves.
    """
    standing = standing_refusal(
        agreement, project=project, dataset=dataset, steward=steward,
        steward_keys=steward_keys, revoked=revoked, now=now,
    )  # fmt: skip
    if standing is not None or agreement is None:
        return standing
    terms = agreement.terms
    if JobKind.EVALUATE not in terms.job_kinds:
        return (
            f"agreement {terms.agreement_id} does not permit evaluation on {dataset!r}, and "
            "the audit evaluates the model there; ask for a request with --kinds train,evaluate"
        )
    if terms.aggregate_statistics != ALLOWED:
        return (
            f"agreement {terms.agreement_id} lets aggregates leave only as "
            f"{terms.aggregate_statistics!r}; the audit's figures are exact, so they stay at "
            "the node"
        )
    return None
