"""Federated training jobs: admit, train round by round, record, release a model version.

Each round is committed on its own, so a job killed mid-way keeps its finished rounds and
is marked failed on the next start; a model version is written only together with the
job's completion, in one transaction, so nothing is ever half-released.
"""

import io
import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from flwr.app import Message
from sqlalchemy import func, select

from kumiai.adapters.flower.clientapp import build_client_app
from kumiai.adapters.flower.guard import Mod
from kumiai.adapters.flower.protocol import encode_consistency
from kumiai.adapters.flower.serverapp import FederatedJob, build_server_app
from kumiai.adapters.flower.simulation import PartitionLocator, run_simulation
from kumiai.adapters.spendlog import SpendLog
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    DatasetRow,
    JobRoundRow,
    JobRow,
    JobSiteRow,
    ModelVersionRow,
    PrivacySpendRow,
    ProjectMemberRow,
    ProjectRow,
)
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, JobFailed, KumiaiError
from kumiai.domain.job import JobDocument, JobKind, JobStatus, sign_job
from kumiai.domain.ledger import COORDINATOR, TreeHead
from kumiai.domain.metrics import SiteScore, combine
from kumiai.domain.preprocessing import SiteSummary
from kumiai.domain.project import ProjectStatus, require_active
from kumiai.domain.training import TrainingSettings
from kumiai.services.agreements import agreements_for_job
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get, project_datasets
from kumiai.services.node import NodeWorker
from kumiai.services.privacy import plan_privacy, resolve_settings
from kumiai.services.transparency import consistency_proofs, record_cosignature


@dataclass(frozen=True)
class RoundReport:
    round: int
    rounds: int
    train_loss: float | None
    overall: dict[str, float | int | None]
    sites: dict[str, dict[str, float | int | None]]
    seconds: float
    epsilons: dict[str, float] = field(default_factory=dict)  # cumulative ε per dataset
    member_epsilon: float | None = None  # client-level DP: Flower's accountant, per member


class TrainingProgress(Protocol):
    """What an interface shows while a job runs (a Rich bar in the CLI)."""

    def admitted(self, job_id: str, sites: list[str], refused: dict[str, str]) -> None: ...

    def refused(self, dataset: str, reason: str, server_round: int) -> None: ...

    def round_done(self, report: RoundReport) -> None: ...


@dataclass
class TrainingOutcome:
    job_id: str
    model_id: str
    rounds: int
    overall: dict[str, float | int | None]
    sites: dict[str, dict[str, float | int | None]]
    refused: dict[str, str] = field(default_factory=dict)
    seconds_per_round: float = 0.0
    epsilons: dict[str, float] = field(default_factory=dict)  # ε each dataset spent
    member_epsilon: float | None = None  # client-level DP, per member (Flower's accountant)
    planned: dict[str, dict[str, float]] = field(default_factory=dict)  # each node's DP plan


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


def recover_interrupted_jobs(consortium: Consortium) -> list[str]:
    """Mark jobs whose process died as failed; their recorded rounds stay as they were."""
    recovered = []
    with transaction(consortium.sessions) as session:
        for job in session.scalars(select(JobRow).where(JobRow.status == JobStatus.RUNNING)):
            if job.pid != os.getpid() and not _pid_alive(job.pid):
                job.status = JobStatus.FAILED.value
                job.finished_at = utc_now()
                job.error = (
                    f"interrupted: the process running it (pid {job.pid}) stopped after "
                    f"round {job.completed_rounds} of {job.planned_rounds}; its recorded "
                    "rounds are kept and no model was released; start a new job"
                )
                _log_failure(consortium, session, job)
                recovered.append(job.id)
    for job_id in recovered:
        release_privacy(consortium, job_id)
    return recovered


def release_privacy(consortium: Consortium, job_id: str) -> None:
    """The job is over: each node stops holding the ε it reserved but did not spend.

    On one machine the coordinator reaches each node's spend log directly; the node still
    records the release itself, in its own signed log.
    """
    with transaction(consortium.sessions) as session:
        rows = list(
            session.scalars(select(PrivacySpendRow).where(PrivacySpendRow.job_id == job_id))
        )
        for row in rows:
            member = get(session, DatasetRow, row.dataset).member
            SpendLog(consortium.node(member), row.dataset).release(job_id)
            row.status = "ended"


