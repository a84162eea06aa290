"""A site whose node never connected: refused with its reason, signed by the coordinator
(its node said nothing), and no ε reserved for it in the budget mirror."""

import json
from pathlib import Path

from sqlalchemy import select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import LedgerEntryRow, PrivacySpendRow
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.quorum import offline_reason
from kumiai.domain.training import TrainingSettings
from kumiai.services.jobs import job_detail
from kumiai.services.recorder import JobRecorder
from kumiai.services.training import _start_job
from kumiai.services.transparency import verify_ledger
from tests.services.helpers import heart_consortium


def test_an_offline_site_is_refused_by_the_coordinators_word(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c")
    job, _, _ = _start_job(consortium, "heart", TrainingSettings(rounds=2), None)
    recorder = JobRecorder(consortium, job.ticket, None)
    datasets = sorted(job.members)
    offline = {datasets[-1]: offline_reason(15)}
    recorder.sites_decided(datasets[:-1], {}, offline)

    sites = {s.dataset: s for s in job_detail(consortium, job.ticket.job_id).sites}
    gone = sites[datasets[-1]]
    assert (gone.status, gone.reason) == (
        "refused",
        "offline: its node did not connect within 15 s",
    )
    assert all(sites[d].status == "participating" for d in datasets[:-1])
    assert recorder.refused == offline
    with transaction(consortium.sessions) as session:
        [entry] = session.scalars(
            select(LedgerEntryRow).where(LedgerEntryRow.kind == "job.refused")
        ).all()
        assert entry.actor == COORDINATOR  # even though this node's home is here
        assert entry.dataset == datasets[-1] and entry.member == job.members[datasets[-1]]
        assert json.loads(entry.leaf)["entry"]["payload"]["reason"] == offline[datasets[-1]]
        assert session.scalars(select(PrivacySpendRow)).all() == []  # nothing reserved
    assert verify_ledger(consortium).ok
