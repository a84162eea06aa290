"""A contribution analysis killed after a node charged, before the coordinator mirrored it,
is recovered like a job: the record is raised to the node's log and the job is failed."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRow, PrivacySpendRow
from kumiai.domain.contribution_rules import ContributionPlan
from kumiai.domain.recovery import RECOVERED
from kumiai.services.contribution import _start_charges
from kumiai.services.jobs import recover_interrupted_jobs
from kumiai.services.privacy import budgets
from kumiai.services.transparency import show_entries
from tests.node.test_charging import DATASET, MEMBER, SETTINGS, released
from tests.services.helpers import heart_consortium, spend_records


def test_a_charge_the_coordinator_never_mirrored_is_recovered(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(
        tmp_path / "c", hospitals=(MEMBER,), epsilon_cap=10.0, contribution_analysis=True
    )
    released(consortium)
    model = SimpleNamespace(project="heart", lineage_json=json.dumps({"job": "job-released"}))
    plan = ContributionPlan("heart-v1", (DATASET,), "exact", 2, 3, {DATASET: 1.0}, None, 1)
    job = _start_charges(consortium, model, plan, SETTINGS, {DATASET: MEMBER})  # type: ignore[arg-type]
    allowed, _, epsilon = consortium.node(MEMBER).charge_contribution(
        DATASET,
        project="heart",
        model="heart-v1",
        released_job="job-released",
        retrainings=1,
        charge_id=job,
    )
    assert allowed and epsilon > 0
    # The process dies here: the job row names a process that is gone.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    with transaction(consortium.sessions) as session:
        session.get(JobRow, job).pid = int(gone.stdout)

    assert recover_interrupted_jobs(consortium) == [job]
    with transaction(consortium.sessions) as session:
        row = session.get(PrivacySpendRow, (job, DATASET))
        assert row is not None and row.spent == epsilon and row.status == "ended"
        assert session.get(JobRow, job).status == "failed"
    [entry] = show_entries(consortium, kind=RECOVERED)
    assert entry.actor == MEMBER and entry.payload["epsilon"] == epsilon
    [line] = [b for b in budgets(consortium) if b.dataset == DATASET]
    assert line.spent == epsilon  # the released job here was written straight into the log
    assert spend_records(consortium, MEMBER)[-1]["kind"] == "release"
