"""DP federated analytics: `kumiai analyse PROJECT` as a signed `statistics` job.

The coordinator signs one job document holding the queries and the ε (the same document and
checks as training), records it in the ledger, and asks each node through its port:
first to admit the job and reserve its ε (a node below its agreement's minimum cohort, over
its cap or its budget refuses, naming why), then to release its noisy vector. Under secure
aggregation the nodes mask their vectors pairwise, so the coordinator learns only the sum;
each node checks the others' signed masking keys against the ledger it witnessed
(kumiai.services.peer_evidence hands it the proofs), and masks only for exactly the sites
the signed job names, so a job a site refuses is re-issued for the others.
It turns the sums into figures with intervals (kumiai.domain.analysis_results), mirrors each node's
spend for `kumiai budget`, and records the result in one signed `analysis.released` entry.
"""

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    JobRow,
    JobSiteRow,
    PrivacySpendRow,
)
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.analysis import Analysis
from kumiai.domain.analysis_results import CONFIDENCE, QueryResult, figures_for
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, JobFailed, KumiaiError
from kumiai.domain.job import JobDocument, JobKind, JobStatus, sign_job
from kumiai.domain.secure_sum import unmask
from kumiai.domain.training import TrainingSettings
from kumiai.node.port import NodePort
from kumiai.services.agreements import agreements_for_job
from kumiai.services.consortium import Consortium
from kumiai.services.jobs import (
    fail_job,
    recover_interrupted_jobs,
    release_privacy,
    running_job,
)
from kumiai.services.ledger import Act
from kumiai.services.lookup import get, project_datasets
from kumiai.services.peer_evidence import evidence_for_nodes
from kumiai.services.projects import job_starter


@dataclass
class AnalysisOutcome:
    job_id: str
    epsilon: float
    secure: bool
    confidence: float
    sites: list[str]
    results: list[QueryResult]
    refused: dict[str, str] = field(default_factory=dict)
    min_cohort: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job_id,
            "epsilon": self.epsilon,
            "secure_aggregation": self.secure,
            "confidence": self.confidence,
            "sites": self.sites,
            "refused": self.refused,
            "min_cohort": self.min_cohort,
            "results": [r.as_dict() for r in self.results],
            "spent": {d: self.epsilon for d in self.sites},  # what each node charged itself
        }


@dataclass
class _Job:
    signed_json: str
    job_id: str
    project: str
    by: str
    secure: bool
    sites: dict[str, tuple[NodePort, str]]  # dataset -> (its node, its member)
    cohorts: dict[str, int]  # dataset -> its agreement's minimum cohort


def _start(
    consortium: Consortium,
    project: str,
    analysis: Analysis,
    secure: bool | None,
    by: str | None,
    only: tuple[str, ...],
) -> _Job:
    """The job record and its signed document, recorded in the ledger as `job.started`."""
    with transaction(consortium.sessions) as session:
        project_row, by = job_starter(session, project, by)
        datasets = project_datasets(session, project)
        if unknown := sorted(set(only) - {d.name for d in datasets}):
            raise InvalidInput(
                f"project {project!r} has no data-use request for {', '.join(unknown)}; "
                f"its datasets: {', '.join(d.name for d in datasets) or 'none'}"
            )
        datasets = [d for d in datasets if not only or d.name in only]
        agreements = {
            d: SignedAgreement.from_json(text)
            for d, text in agreements_for_job(session, project).items()
            if any(row.name == d for row in datasets)
        }
        if not datasets or not agreements:
            raise InvalidInput(
                f"project {project!r} has no signed agreements yet; request datasets with "
                f"--kinds statistics first: kumiai request {project} --dataset NAME ..."
            )
        if secure is None:  # on as soon as any agreement forbids plain aggregation
            secure = any(not a.terms.plain_aggregation for a in agreements.values())
        settings = TrainingSettings(
            rounds=1,
            epsilon=analysis.epsilon,
            secure_aggregation=secure,
            analysis=analysis.to_json(),
        )
        job_id = f"job-{uuid.uuid4().hex[:8]}"
        signed = sign_job(
            JobDocument(
                job_id=job_id,
                project=project,
                purpose=project_row.purpose,
                kind=JobKind.STATISTICS,
                datasets=tuple(d.name for d in datasets),
                settings=settings,
                agreements={d: a.terms.agreement_id for d, a in agreements.items()},
                issued_at=utc_now(),
            ),
            consortium.coordinator_key(),
        )
        session.add(running_job(job_id, project, JobKind.STATISTICS.value, settings))
        session.flush()
        for d in datasets:
            session.add(
                JobSiteRow(job_id=job_id, dataset=d.name, member=d.member, status="pending")
            )
        payload = {"job": job_id, "document": json.loads(signed.to_json())}
        consortium.ledger.append(
            session, Act(by, "job.started", payload, member=by, project=project)
        )
        sites = {d.name: (consortium.node(d.member), d.member) for d in datasets}
        cohorts = {d: a.terms.min_cohort for d, a in agreements.items()}
    return _Job(signed.to_json(), job_id, project, by, secure, sites, cohorts)


