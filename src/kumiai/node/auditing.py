"""The node measures a released model on its own rows for the model card; only aggregates leave.

The coordinator sends the released model (its settings, feature plan and parameters: what
every member may already read) and, optionally, the name of a sensitive attribute. The node
checks its own newest agreement (kumiai.domain.model_audit.audit_refusal), its revocations,
its clock and the minimum cohort, then returns the aggregates `domain.model_audit`
describes: histograms (overall and per level of the attribute), permutation importance for
non-logistic models, and the counts of a loss-threshold membership-inference attack on its
own training rows against its test rows. No row, score or loss leaves.
"""

from typing import Any

import numpy as np

from kumiai.adapters.models.families import model_for
from kumiai.adapters.storage.arrays import arrays_from_bytes
from kumiai.domain.clock import utc_now
from kumiai.domain.contribution_charge import current_agreement
from kumiai.domain.disclosure import cohort_refusal
from kumiai.domain.model_audit import (
    GROUP_FLOOR,
    audit_refusal,
    card_histograms,
    group_histograms,
    loss_threshold_attack,
    row_losses,
)
from kumiai.domain.preprocessing import Columns, FeaturePlan
from kumiai.domain.schema import ColumnType
from kumiai.domain.split import site_seed
from kumiai.domain.training import TrainingSettings
from kumiai.node.home import NodeHome
from kumiai.node.worker import NodeWorker


def audit(
    home: NodeHome,
    dataset: str,
    *,
    project: str,
    settings: TrainingSettings,
    plan: FeaturePlan,
    parameters: bytes,
    attribute: str | None,
) -> tuple[bool, str, dict[str, Any] | None]:
    """(allowed, reason, the aggregates for the card)."""
    home.dataset(dataset)  # NotFound unless the dataset is this node's
    agreement = current_agreement(home.agreements(), project=project, dataset=dataset)
    refusal = audit_refusal(
        agreement,
        project=project,
        dataset=dataset,
        steward=home.member_name,
        steward_keys=home.steward_keys(),
        revoked=home.revoked(),
        now=utc_now(),
    )
    if refusal is not None or agreement is None:
        return False, str(refusal), None
    worker = NodeWorker(home.root)
    part = worker.split(dataset, settings)
    min_cohort = agreement.terms.min_cohort
    small = cohort_refusal(
        agreement.terms.agreement_id, min_cohort, len(part.train_labels), len(part.test_labels)
    )
    if small is not None:
        return False, small, None
    if attribute is not None and part.schema.get(attribute) is not ColumnType.CATEGORICAL:
        return False, f"{dataset!r} has no categorical column {attribute!r} to break down", None
    model = model_for(settings, len(plan.feature_names), len(plan.classes))
    model.arrays = arrays_from_bytes(parameters)
    where = f"dataset {dataset!r}"
    test_y = plan.encode_labels(part.test_labels, where)
    train_y = plan.encode_labels(part.train_labels, where)
    test_proba = model.predict_proba(plan.transform(part.test))
    train_proba = model.predict_proba(plan.transform(part.train))
    figures: dict[str, Any] = {
        "test_rows": len(test_y),
        "train_rows": len(train_y),
        "histograms": card_histograms(test_proba[:, 1], test_y),
        "membership": loss_threshold_attack(
            row_losses(train_proba, train_y), row_losses(test_proba, test_y)
        ),
    }
    if attribute is not None:
        groups, withheld = group_histograms(
            test_proba[:, 1], test_y, part.test[attribute], max(min_cohort, GROUP_FLOOR)
        )
        figures["groups"] = groups if groups is not None else {"withheld": withheld}
    if settings.model != "logistic":
        seed = site_seed(settings.seed, dataset)
        figures["permutation_importance"] = _permutation_importance(
            model, plan, part.test, test_y, np.random.default_rng([seed, 7])
        )
    return True, f"audited on {len(train_y)} training and {len(test_y)} test rows", figures


def _permutation_importance(
    model: Any, plan: FeaturePlan, columns: Columns, labels: Any, rng: np.random.Generator
) -> dict[str, float]:
    """Per column, how much the mean log loss rises when that column's values are shuffled."""
    base = float(row_losses(model.predict_proba(plan.transform(columns)), labels).mean())
    rises: dict[str, float] = {}
    for name in plan.schema:
        shuffled = dict(columns)
        shuffled[name] = columns[name][rng.permutation(len(labels))]
        loss = float(row_losses(model.predict_proba(plan.transform(shuffled)), labels).mean())
        rises[name] = loss - base
    return rises
