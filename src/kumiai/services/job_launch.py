"""A training job started through the coordinator's API: checked at once, run in the background.

`POST /jobs` is answered as soon as the job's record exists (202 with its id); the job runs
in a thread of the `coordinator serve` process, on the SuperLink that process supervises,
and is read back with `GET /jobs/{id}`. Every refusal comes before anything is started, with
the CLI's own checks and messages (the quota's refusal is signed as `job.refused`, as
`kumiai train`'s is). A job thread that crashes leaves its job failed, never `running`; a
serve process that stops mid-job leaves it `interrupted`, and the next job started (or
`kumiai jobs --recover`) marks it failed.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRow, ProjectMemberRow, ProjectRow
from kumiai.domain.errors import KumiaiError, StateError
from kumiai.domain.job import JobStatus
from kumiai.domain.roles import Role, require_project_member
from kumiai.services.access import Principal
from kumiai.services.consortium import Consortium
from kumiai.services.jobs import fail_job, list_jobs, new_job_id, recover_interrupted_jobs
from kumiai.services.lookup import get
from kumiai.services.privacy import plan_job_privacy
from kumiai.services.quota import refuse_over_quota

if TYPE_CHECKING:
    from kumiai.adapters.flower.superlink import SuperLinkAddress
    from kumiai.domain.training import TrainingSettings

Runner = Callable[..., Any]
"""`services.training.train`, or a stand-in with its signature (tests)."""

START_WAIT_SECONDS = 30.0  # how long the request waits for the job's record to exist

NO_SUPERLINK = (
    "this coordinator supervises no SuperLink, so it cannot run jobs on the members' nodes; "
    "its operator restarts it with `kumiai coordinator serve --superlink-port PORT`"
)


@dataclass(frozen=True)
class StartedJob:
    job_id: str
    by: str | None  # the member recorded as starting it (None: the project's proposer)
    thread: threading.Thread


def _project_members(consortium: Consortium, project: str) -> list[str]:
    with transaction(consortium.sessions) as session:
        get(session, ProjectRow, project)  # an unknown project: 404, naming it
        query = select(ProjectMemberRow.member).where(ProjectMemberRow.project == project)
        return list(session.scalars(query))


def _refuse_a_running_job(consortium: Consortium, project: str) -> None:
    for job in list_jobs(consortium, project):
        if job.status == JobStatus.RUNNING.value:
            raise StateError(
                f"job {job.id} of project {project!r} is still running; one job per project "
                f"at a time: watch it with `kumiai job {job.id}` and start the next when it ends"
            )


def _job_exists(consortium: Consortium, job_id: str) -> bool:
    with transaction(consortium.sessions) as session:
        return session.get(JobRow, job_id) is not None


def start_training_job(
    consortium: Consortium,
    caller: Principal,
    project: str,
    settings: "TrainingSettings",
    superlink: "SuperLinkAddress | None",
    *,
    admission_timeout: float | None = None,
    round_timeout: float | None = None,
    runner: Runner | None = None,
) -> StartedJob:
    """Check the caller and the job as `kumiai train` does, then start it in a thread.

    The caller's own member signs the job's start (`by`); the operator's job is the
    project's proposer's, as `kumiai train` on the coordinator's machine makes it.
    """
    require_project_member(
        caller.name, caller.member, caller.roles, project, _project_members(consortium, project)
    )
    if superlink is None:
        raise StateError(NO_SUPERLINK)
    _refuse_a_running_job(consortium, project)
    privacy = plan_job_privacy(consortium, project, settings)  # bad ε, δ, σ: refused here
    refuse_over_quota(consortium, project, privacy.settings.rounds)
    recover_interrupted_jobs(consortium)  # a job its stopped serve process left: failed now
    by = caller.member if Role.OPERATOR not in caller.roles else None
    if runner is None:
        from kumiai.services.training import train as runner  # loads Flower: jobs only
    job_id = new_job_id()
    crashed: list[BaseException] = []

    def run() -> None:
        try:
            runner(
                consortium,
                project,
                settings,
                None,
                by=by,
                privacy=privacy,
                superlink=superlink,
                admission_timeout=admission_timeout,
                round_timeout=round_timeout,
                job_id=job_id,
                requested_by=caller.name,
            )
        except BaseException as exc:  # the thread's last word: the record says why
            crashed.append(exc)
            _fail_if_running(consortium, job_id, exc)

    thread = threading.Thread(target=run, name=f"kumiai-{job_id}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_WAIT_SECONDS
    while not _job_exists(consortium, job_id) and thread.is_alive():
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if crashed and not _job_exists(consortium, job_id):
        error = crashed[0]  # refused before its record was written (e.g. by a non-member)
        if isinstance(error, KumiaiError):
            raise error
        raise StateError(f"the job did not start: {type(error).__name__}: {error}")
    return StartedJob(job_id, by, thread)


def _fail_if_running(consortium: Consortium, job_id: str, error: BaseException) -> None:
    """`train` fails its own job on the way out; a runner that did not is failed here."""
    with transaction(consortium.sessions) as session:
        row = session.get(JobRow, job_id)
        if row is None or row.status != JobStatus.RUNNING.value:
            return
    reason = (
        str(error)
        if isinstance(error, KumiaiError)
        else f"internal error: {type(error).__name__}: {error}"
    )
    fail_job(consortium, job_id, reason)
