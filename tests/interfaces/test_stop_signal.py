"""SIGTERM mid-round stops `kumiai train` cleanly: what a process manager (systemd,
Kubernetes) sends. The job fails as stopped, every node releases the ε it reserved but did
not spend, the ledger verifies, and no Ray or Flower process is left behind.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kumiai.domain.budget import RELEASE, RESERVE
from kumiai.services.jobs import job_detail, list_jobs
from kumiai.services.models import list_models
from kumiai.services.transparency import show_entries
from tests.interfaces.test_interrupted_job import kumiai, training_until_round
from tests.services.helpers import HOSPITALS, heart_consortium, spend_records

pytestmark = pytest.mark.simulation

STOP_LIMIT = 60.0  # generous for a loaded CI machine; the measured figure is in docs/operations


def processes_in_group(group: int) -> list[str]:
    """Command lines of the live processes in a process group (Ray's workers included)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            state, pgrp = fields[0], int(fields[2])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if pgrp == group and state != "Z":
            found.append(command)
    return found


def processes_left(group: int, wait: float = 10.0) -> list[str]:
    """The group's live processes once they have had `wait` seconds to end."""
    deadline = time.monotonic() + wait
    while processes_in_group(group) and time.monotonic() < deadline:
        time.sleep(0.2)
    return processes_in_group(group)


def test_sigterm_mid_round_fails_the_job_releases_privacy_and_ends_every_process(
    tmp_path: Path,
) -> None:
    home = tmp_path / "c"
    consortium, _ = heart_consortium(home, max_rounds=1000)
    process = training_until_round(home, consortium)
    group = process.pid
    try:
        process.send_signal(signal.SIGTERM)  # to the kumiai process only, as systemd does
        _, stderr = process.communicate(timeout=STOP_LIMIT)
    finally:
        if process.poll() is None:
            os.killpg(group, signal.SIGKILL)
            process.wait(timeout=30)

    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by signal (SIGTERM)" in stderr and "Traceback" not in stderr
    [job] = list_jobs(consortium)
    assert job.status == "failed" and job.error == "stopped by signal (SIGTERM)"
    assert job_detail(consortium, job.id).completed_rounds >= 2
    assert list_models(consortium) == []
    [failure] = show_entries(consortium, kind="job.failed")
    assert failure.payload["error"] == "stopped by signal (SIGTERM)"
    for hospital in HOSPITALS:
        kinds = [r["kind"] for r in spend_records(consortium, hospital)]
        assert kinds[0] == RESERVE and kinds[-1] == RELEASE, (hospital, kinds)
    verified = kumiai(home, "ledger", "verify")
    assert verified.returncode == 0, verified.stderr
    # Ray's GCS, raylet and workers, and Flower's threads, ended with the process.
    assert processes_left(group) == []
    assert kumiai(home, "jobs", "--recover").stderr == ""  # nothing was left running


def test_sigterm_stops_a_benchmark_and_every_process_it_started() -> None:
    """A benchmark keeps Ray and its node actors between jobs: SIGTERM still ends them."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kumiai", "bench", "heart-disease", "--seeds", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    group = process.pid
    try:
        deadline = time.monotonic() + 120
        while not any("ray::" in c for c in processes_in_group(group)):  # a job is running
            assert time.monotonic() < deadline and process.poll() is None, "no job started"
            time.sleep(0.5)
        time.sleep(3)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=STOP_LIMIT)
    finally:
        if process.poll() is None:
            os.killpg(group, signal.SIGKILL)
            process.wait(timeout=30)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by signal (SIGTERM)" in stderr and "Traceback" not in stderr
    assert processes_left(group) == []
