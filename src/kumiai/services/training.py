"""Federated training jobs: admit, train round by round, record, release a model version.

Each round is committed on its own, so a job killed mid-way keeps its finished rounds and
is marked failed on the next start; a model version is written only together with the
job's completion, in one transaction, so nothing is ever half-released.
"""

import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import Message
from flwr.clientapp.typing import Mod
from sqlalchemy import func, select

from kumiai.adapters.flower.deployment import run_deployment
from kumiai.adapters.flower.protocol import encode_consistency
from kumiai.adapters.flower.serverapp import FederatedJob, build_server_app
from kumiai.adapters.flower.simulation import one_engine, run_simulation
from kumiai.adapters.flower.stopping import SERVER_STOP_SECONDS, stop_reason
from kumiai.adapters.flower.superlink import SuperLinkAddress
from kumiai.adapters.storage.arrays import arrays_to_bytes
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    JobRow,
    JobSiteRow,
    ModelVersionRow,
)
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, JobFailed, KumiaiError
from kumiai.domain.job import JobDocument, JobKind, JobStatus, sign_job
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.metrics import SiteScore
from kumiai.domain.training import TrainingSettings
from kumiai.node.port import NodePort, simulation_client_app
from kumiai.services.agreements import agreements_for_job
from kumiai.services.consortium import Consortium
from kumiai.services.jobs import (
    HeldReservation,
    fail_job,
    new_job_id,
    recover_interrupted_jobs,
    release_privacy,
    running_job,
)
from kumiai.services.ledger import Act
from kumiai.services.lookup import get, project_datasets
from kumiai.services.privacy import JobPrivacy, plan_job_privacy
from kumiai.services.projects import job_starter
from kumiai.services.quota import refuse_over_quota
from kumiai.services.recorder import (
    JobRecorder,
    RoundReport,
    TrainingProgress,
    latest_attestations,
)
from kumiai.services.transparency import consistency_proofs

# Re-exported: the demo service, benchmarks and tests import these from here.
__all__ = ["RoundReport", "TrainingOutcome", "TrainingProgress", "train"]


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
    held: list[HeldReservation] = field(default_factory=list)  # releases that failed
    scores: dict[str, SiteScore] = field(default_factory=dict)  # each site's last aggregates


def _start_job(
    consortium: Consortium,
    project: str,
    settings: TrainingSettings,
    by: str | None,
    job_id: str | None = None,
    requested_by: str | None = None,
) -> tuple[FederatedJob, list[tuple[NodePort, str]], str]:
    """Create the job record and the signed job document; one node per requested dataset."""
    with transaction(consortium.sessions) as session:
        project_row, by = job_starter(session, project, by)
        datasets = project_datasets(session, project)
        if not datasets:
            raise InvalidInput(
                f"project {project!r} has no data-use requests yet; request "
                f"datasets first: kumiai request {project} --dataset NAME ..."
            )
        job_id = job_id or new_job_id()
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
            consortium.coordinator_key(),
        )
        session.add(running_job(job_id, project, JobKind.TRAIN.value, settings))
        session.flush()
        for d in datasets:
            session.add(
                JobSiteRow(job_id=job_id, dataset=d.name, member=d.member, status="pending")
            )
        job = FederatedJob(
            signed=signed,
            agreements=agreements,
            expected_nodes=len(datasets),
            members={d.name: d.member for d in datasets},
        )
        sites = [(consortium.node(d.member), d.name) for d in datasets]
        # The ledger holds the very document the nodes admit, and its signature.
        payload = {"job": job_id, "document": json.loads(signed.to_json())}
        consortium.ledger.append(session, _act(by, requested_by, "job.started", payload, project))
    return job, sites, by


def _act(
    by: str, requested_by: str | None, kind: str, payload: dict[str, Any], project: str
) -> Act:
    """The member starting the job signs its start and its release at its node; a job asked
    for through the API (`POST /jobs`) runs after the request is answered, when no node is
    there to sign, so the coordinator signs both, naming the signed caller who asked."""
    if requested_by is None:
        return Act(by, kind, payload, member=by, project=project)
    payload = {**payload, "requested_by": requested_by}
    return Act(COORDINATOR, kind, payload, member=by, project=project)


def _release(
    consortium: Consortium,
    job: FederatedJob,
    recorder: JobRecorder,
    by: str,
    requested_by: str | None = None,
) -> str:
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
                parameters=arrays_to_bytes(job.arrays),
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
            session, _act(by, requested_by, "model.released", payload, project)
        )
    return model_id


DEPLOYMENT_REPLY_POLL = 0.05
"""Seconds between the ServerApp's pulls from the SuperLink: each is an HTTPS request, so
not the simulation's 10 ms; Flower's own HttpGrid waits 3 s."""


def nodes_of(members: Iterable[str], consortium: Consortium) -> list[int]:
    """The Flower node ids of the job's members, as the coordinator registered their keys."""
    return list(node_members(members, consortium))


