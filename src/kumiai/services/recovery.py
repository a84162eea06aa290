"""The coordinator's record of a job's spend, reconciled with each node's own spend log.

A node logs a round's ε before its update leaves; the coordinator records it when the round
completes. A coordinator killed in between under-counts: the node logged round 4, the
budget shows round 3. At every job end (where reservations are released, recovery
included) the record is raised to what each node's signed log says, and the difference is
a `privacy.recovered` entry signed by the node's member. The rule is
`domain.recovery.shortfall`; it never lowers a record.
"""

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.schema import JobRow, JobSiteRow, PrivacySpendRow
from kumiai.domain.budget import JobSpend
from kumiai.domain.errors import KumiaiError
from kumiai.domain.recovery import RECOVERED, Recorded, Recovered, shortfall
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get


def logged_spend(consortium: Consortium, member: str, dataset: str, job_id: str) -> JobSpend | None:
    """What the node's own verified spend log says a job spent on its dataset.

    The one place this module reaches a node (through its port: the node's budget). None
    when the node holds nothing for the job, or its log does not verify: a damaged log
    proves no spend, and the node itself refuses further DP work until it is restored.
    None too for a node on its own machine: it reports its spend itself when it releases
    (`kumiai node release`, services.releasing).
    """
    if not consortium.node_is_here(member):
        return None
    try:
        return consortium.node(member).budget(dataset).jobs.get(job_id)
    except KumiaiError:
        return None


def reconcile_spend(consortium: Consortium, session: Session, job_id: str) -> list[Recovered]:
    """Raise the job's recorded spend to each node's log, in the caller's transaction.

    The records and their `privacy.recovered` entries commit together, like every other
    change and its ledger entry.
    """
    job = get(session, JobRow, job_id)
    level = str(json.loads(job.spec_json).get("dp_level", "record"))
    recovered = []
    sites = session.scalars(select(JobSiteRow).where(JobSiteRow.job_id == job_id))
    for site in list(sites):
        row = session.get(PrivacySpendRow, (job_id, site.dataset))
        recorded = Recorded() if row is None else Recorded(row.spent, row.rounds)
        logged = logged_spend(consortium, site.member, site.dataset, job_id)
        found = shortfall(job_id, site.dataset, recorded, logged)
        if found is None or logged is None:
            continue
        if row is None:  # the coordinator died before it mirrored the reservation
            row = _mirror(job, site.dataset, logged, level)
            session.add(row)
        row.spent, row.rounds = found.epsilon, found.last_round
        act = Act(
            site.member,
            RECOVERED,
            found.payload(),
            member=site.member,
            dataset=site.dataset,
            project=job.project,
        )
        consortium.ledger.append(session, act)
        recovered.append(found)
    return recovered


def _mirror(job: JobRow, dataset: str, logged: JobSpend, level: str) -> PrivacySpendRow:
    """A record of the node's reservation, for a job whose start was never mirrored."""
    return PrivacySpendRow(
        job_id=job.id,
        dataset=dataset,
        project=job.project,
        planned=logged.reserved,
        spent=0.0,
        delta=float(logged.details.get("delta", 0.0)),
        noise_multiplier=float(logged.details.get("noise_multiplier", 0.0)),
        rounds=0,
        status="running",
        level=level,
    )
