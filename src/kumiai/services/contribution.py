"""Each member's contribution to a released model: retrain coalitions, then Shapley.

v(S) is the test metric (AUC by default, or accuracy) of the model that coalition S
trains with the released model's own settings and seed, scored on the union of every
participating site's test rows. Coalitions are retrained in-process, on this machine,
from the same local-SGD step the nodes run (`kumiai.node.port.local_sgd`) and FedAvg's
example-weighted average, so the grand coalition reproduces the released model. This is
the single-machine path (demo, tests, benchmark); the rules it obeys are in
`kumiai.domain.contribution_rules` and docs/contribution.md.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kumiai.adapters.models.families import model_for
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import ModelVersionRow
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.contribution import Coalition, Shares, Utility, shapley
from kumiai.domain.contribution_rules import ContributionPlan, SiteTerms, plan_contribution
from kumiai.domain.errors import InvalidInput, StateError
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.metrics import score_site
from kumiai.domain.preprocessing import FeaturePlan, merge_summaries, summarise
from kumiai.domain.split import SiteSplit
from kumiai.domain.training import TrainingSettings
from kumiai.node.port import local_sgd
from kumiai.services.agreements import agreements_for_job
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get, project_datasets

METRICS = ("auc", "accuracy")


def feature_plan(members: Mapping[str, SiteSplit]) -> FeaturePlan:
    """The plan the federation would build from these members' summaries."""
    return merge_summaries(
        {name: summarise(p.train, p.schema, p.train_labels) for name, p in members.items()}
    )


def coalition_utility(
    members: Mapping[str, SiteSplit],
    evaluate_on: Sequence[SiteSplit],
    settings: TrainingSettings,
    plan: FeaturePlan,
    metric: str = "auc",
) -> Utility:
    """v(S): FedAvg over S's training rows for settings.rounds rounds, scored on all tests.

    Each member trains with the seed of its own name, exactly as its node would. v(∅) is
    the untrained model every job of that family starts from (all-zero for `logistic`).
    """
    if metric not in METRICS:
        raise InvalidInput(f"metric {metric!r} is not known; use one of: {', '.join(METRICS)}")
    data = {
        name: (plan.transform(p.train), plan.encode_labels(p.train_labels, name))
        for name, p in members.items()
    }
    X_test = np.vstack([plan.transform(p.test) for p in evaluate_on])
    y_test = np.concatenate([plan.encode_labels(p.test_labels, p.dataset) for p in evaluate_on])
    width, classes = len(plan.feature_names), len(plan.classes)

    def utility(coalition: Coalition) -> float:
        model = model_for(settings, width, classes)
        names = sorted(coalition)
        for server_round in range(1, settings.rounds + 1) if names else ():
            updates, weights = [], []
            for name in names:
                X, y = data[name]
                local = model_for(settings, width, classes)
                local.arrays = model.arrays
                local_sgd(local, X, y, settings, name, server_round)
                updates.append(local.arrays)
                weights.append(len(y))
            model.arrays = [
                np.average([u[i] for u in updates], axis=0, weights=weights) for i in range(2)
            ]
        score = score_site(model.predict_proba(X_test), y_test)
        value = score.auc if metric == "auc" else score.accuracy
        if value is None:
            raise InvalidInput("the test rows hold one class only; AUC is undefined")
        return float(value)

    return utility


@dataclass(frozen=True)
class Contributions:
    plan: ContributionPlan
    metric: str
    shares: Shares
    released: float | None  # the released model's own metric, for comparison with v(all)

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.plan.model,
            "metric": self.metric,
            "released_metric": self.released,
            **self.shares.as_dict(),
            "extra_epsilon": self.plan.extra_epsilon,
        }


def _model(consortium: Consortium, model_id: str) -> tuple[ModelVersionRow, dict[str, SiteTerms]]:
    with transaction(consortium.sessions) as session:
        row = get(session, ModelVersionRow, model_id)
        session.expunge(row)
    lineage = json.loads(row.lineage_json)
    with transaction(consortium.sessions) as session:
        documents = agreements_for_job(session, row.project)
    terms = {}
    for dataset in lineage["datasets"]:
        if dataset not in documents:
            raise StateError(f"no agreement of {dataset!r} for project {row.project!r} is on file")
        agreement = SignedAgreement.from_json(documents[dataset]).terms
        terms[dataset] = SiteTerms(dataset, consents=agreement.contribution_analysis)
    return row, terms


def plan_model_contributions(consortium: Consortium, model_id: str) -> ContributionPlan:
    """What computing a model's contributions would do and cost, or why it is refused."""
    row, terms = _model(consortium, model_id)
    settings = TrainingSettings.from_json(json.dumps(json.loads(row.lineage_json)["settings"]))
    return plan_contribution(model_id, settings, terms)


def compute_contributions(
    consortium: Consortium, plan: ContributionPlan, metric: str = "auc"
) -> Contributions:
    """Retrain the plan's coalitions, share the value, record it in lineage and ledger."""
    if plan.refusal is not None:
        raise InvalidInput(f"contributions to {plan.model} are refused: {plan.refusal}")
    row, _ = _model(consortium, plan.model)
    lineage = json.loads(row.lineage_json)
    settings = TrainingSettings.from_json(json.dumps(lineage["settings"]))
    with transaction(consortium.sessions) as session:
        owners = {d.name: d.member for d in project_datasets(session, row.project)}
    parts = {d: consortium.node(owners[d]).split(d, settings) for d in plan.members}
    utility = coalition_utility(
        parts, list(parts.values()), settings, FeaturePlan.from_json(row.feature_plan_json), metric
    )
    shares = shapley(plan.members, utility, budget=plan.coalitions)
    released = json.loads(row.metrics_json)["overall"].get(metric)
    result = Contributions(plan, metric, shares, released)
    _record(consortium, row.id, result)
    return result


def _record(consortium: Consortium, model_id: str, result: Contributions) -> None:
    """Lineage and ledger in one transaction, signed by the coordinator that computed it.

    Any member holding the same rows can recompute the shares: training is deterministic.
    """
    payload = result.as_dict()
    with transaction(consortium.sessions) as session:
        row = get(session, ModelVersionRow, model_id)
        lineage = json.loads(row.lineage_json)
        lineage["contributions"] = payload
        row.lineage_json = json.dumps(lineage)
        consortium.ledger.append(
            session,
            Act(COORDINATOR, "model.contributions", payload, project=row.project),
        )
