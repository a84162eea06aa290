"""A coordinator killed mid-round never leaves the budget short of what the nodes spent.

A real process runs a private job, has the nodes log round 4's spend, and is killed with
SIGKILL before it records that round; recovery raises the record to the nodes' logs with a
signed `privacy.recovered` entry. A log that shows less than was recorded (truncated,
restored from an old backup, or tampered with) never lowers it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRow, LedgerEntryRow
from kumiai.domain.budget import RELEASE
from kumiai.domain.errors import InvalidInput
from kumiai.domain.recovery import RECOVERED
from kumiai.node.home import NodeHome
from kumiai.node.spendlog import SpendLog
from kumiai.services.consortium import Consortium
from kumiai.services.jobs import (
    INTERRUPTED,
    held_reservations,
    job_detail,
    recover_interrupted_jobs,
)
from kumiai.services.privacy import budgets
from kumiai.services.transparency import verify_ledger
from tests.services.crash import run_until_the_window
from tests.services.helpers import heart_consortium, log_records

ROOT = Path(__file__).resolve().parents[2]
HOSPITALS = ("cleveland-clinic", "va-long-beach")
DATASETS = tuple(f"{h}-heart" for h in HOSPITALS)


def consortium_of_two(tmp_path: Path) -> Consortium:
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=HOSPITALS)
    return consortium


def spend_log(consortium: Consortium, dataset: str) -> SpendLog:
    return SpendLog(NodeHome(consortium.member_home(dataset.removesuffix("-heart"))), dataset)


def node_spent(consortium: Consortium, dataset: str, job: str) -> float:
    return spend_log(consortium, dataset).view().jobs[job].spent


def recorded_spent(consortium: Consortium) -> dict[str, float]:
    return {line.dataset: line.spent for line in budgets(consortium)}


def recoveries(consortium: Consortium) -> list[dict]:
    with transaction(consortium.sessions) as session:
        rows = session.scalars(
            select(LedgerEntryRow)
            .where(LedgerEntryRow.kind == RECOVERED)
            .order_by(LedgerEntryRow.seq)
        )
        return [{"actor": row.actor, **json.loads(row.leaf)["entry"]["payload"]} for row in rows]


def dead_pid() -> int:
    """The pid of a process that has exited: what a killed coordinator leaves in its job."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def left_by_a_dead_process(consortium: Consortium, recorded: int, logged: int) -> str:
    """The crash window, built in this process; the job is handed to a dead pid."""
    job_id = run_until_the_window(consortium, recorded, logged)
    with transaction(consortium.sessions) as session:
        session.get(JobRow, job_id).pid = dead_pid()  # type: ignore[union-attr]
    return job_id


