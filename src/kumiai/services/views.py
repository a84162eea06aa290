"""One governance record with what surrounds it, for the `show` commands. Reads only.

Built from the owning services' own listings, so a show command says exactly what the
list commands say about the same record, plus its context.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import AgreementRow, DatasetRow, ProjectRow
from kumiai.domain.agreement import SignedAgreement
from kumiai.services import agreements, jobs, milestones, models, projects, spend
from kumiai.services.agreements import AgreementInfo, RequestInfo
from kumiai.services.consortium import Consortium
from kumiai.services.jobs import JobInfo
from kumiai.services.lookup import get
from kumiai.services.milestones import MilestoneInfo
from kumiai.services.models import ModelInfo
from kumiai.services.projects import ProjectInfo
from kumiai.services.spend import BudgetInfo

if TYPE_CHECKING:
    from kumiai.services.datasets import DatasetInfo


@dataclass(frozen=True)
class DatasetView:
    dataset: "DatasetInfo"
    registered_at: datetime
    lifetime_epsilon: float | None  # the steward's budget, mirrored from the node
    requests: tuple[RequestInfo, ...]  # every project that asked, and what the steward said


@dataclass(frozen=True)
class ProjectView:
    project: ProjectInfo
    approved_at: datetime | None
    closed_at: datetime | None
    requests: tuple[RequestInfo, ...]
    agreements: tuple[AgreementInfo, ...]
    jobs: tuple[JobInfo, ...]
    models: tuple[ModelInfo, ...]
    budget: BudgetInfo  # its theme, money against actual, and compute quota
    milestones: tuple[MilestoneInfo, ...]


@dataclass(frozen=True)
class AgreementView:
    agreement: AgreementInfo
    terms: dict[str, Any]  # what the steward signed, as the node will check it
    key_fingerprint: str  # of the steward key that signed


def dataset_view(consortium: Consortium, name: str) -> DatasetView:
    # Lazy: the datasets service loads pandas and scipy to register files; only this view
    # of the three needs it.
    from kumiai.services.datasets import list_datasets

    with transaction(consortium.sessions) as session:
        row = get(session, DatasetRow, name)
        registered_at, lifetime = row.registered_at, row.epsilon_budget
    [dataset] = [d for d in list_datasets(consortium) if d.name == name]
    requests = tuple(r for r in agreements.list_requests(consortium) if r.dataset == name)
    return DatasetView(dataset, registered_at, lifetime, requests)


def project_view(consortium: Consortium, name: str) -> ProjectView:
    with transaction(consortium.sessions) as session:
        row = get(session, ProjectRow, name)
        approved_at, closed_at = row.approved_at, row.closed_at
    [project] = [p for p in projects.list_projects(consortium) if p.name == name]
    return ProjectView(
        project=project,
        approved_at=approved_at,
        closed_at=closed_at,
        requests=tuple(agreements.list_requests(consortium, name)),
        agreements=tuple(agreements.list_agreements(consortium, name)),
        jobs=tuple(jobs.list_jobs(consortium, name)),
        models=tuple(models.list_models(consortium, name)),
        budget=spend.project_budget(consortium, name),
        milestones=tuple(milestones.list_milestones(consortium, name)),
    )


def agreement_view(consortium: Consortium, agreement_id: str) -> AgreementView:
    with transaction(consortium.sessions) as session:
        signed = SignedAgreement.from_json(get(session, AgreementRow, agreement_id).document)
    [info] = [a for a in agreements.list_agreements(consortium) if a.id == agreement_id]
    return AgreementView(info, signed.terms.payload(), signed.key_fingerprint)