def _log_failure(consortium: Consortium, session: Any, job: JobRow) -> None:
    payload = {"job": job.id, "completed_rounds": job.completed_rounds, "error": job.error}
    act = Act(COORDINATOR, "job.failed", payload, project=job.project)
    consortium.ledger.append(session, act)


class _JobRecorder:
    """Writes what the federation reports into the job's record, one commit per event."""

    def __init__(
        self,
        consortium: Consortium,
        job: JobDocument,
        progress: TrainingProgress | None,
        level: str = "record",
    ) -> None:
        self.consortium, self.progress, self.level = consortium, progress, level
        self.job_id, self.rounds, self.project = job.job_id, job.rounds, job.project
        self.refused: dict[str, str] = {}
        self.planned: dict[str, dict[str, float]] = {}
        self.last: RoundReport | None = None
        self.seconds: list[float] = []

    def _site(self, session, dataset: str) -> JobSiteRow | None:  # type: ignore[no-untyped-def]
        return session.get(JobSiteRow, (self.job_id, dataset))

    def sites_decided(self, admitted: dict[str, SiteSummary], refused: dict[str, str]) -> None:
        with transaction(self.consortium.sessions) as session:
            for dataset in admitted:
                if (row := self._site(session, dataset)) is not None:
                    row.status = "participating"
            for dataset, reason in refused.items():
                if (row := self._site(session, dataset)) is not None:
                    row.status, row.reason = "refused", reason
                    self._log_refusal(session, row, reason, 0)
        self.refused.update(refused)
        if self.progress:
            self.progress.admitted(self.job_id, sorted(admitted), refused)

    def site_refused(self, dataset: str, reason: str, server_round: int) -> None:
        text = f"round {server_round}: {reason}"
        with transaction(self.consortium.sessions) as session:
            if (row := self._site(session, dataset)) is not None:
                row.status, row.reason = "left", text
                self._log_refusal(session, row, reason, server_round)
        self.refused[dataset] = text
        if self.progress:
            self.progress.refused(dataset, text, server_round)

    def _log_refusal(self, session: Any, row: JobSiteRow, reason: str, server_round: int) -> None:
        """Signed by the refusing member's key: the node, not the coordinator, said no."""
        payload = {
            "job": self.job_id,
            "dataset": row.dataset,
            "round": server_round,
            "reason": reason,
        }
        act = Act(
            row.member,
            "job.refused",
            payload,
            member=row.member,
            dataset=row.dataset,
            project=self.project,
        )
        self.consortium.ledger.append(session, act)

    def cosigned(self, witness: str, head_json: str, signature: str) -> None:
        record_cosignature(self.consortium, witness, TreeHead.from_json(head_json), signature)

    def privacy_planned(self, dataset: str, plan: dict[str, float]) -> None:
        """Mirror what the node reserved (display only: the node's spend log is the record)."""
        self.planned[dataset] = plan
        with transaction(self.consortium.sessions) as session:
            session.merge(
                PrivacySpendRow(
                    job_id=self.job_id,
                    dataset=dataset,
                    project=self.project,
                    planned=plan["epsilon"],
                    spent=0.0,
                    delta=plan["delta"],
                    noise_multiplier=plan["noise_multiplier"],
                    rounds=0,
                    status="running",
                    level=self.level,
                )
            )

    def round_done(
        self,
        server_round: int,
        train_loss: float | None,
        scores: dict[str, SiteScore],
        seconds: float,
        epsilons: dict[str, float],
        member_epsilon: float | None = None,
    ) -> None:
        report = RoundReport(
            round=server_round,
            rounds=self.rounds,
            train_loss=train_loss,
            overall=combine(list(scores.values())).as_dict() if scores else {},
            sites={d: s.as_dict() for d, s in sorted(scores.items())},
            seconds=seconds,
            epsilons=dict(sorted(epsilons.items())),
            member_epsilon=member_epsilon,
        )
        with transaction(self.consortium.sessions) as session:
            session.add(
                JobRoundRow(
                    job_id=self.job_id,
                    round=server_round,
                    seconds=seconds,
                    recorded_at=utc_now(),
                    metrics_json=json.dumps(
                        {
                            "train_loss": train_loss,
                            "overall": report.overall,
                            "sites": report.sites,
                            "epsilon": report.epsilons,
                            "member_epsilon": member_epsilon,
                        }
                    ),
                )
            )
            get(session, JobRow, self.job_id).completed_rounds = server_round
            payload = {
                "job": self.job_id,
                "round": server_round,
                "participants": sorted(scores),
                "examples": report.overall.get("examples"),
                "epsilon": report.epsilons,
            }
            if member_epsilon is not None:
                payload["member_epsilon"] = member_epsilon
            for dataset, spent in epsilons.items():
                row = session.get(PrivacySpendRow, (self.job_id, dataset))
                if row is not None:
                    row.spent, row.rounds = spent, server_round
            act = Act(COORDINATOR, "round.completed", payload, project=self.project)
            self.consortium.ledger.append(session, act)
        self.last = report
        self.seconds.append(seconds)
        if self.progress:
            self.progress.round_done(report)