def _mirror_spend(consortium: Consortium, job: _Job, datasets: list[str]) -> None:
    """What each node's own log says it spent, for `kumiai budget` (the log is the record)."""
    with transaction(consortium.sessions) as session:
        for dataset in datasets:
            node, _ = job.sites[dataset]
            spend = node.budget(dataset).jobs.get(job.job_id)
            if spend is None:
                continue
            session.merge(
                PrivacySpendRow(
                    job_id=job.job_id,
                    dataset=dataset,
                    project=job.project,
                    planned=spend.reserved,
                    spent=spend.spent,
                    delta=0.0,
                    noise_multiplier=0.0,
                    rounds=0,
                    status="running",
                    level="record",
                )
            )


def _sums(
    job: _Job, keys: dict[str, str], length: int, evidence: dict[str, list[dict[str, Any]]]
) -> list[int]:
    """The sum of the participants' released vectors, or JobFailed naming who failed it.

    `keys`: dataset -> its signed masking key; `evidence`: dataset -> what its node needs
    to check the others' keys (kumiai.services.peer_evidence)."""
    vectors: list[list[int]] = []
    peers = keys if job.secure else {}
    for dataset in sorted(keys):
        node, _ = job.sites[dataset]
        allowed, reason, vector = node.release_analysis(
            dataset, job.signed_json, peers, evidence.get(dataset, [])
        )
        if not allowed or len(vector) != length:
            raise JobFailed(
                f"{dataset} released nothing usable ({reason or 'a vector of the wrong length'}); "
                "no figure was released"
            )
        vectors.append(vector)
    if job.secure:
        return unmask(vectors)
    return [sum(column) for column in zip(*vectors, strict=True)]


def _require_every_site(job: _Job, keys: dict[str, str], refused: dict[str, str]) -> None:
    """Nodes mask only for exactly the sites the signed job names (kumiai.domain.peer_trust):
    a secure sum goes on only when every one of them admitted the job (a re-issued job
    whose sites refuse again fails here)."""
    if refused:
        names = " ".join(f"--dataset {d}" for d in sorted(keys))
        raise JobFailed(
            f"secure aggregation masks for every site the signed job names, and "
            f"{', '.join(sorted(refused))} refused ({'; '.join(refused.values())}); nothing was "
            f"released; run it again for the others: kumiai analyse {job.project} {names}"
        )


def _admit(
    consortium: Consortium, job: _Job, keys: dict[str, str], refused: dict[str, str]
) -> None:
    """Ask every site's node to admit the job: its signed masking key into `keys`, or its
    reason into `refused` (filled as they answer, so a failure midway knows who reserved)."""
    for dataset, (node, _) in sorted(job.sites.items()):
        allowed, reason, key = node.admit_analysis(dataset, job.signed_json)
        if allowed:
            keys[dataset] = key
        else:
            refused[dataset] = reason
    _mirror_spend(consortium, job, sorted(keys))  # so a recovery frees it if we die here


def _close_failed(
    consortium: Consortium, job: _Job, keys: dict[str, str], refused: dict[str, str], reason: str
) -> None:
    """Record a failed job: each site's part, `job.failed`, and free what no node spent."""
    with transaction(consortium.sessions) as session:
        _record_sites(session, job, keys, refused)
    fail_job(consortium, job.job_id, reason)
    _mirror_spend(consortium, job, sorted(keys))
    release_privacy(consortium, job.job_id)


