"""A training process killed with SIGKILL mid-job leaves a consistent record.

Reading shows the job as interrupted and writes nothing; `kumiai jobs --recover` marks it
failed, signs that into the ledger and has each node release the ε it had reserved.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRow
from kumiai.domain.budget import RELEASE, RESERVE
from kumiai.services.consortium import Consortium
from kumiai.services.jobs import job_detail, list_jobs
from kumiai.services.models import list_models
from kumiai.services.transparency import show_entries
from tests.services.helpers import HOSPITALS, heart_consortium, spend_records

pytestmark = pytest.mark.simulation


def kumiai(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kumiai", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def node_files(home: Path) -> dict[str, bytes]:
    """Every file in every member's node home, to show a read changed none of them."""
    return {
        str(path.relative_to(home)): path.read_bytes()
        for path in sorted((home / "members").rglob("*"))
        if path.is_file()
    }


def training_until_round(
    home: Path, consortium: Consortium, rounds: int = 2
) -> "subprocess.Popen[str]":
    """A `kumiai train` process in its own process group, once `rounds` are recorded."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "kumiai", "--home", str(home)),
            *("train", "heart", "--rounds", "1000", "--epsilon", "8"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: every child it starts is in it
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        jobs = list_jobs(consortium)
        if jobs and jobs[0].completed_rounds >= rounds:
            return process
        if process.poll() is not None:
            pytest.fail(f"the training process ended on its own: {process.communicate()[1]}")
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail(f"the job recorded no {rounds} rounds within 180 s")


def test_a_killed_job_reads_as_interrupted_until_it_is_recovered(tmp_path: Path) -> None:
    home = tmp_path / "c"
    consortium, _ = heart_consortium(home, max_rounds=1000)
    process = training_until_round(home, consortium)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    nodes, ledger = node_files(home), show_entries(consortium)
    [listed] = json.loads(kumiai(home, "jobs", "--json").stdout)
    shown = json.loads(kumiai(home, "job", listed["id"], "--json").stdout)
    for job in (listed, shown):
        assert job["status"] == "interrupted" and job["finished_at"] is None
        assert f"stopped after round {job['completed_rounds']}" in job["error"]
        assert "kumiai jobs --recover" in job["error"]
    assert shown["completed_rounds"] >= 2
    assert [r["round"] for r in shown["rounds"]] == list(range(1, shown["completed_rounds"] + 1))
    # Reading wrote nothing: not the ledger, not a node's spend log, not the job record.
    assert node_files(home) == nodes and show_entries(consortium) == ledger
    kinds = [r["kind"] for r in spend_records(consortium, HOSPITALS[0])]
    assert kinds[0] == RESERVE and RELEASE not in kinds
    with transaction(consortium.sessions) as session:
        assert session.get(JobRow, listed["id"]).status == "running"  # type: ignore[union-attr]

    recovered = kumiai(home, "jobs", "--recover", "--json")
    assert recovered.returncode == 0, recovered.stderr
    assert f"Job {listed['id']} marked failed" in recovered.stderr
    [job] = json.loads(recovered.stdout)
    assert job["status"] == "failed" and job["finished_at"] is not None
    assert job["error"].startswith("interrupted: the process running it")
    for hospital in HOSPITALS:
        kinds = [r["kind"] for r in spend_records(consortium, hospital)]
        assert kinds[0] == RESERVE and kinds[-1] == RELEASE
    [failure] = show_entries(consortium, kind="job.failed")
    assert failure.payload["job"] == listed["id"]
    assert job_detail(consortium, listed["id"]).completed_rounds == shown["completed_rounds"]
    assert list_models(consortium) == []
    assert kumiai(home, "jobs", "--recover").stderr == ""  # nothing left to recover
