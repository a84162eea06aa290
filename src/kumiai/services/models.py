"""Released model versions: metrics per site, lineage, and the model itself for prediction."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import ModelVersionRow
from kumiai.services.consortium import Consortium
from kumiai.services.lookup import get

if TYPE_CHECKING:
    from kumiai.adapters.models.interface import Model
    from kumiai.domain.preprocessing import FeaturePlan


@dataclass(frozen=True)
class ModelInfo:
    id: str
    project: str
    version: int
    job_id: str
    strategy: str
    created_at: datetime
    metrics: dict[str, Any]
    lineage: dict[str, Any]


def _info(row: ModelVersionRow) -> ModelInfo:
    return ModelInfo(
        row.id,
        row.project,
        row.version,
        row.job_id,
        row.strategy,
        row.created_at,
        json.loads(row.metrics_json),
        json.loads(row.lineage_json),
    )


def list_models(consortium: Consortium, project: str | None = None) -> list[ModelInfo]:
    with transaction(consortium.sessions) as session:
        query = select(ModelVersionRow).order_by(ModelVersionRow.project, ModelVersionRow.version)
        if project is not None:
            query = query.where(ModelVersionRow.project == project)
        return [_info(r) for r in session.scalars(query)]


def model_detail(consortium: Consortium, model_id: str) -> ModelInfo:
    with transaction(consortium.sessions) as session:
        return _info(get(session, ModelVersionRow, model_id))


def load_model(consortium: Consortium, model_id: str) -> tuple["FeaturePlan", "Model"]:
    """The feature plan and fitted model, ready for `plan.transform` and `predict_proba`.

    The model's family and shape are the job's settings, kept in the version's lineage.
    """
    # Lazy: numpy and scipy are for prediction; listing and showing models must start fast.
    import numpy as np

    from kumiai.adapters.models.families import model_for
    from kumiai.adapters.storage.arrays import arrays_from_bytes
    from kumiai.domain.preprocessing import FeaturePlan
    from kumiai.domain.training import TrainingSettings

    with transaction(consortium.sessions) as session:
        row = get(session, ModelVersionRow, model_id)
        plan = FeaturePlan.from_json(row.feature_plan_json)
        settings = TrainingSettings(**json.loads(row.lineage_json).get("settings", {}))
        model = model_for(settings, len(plan.feature_names), len(plan.classes))
        model.arrays = arrays_from_bytes(row.parameters)
        model.classes_ = np.array(plan.classes, dtype=object)
        return plan, model
