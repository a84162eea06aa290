"""Jobs after the fact: reading them back, failing them, recovering those whose process died.

Reading never writes. A job whose process died reads as `interrupted`, computed from its
pid; only `recover_interrupted_jobs` (run by `kumiai train` before it starts, and by
`kumiai jobs --recover`) marks it failed in the record, raises its recorded spend to what
each node logged (`services.recovery`) and releases the ε its nodes reserved. The training
service imports this module, never the reverse, so reading jobs does not load Flower.
"""

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    DatasetRow,
    JobRoundRow,
    JobRow,
    JobSiteRow,
    PrivacySpendRow,
)
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import KumiaiError
from kumiai.domain.job import JobStatus
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.releasing import AWAITING_NODE, ENDED
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get
from kumiai.services.recovery import reconcile_spend

if TYPE_CHECKING:
    from kumiai.domain.training import TrainingSettings

INTERRUPTED = "interrupted"  # shown on read only; the record says `running` until recovery


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


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_interrupted(row: JobRow) -> bool:
    """Recorded as running, but the process that ran it is gone."""
    return (
        row.status == JobStatus.RUNNING.value and row.pid != os.getpid() and not _pid_alive(row.pid)
    )


def _stopped(row: JobRow) -> str:
    return (
        f"the process running it (pid {row.pid}) stopped after round {row.completed_rounds} "
        f"of {row.planned_rounds}; its recorded rounds are kept and no model was released"
    )


def _info(session: Session, row: JobRow, with_rounds: bool) -> JobInfo:
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
    status, error = row.status, row.error
    if _is_interrupted(row):
        status = INTERRUPTED
        error = (
            f"{_stopped(row)}; `kumiai jobs --recover` (or the next `kumiai train`) marks it "
            "failed and releases the ε its nodes reserved"
        )
    return JobInfo(
        row.id,
        row.project,
        row.kind,
        status,
        row.planned_rounds,
        row.completed_rounds,
        row.created_at,
        row.finished_at,
        error,
        json.loads(row.spec_json),
        sites,
        rounds,
    )


def list_jobs(consortium: Consortium, project: str | None = None) -> list[JobInfo]:
    with transaction(consortium.sessions) as session:
        query = select(JobRow).order_by(JobRow.created_at)
        if project is not None:
            query = query.where(JobRow.project == project)
        return [_info(session, r, with_rounds=False) for r in session.scalars(query)]


def job_detail(consortium: Consortium, job_id: str) -> JobInfo:
    with transaction(consortium.sessions) as session:
        return _info(session, get(session, JobRow, job_id), with_rounds=True)


@dataclass(frozen=True)
class HeldReservation:
    """ε a node still holds for a job that is over: its release failed, so it is retried."""

    job: str
    dataset: str
    member: str
    reason: str
    awaiting_node: bool = False  # the member's node is on its own machine and releases it


AWAITING_REASON = "released by the node when it next checks in: kumiai node release"


def recover_interrupted_jobs(consortium: Consortium) -> list[str]:
    """Mark jobs whose process died as failed; their recorded rounds stay as they were.

    Releases that failed before (a node whose spend log did not verify) are retried too.
    Returns the jobs marked failed.
    """
    recovered = []
    with transaction(consortium.sessions) as session:
        for job in session.scalars(select(JobRow).where(JobRow.status == JobStatus.RUNNING)):
            if _is_interrupted(job):
                job.status = JobStatus.FAILED.value
                job.finished_at = utc_now()
                job.error = f"interrupted: {_stopped(job)}; start a new job"
                _log_failure(consortium, session, job)
                recovered.append(job.id)
        still_held = {row.job_id for row in _held_rows(session)}
    for job_id in sorted(still_held | set(recovered)):
        release_privacy(consortium, job_id)
    return recovered


