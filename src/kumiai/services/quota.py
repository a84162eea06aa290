"""The compute quota at the coordinator: counted from the records, refused before a job starts.

quota = the sum of the `site_rounds` the project's allocations name (none: no quota).
used = over the project's earlier jobs, rounds x sites (domain.quota.job_usage): a running
job holds its whole plan, a finished or failed one counts the rounds it ran on the sites
that admitted it. asked = the new job's rounds x the sites that may admit it: the project's
datasets with a signed agreement not revoked or expired (a node may still refuse; the ask is
an upper bound, so a job never runs past the quota).
"""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import AgreementRow, FundAllocationRow, JobRow, JobSiteRow
from kumiai.domain.clock import utc_now
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.quota import ADMITTED, MAY_RUN, QuotaExceeded, check_quota, job_usage
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act


@dataclass(frozen=True)
class QuotaInfo:
    site_rounds: int | None  # None: the project has no quota
    used: int
    left: int | None


def project_quota(session: Session, project: str) -> int | None:
    values = session.scalars(
        select(FundAllocationRow.site_rounds).where(
            FundAllocationRow.project == project, FundAllocationRow.site_rounds.is_not(None)
        )
    ).all()
    return sum(v for v in values if v is not None) if values else None


def used_site_rounds(session: Session, project: str) -> int:
    used = 0
    for job in session.scalars(select(JobRow).where(JobRow.project == project)):
        counted = MAY_RUN if job.status == "running" else ADMITTED
        sites = session.scalars(select(JobSiteRow.status).where(JobSiteRow.job_id == job.id))
        admitted = sum(1 for status in sites if status in counted)
        used += job_usage(job.status, job.planned_rounds, job.completed_rounds, admitted)
    return used


def quota_info(session: Session, project: str) -> QuotaInfo:
    quota, used = project_quota(session, project), used_site_rounds(session, project)
    return QuotaInfo(quota, used, None if quota is None else quota - used)


def admissible_sites(session: Session, project: str) -> int:
    now = utc_now()
    rows = session.scalars(
        select(AgreementRow.dataset).where(
            AgreementRow.project == project,
            AgreementRow.revoked_at.is_(None),
            AgreementRow.expires_at > now,
        )
    )
    return len(set(rows))


def refuse_over_quota(consortium: Consortium, project: str, rounds: int) -> None:
    """Before a job starts: a job past the quota is refused with a signed `job.refused`."""
    refused: QuotaExceeded | None = None
    with transaction(consortium.sessions) as session:
        quota = project_quota(session, project)
        if quota is None:
            return
        sites = admissible_sites(session, project)
        try:
            check_quota(project, quota, used_site_rounds(session, project), rounds * sites)
        except QuotaExceeded as exc:
            refused = exc
            payload = {
                "job": None,
                "project": project,
                "reason": str(exc),
                "quota": {**exc.document(), "rounds": rounds, "sites": sites},
            }
            consortium.ledger.append(
                session, Act(COORDINATOR, "job.refused", payload, project=project)
            )
    if refused is not None:
        raise refused
