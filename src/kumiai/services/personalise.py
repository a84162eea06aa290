"""Personalising a released model: each site fine-tunes it at its own node.

The coordinator checks the model-level rule first (kumiai.domain.personalisation: epochs,
no client-level DP model), so a refused request contacts no node and changes nothing. Then
it asks, through the port, each node whose dataset trained the model; each node checks its
own agreement, fine-tunes on its own training rows, keeps the personalised model and returns
only the aggregate scores on its own test rows. A model trained with DP-SGD is fine-tuned
with DP-SGD: each node charges the extra ε in its own spend log first (or refuses), under a
job of kind `personalisation` that the coordinator mirrors for `kumiai budget`. The scores,
the charges and the refusals are recorded in one signed `model.personalised` ledger entry.
"""

import json
import uuid
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    DatasetRow,
    JobRow,
    JobSiteRow,
    ModelVersionRow,
    ProjectMemberRow,
    ProjectRow,
)
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, KumiaiError
from kumiai.domain.job import JobStatus
from kumiai.domain.metrics import SiteScore
from kumiai.domain.personalisation import DEFAULT_EPOCHS, PERSONALISATION, model_refusal
from kumiai.domain.preprocessing import FeaturePlan
from kumiai.domain.training import TrainingSettings
from kumiai.services.consortium import Consortium
from kumiai.services.jobs import fail_job, release_privacy, running_job
from kumiai.services.ledger import Act
from kumiai.services.lookup import get
from kumiai.services.privacy import mirror_charge


@dataclass(frozen=True)
class Personalisation:
    model: str
    epochs: int
    scores: dict[str, SiteScore]  # dataset -> the personalised model on its own test rows
    refused: dict[str, str] = field(default_factory=dict)  # dataset -> the node's reason
    charged: dict[str, float] = field(default_factory=dict)  # dataset -> ε its node charged
    job: str | None = None  # the charges' job (a DP-SGD model only)
    proximal_mu: float | None = None  # a proximal fit's pull, instead of epochs of SGD


def personalise(
    consortium: Consortium,
    model_id: str,
    *,
    epochs: int | None = None,
    by: str | None = None,
    proximal_mu: float | None = None,
) -> Personalisation:
    """Have every site that trained `model_id` fine-tune it at its node; record the scores.

    `by` is the project member asking (default: the project's proposer); it signs the entry.
    `epochs` defaults to the slice a DP job reserved (`personalisation_epochs`), else 5.
    `proximal_mu` (a model trained without DP): each node fits its rows to the optimum with
    that pull back to the released model, instead of epochs of SGD.
    """
    with transaction(consortium.sessions) as session:
        row = get(session, ModelVersionRow, model_id)
        lineage = json.loads(row.lineage_json)
        settings = TrainingSettings(**lineage.get("settings", {}))
        if epochs is None:
            epochs = settings.personalisation_epochs or DEFAULT_EPOCHS
        refusal = model_refusal(model_id, settings, epochs, proximal_mu)
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
        released_job = row.job_id
        sites = {d: get(session, DatasetRow, d).member for d in lineage["datasets"]}
    job = _start_charges(consortium, project, settings, sites) if settings.private else None
    scores: dict[str, SiteScore] = {}
    refused: dict[str, str] = {}
    charged: dict[str, float] = {}
    try:
        for dataset, member in sorted(sites.items()):
            node = consortium.node(member)
            try:
                allowed, reason, score = node.personalise(
                    dataset,
                    project=project,
                    model=model_id,
                    settings=settings,
                    plan=plan,
                    parameters=parameters,
                    epochs=epochs,
                    job=released_job if job else "",
                    charge_id=job or "",
                    proximal_mu=proximal_mu,
                )
            except KumiaiError as exc:
                allowed, reason, score = False, str(exc), None
            if allowed and score is not None:
                scores[dataset] = score
                if job is not None:
                    charged[dataset] = node.budget(dataset).jobs[job].spent
            else:
                refused[dataset] = reason
        result = Personalisation(model_id, epochs, scores, refused, charged, job, proximal_mu)
        _record(consortium, result, by, project, sites)
    except BaseException as exc:
        if job is not None:
            fail_job(consortium, job, f"personalisation failed: {exc}")
        raise
    finally:
        if job is not None:
            release_privacy(consortium, job)
    return result


def _start_charges(
    consortium: Consortium, project: str, settings: TrainingSettings, sites: dict[str, str]
) -> str:
    """The charges' job record, written before any node is asked: a process killed after a
    node paid is recovered like any job (its spend raised to the node's log)."""
    job = f"job-{uuid.uuid4().hex[:8]}"
    with transaction(consortium.sessions) as session:
        session.add(running_job(job, project, PERSONALISATION, settings))
        session.flush()
        for dataset, member in sites.items():
            session.add(JobSiteRow(job_id=job, dataset=dataset, member=member, status="pending"))
    return job


def _record(
    consortium: Consortium,
    result: Personalisation,
    by: str,
    project: str,
    sites: dict[str, str],
) -> None:
    """The signed entry, with each node's charge mirrored for `kumiai budget`, at once."""
    payload = {
        "model": result.model,
        "epochs": result.epochs,
        "sites": {d: s.as_dict() for d, s in result.scores.items()},
        "refused": result.refused,
    }
    if result.proximal_mu is not None:
        payload["proximal_mu"] = result.proximal_mu
    with transaction(consortium.sessions) as session:
        if result.job is not None:
            payload["job"] = result.job
            payload["charged"] = result.charged
            _mirror(consortium, session, result, project, sites)
        consortium.ledger.append(
            session, Act(by, "model.personalised", payload, member=by, project=project)
        )


def _mirror(
    consortium: Consortium,
    session: Session,
    result: Personalisation,
    project: str,
    sites: dict[str, str],
) -> None:
    """Each node's charge as the job's privacy spend, and every site's outcome."""
    assert result.job is not None
    for dataset, member in sites.items():
        site = session.get(JobSiteRow, (result.job, dataset))
        if site is None:
            continue
        if dataset in result.refused:
            site.status, site.reason = "refused", result.refused[dataset]
            continue
        site.status = "participating"
        mirror_charge(consortium, session, member, dataset, result.job, project)
    job = get(session, JobRow, result.job)
    job.status, job.finished_at = JobStatus.COMPLETED.value, utc_now()
