"""Personalising a released model: each site fine-tunes it at its own node.

The coordinator checks the model-level rule first (kumiai.domain.personalisation: epochs,
no DP model), so a refused request contacts no node and changes nothing. Then it asks, through
the port, each node whose dataset trained the model; each node checks its own agreement,
fine-tunes on its own training rows, keeps the personalised model and returns only the
aggregate scores on its own test rows. The scores and the refusals are recorded in one
signed `model.personalised` ledger entry.
"""

import json
from dataclasses import dataclass, field

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    DatasetRow,
    ModelVersionRow,
    ProjectMemberRow,
    ProjectRow,
)
from kumiai.domain.errors import InvalidInput
from kumiai.domain.metrics import SiteScore
from kumiai.domain.personalisation import DEFAULT_EPOCHS, model_refusal
from kumiai.domain.preprocessing import FeaturePlan
from kumiai.domain.training import TrainingSettings
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get


@dataclass(frozen=True)
class Personalisation:
    model: str
    epochs: int
    scores: dict[str, SiteScore]  # dataset -> the personalised model on its own test rows
    refused: dict[str, str] = field(default_factory=dict)  # dataset -> the node's reason


def personalise(
    consortium: Consortium, model_id: str, *, epochs: int = DEFAULT_EPOCHS, by: str | None = None
) -> Personalisation:
    """Have every site that trained `model_id` fine-tune it at its node; record the scores.

    `by` is the project member asking (default: the project's proposer); it signs the entry.
    """
    with transaction(consortium.sessions) as session:
        row = get(session, ModelVersionRow, model_id)
        lineage = json.loads(row.lineage_json)
        settings = TrainingSettings(**lineage.get("settings", {}))
        refusal = model_refusal(model_id, settings, epochs)
        if refusal is not None:
            raise InvalidInput(refusal)
        project = row.project
        by = by or get(session, ProjectRow, project).proposed_by
        if session.get(ProjectMemberRow, (project, by)) is None:
            raise InvalidInput(
                f"{by!r} is not a member of project {project!r}; only its members personalise "
                "its models"
            )
        plan = FeaturePlan.from_json(row.feature_plan_json)
        parameters = row.parameters
        sites = {d: get(session, DatasetRow, d).member for d in lineage["datasets"]}
    scores: dict[str, SiteScore] = {}
    refused: dict[str, str] = {}
    for dataset, member in sorted(sites.items()):
        allowed, reason, score = consortium.node(member).personalise(
            dataset,
            project=project,
            model=model_id,
            settings=settings,
            plan=plan,
            parameters=parameters,
            epochs=epochs,
        )
        if allowed and score is not None:
            scores[dataset] = score
        else:
            refused[dataset] = reason
    payload = {
        "model": model_id,
        "epochs": epochs,
        "sites": {d: s.as_dict() for d, s in scores.items()},
        "refused": refused,
    }
    with transaction(consortium.sessions) as session:
        consortium.ledger.append(
            session, Act(by, "model.personalised", payload, member=by, project=project)
        )
    return Personalisation(model_id, epochs, scores, refused)