def _reissued(second: _Job, refused: dict[str, str]) -> str:
    return (
        f"re-issued as {second.job_id} for {', '.join(sorted(second.sites))}: under secure "
        "aggregation a node masks only for exactly the sites the signed job names, and "
        f"{', '.join(sorted(refused))} refused"
    )


def _record_sites(
    session: Session, job: _Job, keys: dict[str, str], refused: dict[str, str]
) -> None:
    """Each site's part in the job, with its node's reason if it refused (`kumiai job`)."""
    for dataset in job.sites:
        site = session.get(JobSiteRow, (job.job_id, dataset))
        if site is not None and (dataset in keys or dataset in refused):
            site.status = "participating" if dataset in keys else "refused"
            site.reason = refused.get(dataset)


def analyse(
    consortium: Consortium,
    project: str,
    analysis: Analysis,
    *,
    secure: bool | None = None,
    by: str | None = None,
    datasets: tuple[str, ...] = (),
) -> AnalysisOutcome:
    """Run `analysis` across every site of `project` whose node admits it; record the result.

    `secure`: None turns secure aggregation on when any agreement forbids plain aggregation.
    `datasets`: only these of the project's datasets (default: all of them).
    """
    recover_interrupted_jobs(consortium)
    job = _start(consortium, project, analysis, secure, by, tuple(datasets))
    keys: dict[str, str] = {}
    refused: dict[str, str] = {}
    earlier: dict[str, str] = {}  # refusals of a job re-issued without the refusing sites
    try:
        _admit(consortium, job, keys, refused)
        if not keys:
            raise JobFailed("every node refused the analysis: " + "; ".join(refused.values()))
        if job.secure and len(keys) < 2:
            raise JobFailed(
                f"secure aggregation needs at least 2 sites and only {sorted(keys)} took part; "
                "nothing was released (run with --plain where every agreement allows it)"
            )
        evidence: dict[str, list[dict[str, Any]]] = {}
        if job.secure:
            if refused:  # nodes mask only for exactly the sites a signed job names
                second = _start(consortium, project, analysis, True, job.by, tuple(sorted(keys)))
                retired, retired_keys, earlier = job, keys, refused
                job, keys, refused = second, {}, {}
                _close_failed(
                    consortium, retired, retired_keys, earlier, _reissued(second, earlier)
                )
                _admit(consortium, job, keys, refused)
            _require_every_site(job, keys, refused)
            evidence = evidence_for_nodes(consortium, {d: job.sites[d] for d in keys})
        plan = analysis.releases()
        length = sum(r.length for releases in plan for r in releases)
        total = _sums(job, keys, length, evidence)
    except BaseException as exc:  # a mistake, a node's failure or a stop signal alike
        reason = str(exc) if isinstance(exc, KumiaiError) else f"stopped: {type(exc).__name__}"
        _close_failed(consortium, job, keys, refused, reason)
        raise
    refused = {**earlier, **refused}
    copies = 1 if job.secure else len(keys)
    min_cohort = max(job.cohorts.get(d, 0) for d in keys)
    results, at = [], 0
    for query, releases in zip(analysis.queries, plan, strict=True):
        sums = []
        for release in releases:
            sums.append(total[at : at + release.length])
            at += release.length
        results.append(figures_for(query, releases, sums, copies, min_cohort))
    outcome = AnalysisOutcome(
        job.job_id,
        analysis.epsilon,
        job.secure,
        CONFIDENCE,
        sorted(keys),
        results,
        refused,
        min_cohort,
    )
    _mirror_spend(consortium, job, sorted(keys))
    with transaction(consortium.sessions) as session:
        row = get(session, JobRow, job.job_id)
        row.status, row.finished_at = JobStatus.COMPLETED.value, utc_now()
        row.completed_rounds = 1
        _record_sites(session, job, keys, refused)
        consortium.ledger.append(
            session,
            Act(job.by, "analysis.released", outcome.as_dict(), member=job.by, project=job.project),
        )
    release_privacy(consortium, job.job_id)
    return outcome