def _arrays_to_bytes(arrays: list[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    return buffer.getvalue()


def arrays_from_bytes(blob: bytes) -> list[np.ndarray]:
    with np.load(io.BytesIO(blob)) as archive:
        return [archive[f"arr_{i}"] for i in range(len(archive.files))]


def _start_job(
    consortium: Consortium, project: str, settings: TrainingSettings, by: str | None
) -> tuple[FederatedJob, list[tuple[str, str]], str]:
    """Create the job record and the signed job document; one node per requested dataset."""
    with transaction(consortium.sessions) as session:
        project_row = get(session, ProjectRow, project)
        require_active(project, ProjectStatus(project_row.status))
        by = by or project_row.proposed_by
        if session.get(ProjectMemberRow, (project, by)) is None:
            raise InvalidInput(
                f"{by!r} is not a member of project {project!r}; only its members start jobs"
            )
        datasets = project_datasets(session, project)
        if not datasets:
            raise InvalidInput(
                f"project {project!r} has no data-use requests yet; request "
                f"datasets first: kumiai request {project} --dataset NAME ..."
            )
        job_id = f"job-{uuid.uuid4().hex[:8]}"
        now = utc_now()
        agreements = agreements_for_job(session, project)
        signed = sign_job(
            JobDocument(
                job_id=job_id,
                project=project,
                purpose=project_row.purpose,
                kind=JobKind.TRAIN,
                datasets=tuple(d.name for d in datasets),
                settings=settings,
                agreements={
                    d: SignedAgreement.from_json(text).terms.agreement_id
                    for d, text in agreements.items()
                },
                issued_at=now,
            ),
            consortium.key_of(COORDINATOR),
        )
        session.add(
            JobRow(
                id=job_id,
                project=project,
                kind=JobKind.TRAIN.value,
                status=JobStatus.RUNNING.value,
                spec_json=settings.to_json(),
                planned_rounds=settings.rounds,
                completed_rounds=0,
                created_at=now,
                started_at=now,
                pid=os.getpid(),
            )
        )
        session.flush()
        for d in datasets:
            session.add(
                JobSiteRow(job_id=job_id, dataset=d.name, member=d.member, status="pending")
            )
        job = FederatedJob(signed=signed, agreements=agreements, expected_nodes=len(datasets))
        sites = [(str(consortium.member_home(d.member)), d.name) for d in datasets]
        # The ledger holds the very document the nodes admit, and its signature.
        payload = {"job": job_id, "document": json.loads(signed.to_json())}
        consortium.ledger.append(
            session, Act(by, "job.started", payload, member=by, project=project)
        )
    return job, sites, by


def _release(consortium: Consortium, job: FederatedJob, recorder: _JobRecorder, by: str) -> str:
    """Complete the job and write its model version in one transaction."""
    assert job.plan is not None and recorder.last is not None
    participating = sorted(recorder.last.sites)
    lineage = {
        "job": job.ticket.job_id,
        "datasets": participating,
        "agreements": {
            d: SignedAgreement.from_json(job.agreements[d]).terms.agreement_id
            for d in participating
        },
        "refused": recorder.refused,
        "settings": json.loads(job.settings.to_json()),
    }
    with transaction(consortium.sessions) as session:
        project = job.ticket.project
        version = (
            session.scalar(
                select(func.max(ModelVersionRow.version)).where(ModelVersionRow.project == project)
            )
            or 0
        ) + 1
        model_id = f"{project}-v{version}"
        session.add(
            ModelVersionRow(
                id=model_id,
                project=project,
                version=version,
                job_id=job.ticket.job_id,
                strategy=job.settings.strategy,
                feature_plan_json=job.plan.to_json(),
                parameters=_arrays_to_bytes(job.arrays),
                metrics_json=json.dumps(
                    {"overall": recorder.last.overall, "sites": recorder.last.sites}
                ),
                lineage_json=json.dumps(lineage),
                created_at=utc_now(),
            )
        )
        row = get(session, JobRow, job.ticket.job_id)
        row.status, row.finished_at = JobStatus.COMPLETED.value, utc_now()
        payload = {
            "model": model_id,
            "job": job.ticket.job_id,
            "lineage": lineage,
            "metrics": recorder.last.overall,
        }
        consortium.ledger.append(
            session, Act(by, "model.released", payload, member=by, project=project)
        )
    return model_id


def _fail(consortium: Consortium, job_id: str, message: str) -> None:
    with transaction(consortium.sessions) as session:
        row = get(session, JobRow, job_id)
        row.status, row.finished_at, row.error = JobStatus.FAILED.value, utc_now(), message
        _log_failure(consortium, session, row)


def train(
    consortium: Consortium,
    project: str,
    settings: TrainingSettings,
    progress: TrainingProgress | None = None,
    by: str | None = None,
    node_mods: Sequence[Mod] = (),
    reply_hook: Callable[[Message], None] | None = None,
) -> TrainingOutcome:
    """Run one federated training job for a project on Flower's simulation engine.

    `by` is the member starting the job (default: the project's proposer); it signs the
    job's start and the model's release in the ledger. `node_mods` are extra Flower mods
    every simulated node runs after its guard (e.g. message logging); `reply_hook` sees every
    reply the coordinator receives (audits: with secure aggregation, no individual update).
    """
    recover_interrupted_jobs(consortium)
    settings = resolve_settings(consortium, project, settings)  # client-level DP: fix σ
    plan_privacy(consortium, project, settings)  # bad ε, δ, σ or clipping: refused now
    job, sites, by = _start_job(consortium, project, settings, by)
    with transaction(consortium.sessions) as session:
        head = consortium.ledger.latest_head(session)
    assert head is not None  # _start_job just appended and sealed an entry
    job.head = head.to_json()
    job.consistency = encode_consistency(consistency_proofs(consortium, head))
    job.reply_hook = reply_hook
    recorder = _JobRecorder(consortium, job.ticket, progress, settings.dp_level)
    try:
        run_simulation(
            build_server_app(job, recorder),
            build_client_app(NodeWorker, PartitionLocator(sites), node_mods),
            len(sites),
            consortium.home,
        )
        if recorder.last is None:
            raise JobFailed("the federation ended without a single evaluated round")
        model_id = _release(consortium, job, recorder, by)
    except KumiaiError as exc:
        _fail(consortium, job.ticket.job_id, str(exc))
        raise
    except BaseException as exc:
        _fail(
            consortium,
            job.ticket.job_id,
            "interrupted by the user"
            if isinstance(exc, KeyboardInterrupt)
            else f"internal error: {type(exc).__name__}: {exc}",
        )
        raise
    finally:
        release_privacy(consortium, job.ticket.job_id)
    return TrainingOutcome(
        job_id=job.ticket.job_id,
        model_id=model_id,
        rounds=recorder.last.round,
        overall=recorder.last.overall,
        sites=recorder.last.sites,
        refused=recorder.refused,
        seconds_per_round=float(np.mean(recorder.seconds)) if recorder.seconds else 0.0,
        epsilons=recorder.last.epsilons,
        member_epsilon=recorder.last.member_epsilon,
        planned=recorder.planned,
    )
