"""The compute quota: counted from the job records, and a job past it refused before it runs."""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from kumiai.adapters.storage.schema import JobRow, JobSiteRow, LedgerEntryRow, PrivacySpendRow
from kumiai.domain.clock import utc_now
from kumiai.domain.ledger import SignedEntry
from kumiai.domain.quota import QuotaExceeded
from kumiai.domain.training import TrainingSettings
from kumiai.services import charter, funds, motions, quota
from kumiai.services.consortium import Consortium
from kumiai.services.training import train
from tests.services.helpers import HOSPITALS, heart_consortium

SEATS = ("lab", *HOSPITALS)


def _with_quota(home: Path, site_rounds: int, sign: tuple[str, ...] = HOSPITALS) -> Consortium:
    """The heart consortium, its charter adopted, and one allocation naming site_rounds."""
    consortium, _ = heart_consortium(home, sign=sign)
    charter.propose_charter(consortium, proposed_by="lab")
    for member in SEATS:
        charter.sign_charter(consortium, member)
    funds.receive_funds(consortium, source="nedo-grant", kind="grant", payer="NEDO", amount=100)
    motion = motions.propose_motion(
        consortium,
        decision="allocate-funds",
        payload={"project": "heart", "amount": 100, "source": "nedo-grant"}
        | {"site_rounds": site_rounds},
        proposer="lab",
    )
    for seat in SEATS:
        motions.cast_vote(consortium, motion.id, seat, "yes")
    assert motions.close_motion(consortium, motion.id).status == "passed"
    return consortium


def _job(
    consortium: Consortium,
    job_id: str,
    status: str,
    planned: int,
    done: int,
    sites: tuple[str, ...],
) -> None:
    with consortium.sessions.begin() as session:
        session.add(
            JobRow(
                id=job_id,
                project="heart",
                kind="train",
                status=status,
                spec_json="{}",
                planned_rounds=planned,
                completed_rounds=done,
                created_at=utc_now(),
            )
        )
        session.flush()
        for member, site_status in zip(HOSPITALS, sites, strict=False):
            session.add(
                JobSiteRow(
                    job_id=job_id, dataset=f"{member}-heart", member=member, status=site_status
                )
            )


def test_used_counts_the_rounds_run_on_the_sites_that_admitted_the_job(home: Path) -> None:
    consortium = _with_quota(home, 200)
    _job(consortium, "job-a", "completed", 10, 10, ("participating", "left", "refused"))
    _job(consortium, "job-b", "failed", 10, 3, ("participating", "absent"))
    _job(consortium, "job-c", "running", 5, 1, ("pending", "participating", "refused"))
    _job(consortium, "job-d", "failed", 20, 0, ("participating", "participating"))
    with consortium.sessions() as session:
        assert quota.quota_info(session, "heart") == quota.QuotaInfo(
            200, 10 * 2 + 3 * 1 + 5 * 2, 167
        )
        assert quota.admissible_sites(session, "heart") == 3


def _counts(consortium: Consortium) -> tuple[int, int, int]:
    with consortium.sessions() as session:
        jobs = session.scalar(select(func.count()).select_from(JobRow)) or 0
        spends = session.scalar(select(func.count()).select_from(PrivacySpendRow)) or 0
    return jobs, spends, consortium.ledger.tree().size


def test_a_job_past_the_quota_is_refused_before_anything_runs(home: Path) -> None:
    consortium = _with_quota(home, 100)
    _job(consortium, "job-a", "completed", 10, 10, ("participating",) * 3)  # used 30
    jobs, spends, size = _counts(consortium)
    with pytest.raises(QuotaExceeded) as refused:
        train(consortium, "heart", TrainingSettings(rounds=25))  # 25 rounds x 3 sites = 75
    message = str(refused.value)
    assert "quota 100 site-rounds, used 30, asked 75 (rounds x sites), 70 left" in message
    assert _counts(consortium) == (jobs, spends, size + 1)  # only the signed refusal
    with consortium.sessions() as session:
        leaf = session.scalars(select(LedgerEntryRow.leaf).where(LedgerEntryRow.seq == size)).one()
    entry = SignedEntry.from_leaf_bytes(leaf).entry
    assert (entry.kind, entry.actor) == ("job.refused", "coordinator")
    assert entry.payload == {
        "job": None,
        "project": "heart",
        "reason": message,
        "quota": {"site_rounds": 100, "used": 30, "asked": 75, "rounds": 25, "sites": 3},
    }


def test_the_ask_counts_only_sites_with_a_live_agreement(home: Path) -> None:
    consortium = _with_quota(home, 40, sign=HOSPITALS[:2])
    with consortium.sessions() as session:
        assert quota.admissible_sites(session, "heart") == 2
    quota.refuse_over_quota(consortium, "heart", 20)  # 20 x 2 = 40: exactly the quota
    with pytest.raises(QuotaExceeded, match="asked 42"):
        quota.refuse_over_quota(consortium, "heart", 21)
