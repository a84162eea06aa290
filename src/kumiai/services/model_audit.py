"""`kumiai model audit MODEL`: every site measures a released model for its card, at its node.

The coordinator checks what it can first (a two-class model, a categorical attribute, a
project member asking), so a refused audit contacts no node and changes nothing. Each node
that trained the model then checks its own agreement and returns aggregates only
(kumiai.node.auditing). Here they are turned into what the card shows — the ε lower bound of
each site's membership-inference attack beside the ε its spend records account, and the
model's global feature importance — and recorded, with the nodes' aggregates and refusals,
in one signed `model.audited` ledger entry that `kumiai model card` reads.
"""

import json
from dataclasses import dataclass
from typing import Any

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    DatasetRow,
    ModelVersionRow,
    PrivacySpendRow,
    ProjectMemberRow,
    ProjectRow,
)
from kumiai.domain.errors import InvalidInput
from kumiai.domain.model_card import AUDITED, audit_verdict, weighted_importance
from kumiai.domain.preprocessing import FeaturePlan
from kumiai.domain.privacy import default_delta
from kumiai.domain.schema import ColumnType
from kumiai.domain.training import TrainingSettings
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get


@dataclass(frozen=True)
class Audit:
    model: str
    entry: int  # the ledger entry that holds it
    payload: dict[str, Any]


def audit_model(
    consortium: Consortium, model_id: str, *, attribute: str | None = None, by: str | None = None
) -> Audit:
    """Have every site that trained `model_id` audit it at its node; record what came back."""
    with transaction(consortium.sessions) as session:
        row = get(session, ModelVersionRow, model_id)
        lineage = json.loads(row.lineage_json)
        settings = TrainingSettings(**lineage.get("settings", {}))
        plan = FeaturePlan.from_json(row.feature_plan_json)
        _check_request(model_id, plan, attribute)
        project = row.project
        by = by or get(session, ProjectRow, project).proposed_by
        if session.get(ProjectMemberRow, (project, by)) is None:
            raise InvalidInput(
                f"{by!r} is not a member of project {project!r}; only its members audit its models"
            )
        parameters, job = row.parameters, row.job_id
        sites = {d: get(session, DatasetRow, d).member for d in lineage["datasets"]}
        spend = {d: session.get(PrivacySpendRow, (job, d)) for d in sites if settings.private}
        accounted = {d: (r.spent, r.delta) for d, r in spend.items() if r is not None}
    figures: dict[str, dict[str, Any]] = {}
    refused: dict[str, str] = {}
    for dataset, member in sorted(sites.items()):
        allowed, reason, measured = consortium.node(member).audit_model(
            dataset,
            project=project,
            settings=settings,
            plan=plan,
            parameters=parameters,
            attribute=attribute,
        )
        if allowed and measured is not None:
            figures[dataset] = {**measured, **_bound(measured, accounted.get(dataset))}
        else:
            refused[dataset] = reason
    payload = {
        "model": model_id,
        "attribute": attribute,
        "sites": figures,
        "refused": refused,
        "importance": _importance(consortium, model_id, settings, plan, figures),
    }
    with transaction(consortium.sessions) as session:
        signed = consortium.ledger.append(
            session, Act(by, AUDITED, payload, member=by, project=project)
        )
    return Audit(model_id, signed.entry.seq, payload)


def _check_request(model_id: str, plan: FeaturePlan, attribute: str | None) -> None:
    if len(plan.classes) != 2:
        raise InvalidInput(
            f"model {model_id} predicts {len(plan.classes)} classes; the audit's calibration, "
            "rates and attack read a two-class model only"
        )
    if attribute is not None and plan.schema.get(attribute) is not ColumnType.CATEGORICAL:
        columns = ", ".join(c for c, t in plan.schema.items() if t is ColumnType.CATEGORICAL)
        raise InvalidInput(
            f"model {model_id} has no categorical column {attribute!r} to break down by; "
            f"its categorical columns are: {columns or 'none'}"
        )


def _bound(measured: dict[str, Any], accounted: tuple[float, float] | None) -> dict[str, Any]:
    """The attack's ε lower bound at the job's δ, beside the ε the site's records account."""
    from kumiai.domain.model_audit import epsilon_lower_bound

    epsilon, delta = accounted if accounted else (None, default_delta(measured["train_rows"]))
    bound = epsilon_lower_bound(measured["membership"], delta)
    return {
        "epsilon_lower_bound": bound.epsilon,
        "bound_at_loss": bound.threshold,
        "bound_direction": bound.direction,
        "delta": delta,
        "accounted_epsilon": epsilon,
        "verdict": audit_verdict(bound.epsilon, epsilon),
    }


def _importance(
    consortium: Consortium,
    model_id: str,
    settings: TrainingSettings,
    plan: FeaturePlan,
    figures: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Logistic: the coefficients (numeric columns are standardised by the plan, so each is
    the change in log-odds per standard deviation; a category's is against none of its
    levels). Other families: the nodes' permutation importance, weighted by test rows."""
    if settings.model == "logistic":
        from kumiai.services.models import load_model

        _, model = load_model(consortium, model_id)
        coef = model.arrays[0][:, 0]
        values = sorted(
            zip(plan.feature_names, (float(c) for c in coef), strict=True),
            key=lambda item: -abs(item[1]),
        )
        return {
            "method": "standardised logistic coefficients (log-odds per standard deviation)",
            "values": [[n, v] for n, v in values],
        }
    sites = {d: (f["test_rows"], f["permutation_importance"]) for d, f in figures.items()}
    return {
        "method": "permutation importance: rise in test log loss when the column is shuffled, "
        "measured at each node, weighted by its test rows",
        "values": weighted_importance(sites),
    }
