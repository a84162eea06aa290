"""Reading jobs back: status, per-site participation with the nodes' reasons, round metrics."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRoundRow, JobRow, JobSiteRow
from kumiai.services.consortium import Consortium
from kumiai.services.lookup import get
from kumiai.services.training import recover_interrupted_jobs


@dataclass(frozen=True)
class SiteStatus:
    dataset: str
    member: str
    status: str
    reason: str | None


@dataclass(frozen=True)
class JobInfo:
    id: str
    project: str
    kind: str
    status: str
    planned_rounds: int
    completed_rounds: int
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    settings: dict[str, Any]
    sites: tuple[SiteStatus, ...]
    rounds: tuple[dict[str, Any], ...]


def _info(session, row: JobRow, with_rounds: bool) -> JobInfo:  # type: ignore[no-untyped-def]
    sites = tuple(
        SiteStatus(s.dataset, s.member, s.status, s.reason)
        for s in session.scalars(
            select(JobSiteRow).where(JobSiteRow.job_id == row.id).order_by(JobSiteRow.dataset)
        )
    )
    rounds: tuple[dict[str, Any], ...] = ()
    if with_rounds:
        rounds = tuple(
            {"round": r.round, "seconds": r.seconds, **json.loads(r.metrics_json)}
            for r in session.scalars(
                select(JobRoundRow).where(JobRoundRow.job_id == row.id).order_by(JobRoundRow.round)
            )
        )
    return JobInfo(
        row.id,
        row.project,
        row.kind,
        row.status,
        row.planned_rounds,
        row.completed_rounds,
        row.created_at,
        row.finished_at,
        row.error,
        json.loads(row.spec_json),
        sites,
        rounds,
    )


def list_jobs(consortium: Consortium, project: str | None = None) -> list[JobInfo]:
    recover_interrupted_jobs(consortium)
    with transaction(consortium.sessions) as session:
        query = select(JobRow).order_by(JobRow.created_at)
        if project is not None:
            query = query.where(JobRow.project == project)
        return [_info(session, r, with_rounds=False) for r in session.scalars(query)]


def job_detail(consortium: Consortium, job_id: str) -> JobInfo:
    recover_interrupted_jobs(consortium)
    with transaction(consortium.sessions) as session:
        return _info(session, get(session, JobRow, job_id), with_rounds=True)
