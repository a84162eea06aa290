"""A training process killed with SIGKILL mid-job leaves a consistent record."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kumiai.services.jobs import job_detail, list_jobs
from kumiai.services.models import list_models
from tests.services.helpers import heart_consortium

pytestmark = pytest.mark.simulation


def test_a_killed_job_shows_as_failed_with_its_finished_rounds_kept(tmp_path: Path) -> None:
    home = tmp_path / "c"
    consortium, _ = heart_consortium(home, max_rounds=1000)
    process = subprocess.Popen(
        [sys.executable, "-m", "kumiai", "--home", str(home), "train", "heart", "--rounds", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            jobs = list_jobs(consortium)
            if jobs and jobs[0].completed_rounds >= 2:
                break
            assert process.poll() is None, "the training process ended on its own"
            time.sleep(0.2)
        else:
            pytest.fail("the job recorded no rounds within 120 s")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    [job] = list_jobs(consortium)  # listing recovers jobs whose process is gone
    assert job.status == "failed"
    assert job.error is not None and "interrupted" in job.error
    detail = job_detail(consortium, job.id)
    assert detail.completed_rounds >= 2
    assert [r["round"] for r in detail.rounds] == list(range(1, detail.completed_rounds + 1))
    assert all(r["overall"]["examples"] > 0 for r in detail.rounds)
    assert list_models(consortium) == []