def release_privacy(consortium: Consortium, job_id: str) -> list[HeldReservation]:
    """The job is over: each node stops holding the ε it reserved but did not spend.

    First the recorded spend is raised to what each node logged (a coordinator killed
    between a node's spend and its own record under-counts; `services.recovery`). Then the
    coordinator asks each node through its port; the node records the release itself, in
    its own signed log. Each node is released on its own: one whose log does not verify
    keeps its reservation (returned, and retried by the next recovery) and never blocks
    the others, nor the consortium's next job. A node on its own machine cannot be asked:
    its row waits for the node to release and report (`services.releasing`), and is
    returned as awaiting its node, not as an error.
    """
    with transaction(consortium.sessions) as session:  # kept even if a release fails
        reconcile_spend(consortium, session, job_id)
    with transaction(consortium.sessions) as session:
        rows = session.scalars(
            select(PrivacySpendRow).where(
                PrivacySpendRow.job_id == job_id, PrivacySpendRow.status != ENDED
            )
        )
        pending = [(row.dataset, get(session, DatasetRow, row.dataset).member) for row in rows]
    held = []
    for dataset, member in pending:
        if not consortium.node_is_here(member):
            _await_node(consortium, job_id, dataset)
            held.append(HeldReservation(job_id, dataset, member, AWAITING_REASON, True))
            continue
        try:
            consortium.node(member).release_privacy(dataset, job_id)
        except KumiaiError as exc:
            held.append(HeldReservation(job_id, dataset, member, str(exc)))
            continue
        with transaction(consortium.sessions) as session:
            row = session.get(PrivacySpendRow, (job_id, dataset))
            assert row is not None  # read above; rows are never deleted
            row.status = ENDED
    return held


def _await_node(consortium: Consortium, job_id: str, dataset: str) -> None:
    with transaction(consortium.sessions) as session:
        row = session.get(PrivacySpendRow, (job_id, dataset))
        assert row is not None  # read above; rows are never deleted
        row.status = AWAITING_NODE


def held_reservations(consortium: Consortium) -> list[HeldReservation]:
    """Reservations of jobs that are over but whose node has not released them."""
    with transaction(consortium.sessions) as session:
        return [_held(session, row) for row in _held_rows(session)]


def _held(session: Session, row: PrivacySpendRow) -> HeldReservation:
    member = get(session, DatasetRow, row.dataset).member
    if row.status == AWAITING_NODE:
        return HeldReservation(row.job_id, row.dataset, member, AWAITING_REASON, True)
    reason = "its release failed; `kumiai jobs --recover` retries it"
    return HeldReservation(row.job_id, row.dataset, member, reason)


def _held_rows(session: Session) -> list[PrivacySpendRow]:
    over = select(JobRow.id).where(JobRow.status != JobStatus.RUNNING.value)
    query = select(PrivacySpendRow).where(
        PrivacySpendRow.status != ENDED, PrivacySpendRow.job_id.in_(over)
    )
    return list(session.scalars(query))


def fail_job(consortium: Consortium, job_id: str, message: str) -> None:
    """Record why a job stopped; its finished rounds stay, no model is released."""
    with transaction(consortium.sessions) as session:
        row = get(session, JobRow, job_id)
        row.status, row.finished_at, row.error = JobStatus.FAILED.value, utc_now(), message
        _log_failure(consortium, session, row)


def _log_failure(consortium: Consortium, session: Session, job: JobRow) -> None:
    payload = {"job": job.id, "completed_rounds": job.completed_rounds, "error": job.error}
    act = Act(COORDINATOR, "job.failed", payload, project=job.project)
    consortium.ledger.append(session, act)


def new_job_id() -> str:
    """A fresh job id: `job-` and 8 hex digits."""
    return f"job-{uuid.uuid4().hex[:8]}"


def running_job(job_id: str, project: str, kind: str, settings: "TrainingSettings") -> JobRow:
    """The record of a job starting now in this process (its pid marks it interrupted if the
    process dies)."""
    now = utc_now()
    return JobRow(
        id=job_id,
        project=project,
        kind=kind,
        status=JobStatus.RUNNING.value,
        spec_json=settings.to_json(),
        planned_rounds=settings.rounds,
        completed_rounds=0,
        created_at=now,
        started_at=now,
        pid=os.getpid(),
    )