def node_members(members: Iterable[str], consortium: Consortium) -> dict[int, str]:
    """Each of the job's members by the Flower node id the coordinator registered for it
    (so a node that never connects can be named).

    Not looked up by name on the SuperLink: the ids come from the coordinator's own record of
    what it registered (`services.deployment.registered_ids`). By member name, not by node
    address: a member that joined from its own machine has no node in the coordinator's
    home."""
    from kumiai.services.deployment import registered_ids

    ids = registered_ids(consortium)
    return {ids[member]: member for member in sorted(set(members)) if member in ids}


def job_members(consortium: Consortium, job_id: str) -> list[str]:
    """The members whose datasets the job asked for (its site rows)."""
    with transaction(consortium.sessions) as session:
        return list(session.scalars(select(JobSiteRow.member).where(JobSiteRow.job_id == job_id)))


def many_jobs() -> AbstractContextManager[None]:
    """Run several jobs on one simulation engine, Ray started once (benchmarks, notebooks)."""
    return one_engine()


def train(
    consortium: Consortium,
    project: str,
    settings: TrainingSettings,
    progress: TrainingProgress | None = None,
    by: str | None = None,
    node_mods: Sequence[Mod] = (),
    reply_hook: Callable[[Message], None] | None = None,
    privacy: JobPrivacy | None = None,
    superlink: SuperLinkAddress | None = None,
    round_timeout: float | None = None,
    admission_timeout: float | None = None,
    job_id: str | None = None,
    requested_by: str | None = None,
) -> TrainingOutcome:
    """Run one federated training job for a project on Flower's simulation engine, or, with
    `superlink`, on the deployment engine: the members' nodes run their own SuperNodes
    (`kumiai node serve`) and this process runs the ServerApp against the SuperLink.

    `by` is the member starting the job (default: the project's proposer); it signs the
    job's start and the model's release in the ledger. `node_mods` are extra Flower mods
    every simulated node runs after its guard (e.g. message logging); `reply_hook` sees every
    reply the coordinator receives (audits: with secure aggregation, no individual update).
    `privacy` is the job's privacy as `services.privacy.plan_job_privacy` planned it for
    these settings (the CLI plans it first to show it); without it, it is planned here.
    `round_timeout` bounds the wait for a round's replies (a node that died is dropped);
    admission keeps its own, longer wait (a node's first message loads its data):
    `admission_timeout` (default 120 s) bounds how long the job waits for the members'
    nodes to connect and answer; a node still offline then is recorded as refused,
    offline, and the job goes on without it if enough others came (`domain.quorum`).
    `job_id` is the id chosen before the job starts (`POST /jobs` answers with it first);
    `requested_by` is that request's signed caller: the coordinator then signs the job's
    start and release itself, naming it (the member's node is not there to sign).
    """
    if superlink is not None and node_mods:
        raise InvalidInput("on the deployment engine each node chooses its own mods")
    if round_timeout is not None and not round_timeout > 0:
        raise InvalidInput(
            f"the round timeout must be a positive number of seconds, not {round_timeout:g} "
            "(--round-timeout)"
        )
    recover_interrupted_jobs(consortium)
    if privacy is None:  # bad ε, δ, σ or clipping: refused now, before any node is contacted
        privacy = plan_job_privacy(consortium, project, settings)
    elif privacy.requested != settings:
        raise InvalidInput("the privacy plan was made for other settings; plan this job's again")
    settings = privacy.settings  # client-level DP: σ fixed once for every node
    refuse_over_quota(consortium, project, settings.rounds)  # before anything is reserved
    job, sites, by = _start_job(consortium, project, settings, by, job_id, requested_by)
    with transaction(consortium.sessions) as session:
        head = consortium.ledger.latest_head(session)
    assert head is not None  # _start_job just appended and sealed an entry
    job.head = head.to_json()
    job.consistency = encode_consistency(consistency_proofs(consortium, head))
    job.attested = latest_attestations(consortium, list(job.ticket.datasets))
    job.reply_hook = reply_hook
    if round_timeout is not None:
        job.round_timeout = round_timeout
    if admission_timeout is not None:
        job.query_timeout = admission_timeout
    recorder = JobRecorder(consortium, job.ticket, progress, settings.dp_level)
    try:
        if superlink is None:
            run_simulation(
                build_server_app(job, recorder),
                simulation_client_app(sites, node_mods),
                len(sites),
                consortium.home,
            )
        else:
            job.reply_poll, job.one_message_per_round = DEPLOYMENT_REPLY_POLL, True
            job.nodes = node_members(job_members(consortium, job.ticket.job_id), consortium)
            run_deployment(build_server_app(job, recorder), superlink, job.nodes)
        if recorder.last is None:
            raise JobFailed("the federation ended without a single evaluated round")
        model_id = _release(consortium, job, recorder, by, requested_by)
    except KumiaiError as exc:
        fail_job(consortium, job.ticket.job_id, str(exc))
        raise
    except BaseException as exc:
        reason = stop_reason(exc) or f"internal error: {type(exc).__name__}: {exc}"
        # The ServerApp thread outlives Flower's runtime: end it before the record says
        # failed, so no round is recorded after.
        job.stop.request(reason)
        job.stop.wait_for_server(SERVER_STOP_SECONDS)
        fail_job(consortium, job.ticket.job_id, reason)
        raise
    finally:
        held = release_privacy(consortium, job.ticket.job_id)
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
        held=held,
        scores=recorder.last.scores,
    )