def test_a_coordinator_killed_after_the_nodes_logged_a_round_is_recovered_in_full(
    tmp_path: Path,
) -> None:
    consortium = consortium_of_two(tmp_path)
    out = tmp_path / "job-id"
    killed = subprocess.run(
        [sys.executable, "-m", "tests.services.crash", str(consortium.home), "3", "4", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    job_id = out.read_text()

    # The crash window: every node logged round 4, the coordinator recorded round 3.
    assert job_detail(consortium, job_id).status == INTERRUPTED
    assert job_detail(consortium, job_id).completed_rounds == 3
    logged = {d: node_spent(consortium, d, job_id) for d in DATASETS}
    before = recorded_spent(consortium)
    assert all(before[d] < logged[d] for d in DATASETS)

    assert recover_interrupted_jobs(consortium) == [job_id]

    assert recorded_spent(consortium) == logged  # `kumiai budget` shows the true spend
    found = recoveries(consortium)
    assert [(r["actor"], r["dataset"]) for r in found] == list(
        zip(HOSPITALS, DATASETS, strict=True)
    )
    for r in found:
        assert r["job"] == job_id and r["rounds"] == [4]
        assert r["epsilon"] == logged[r["dataset"]]
        assert r["recorded_epsilon"] == before[r["dataset"]]
    for dataset in DATASETS:  # the unspent rest of the reservation is released
        assert log_records(spend_log(consortium, dataset))[-1]["kind"] == RELEASE
    assert job_detail(consortium, job_id).status == "failed"
    assert verify_ledger(consortium).ok

    assert recover_interrupted_jobs(consortium) == []  # nothing twice
    assert len(recoveries(consortium)) == 2


def test_a_job_recorded_in_step_with_its_nodes_needs_no_recovery(tmp_path: Path) -> None:
    consortium = consortium_of_two(tmp_path)
    job_id = left_by_a_dead_process(consortium, recorded=2, logged=2)
    before = recorded_spent(consortium)
    assert recover_interrupted_jobs(consortium) == [job_id]
    assert recorded_spent(consortium) == before
    assert recoveries(consortium) == []


def test_a_truncated_log_never_lowers_the_recorded_spend(tmp_path: Path) -> None:
    """An old backup put back, or a tail deleted: the log shows round 1, the record round 3."""
    consortium = consortium_of_two(tmp_path)
    job_id = left_by_a_dead_process(consortium, recorded=3, logged=3)
    before = recorded_spent(consortium)
    log = spend_log(consortium, DATASETS[0])
    lines = log.log.read_text().splitlines(keepends=True)
    log.log.write_text("".join(lines[:2]))  # the reservation and round 1
    assert log.view().jobs[job_id].spent < before[DATASETS[0]]

    assert recover_interrupted_jobs(consortium) == [job_id]
    assert recorded_spent(consortium) == before
    assert recoveries(consortium) == []


def test_a_tampered_log_never_lowers_the_recorded_spend(tmp_path: Path) -> None:
    """Round 4's ε lowered by hand at one node: its log proves nothing, and the node refuses
    to release from it; the other node's round 4 is still recovered."""
    consortium = consortium_of_two(tmp_path)
    job_id = left_by_a_dead_process(consortium, recorded=3, logged=4)
    before = recorded_spent(consortium)
    honest = node_spent(consortium, DATASETS[1], job_id)
    log = spend_log(consortium, DATASETS[0])
    lines = log.log.read_text().splitlines(keepends=True)
    record = json.loads(lines[-1])
    record["record"]["epsilon"] = 0.01
    log.log.write_text("".join([*lines[:-1], json.dumps(record) + "\n"]))

    # The damaged node keeps its reservation; it blocks neither the honest node nor the
    # consortium's next job, and the next recovery tries it again.
    assert recover_interrupted_jobs(consortium) == [job_id]
    [held] = held_reservations(consortium)
    assert (held.job, held.dataset) == (job_id, DATASETS[0])
    assert [r["kind"] for r in log_records(spend_log(consortium, DATASETS[1]))][-1] == RELEASE
    shown = subprocess.run(
        [sys.executable, "-m", "kumiai", "--home", str(consortium.home), "jobs", "--recover"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert shown.returncode == 0, shown.stderr
    assert f"still holds the ε it reserved for job {job_id} on {DATASETS[0]}" in shown.stderr
    assert recover_interrupted_jobs(consortium) == []
    with pytest.raises(InvalidInput, match="spend log line 5 is not signed by this node"):
        spend_log(consortium, DATASETS[0]).view()
    after = recorded_spent(consortium)
    assert after[DATASETS[0]] == before[DATASETS[0]]
    assert after[DATASETS[1]] == honest > before[DATASETS[1]]
    assert [r["dataset"] for r in recoveries(consortium)] == [DATASETS[1]]

    log.log.write_text("".join(lines))  # restored from backup: the retry recovers, releases
    assert recover_interrupted_jobs(consortium) == [] and held_reservations(consortium) == []
    assert [r["kind"] for r in log_records(spend_log(consortium, DATASETS[0]))][-1] == RELEASE
    assert recorded_spent(consortium)[DATASETS[0]] > before[DATASETS[0]]
