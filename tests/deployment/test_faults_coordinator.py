"""Faults across organisations, every party a process of its own on 127.0.0.1 (issue 9,
item 6): a hospital's node offline for a whole job, and the coordinator killed mid-job.

One federation (a coordinator and four hospitals, `four_hospitals`) serves both cases:
what a case stops, it starts again. `kumiai train` always runs as a subprocess, as an
operator would run it: its exit, its one line on stderr and its time are what is asserted.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from kumiai.adapters.flower.supervised import Supervised, descendants
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import LedgerEntryRow, ModelVersionRow
from kumiai.domain.errors import KumiaiError
from kumiai.services.consortium import Consortium, open_consortium
from kumiai.services.deployment import connected, supernode_log
from kumiai.services.jobs import list_jobs
from kumiai.services.privacy import budgets
from tests.deployment.conftest import alive, stop_every
from tests.deployment.test_across_organisations import (
    ENV,
    FOUR,
    Federation,
    four_hospitals,
    kumiai,
    node_serve,
    ok,
    released_everywhere,
)

pytestmark = pytest.mark.deployment

ADMISSION = 15  # seconds the job waits for the offline node
KILLED_WITHIN = 60  # seconds `kumiai train` may take to end after its coordinator died


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """The four hospitals, shared by the cases; every process stopped by PID at the end."""
    started: list[Supervised] = []
    try:
        yield four_hospitals(tmp_path_factory.mktemp("faults"), started)
    finally:
        stop_every(started)


class Training:
    """`kumiai train heart` against the coordinator's SuperLink, as a process of its own;
    its output goes to files (a full pipe would block it while the test polls)."""

    def __init__(self, world: Federation, name: str, *options: str) -> None:
        command = [sys.executable, "-m", "kumiai", "--home", str(world.home), "train", "heart"]
        command += ["--superlink", f"127.0.0.1:{world.coordinator.link_port}", *options]
        self.out, self.err = (world.home.parent / f"{name}.{k}" for k in ("out", "err"))
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=err, text=True, env=ENV, start_new_session=True
            )

    def finish(self, timeout: float) -> tuple[str, str]:
        """Its output once it ends; killed (and the test failed) if it outlives `timeout`."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"`kumiai train` still ran after {timeout:.0f} s: {self.err.read_text()[-2000:]}"
            ) from None
        return self.out.read_text(), self.err.read_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def error_line(stderr: str) -> str:
    """The one message the CLI prints for a failed act, and nothing else (no traceback);
    Rich wraps it at the terminal's width."""
    assert "Traceback" not in stderr, stderr
    assert stderr.startswith("error: ") and stderr.count("error") == 1, stderr
    return " ".join(line.strip() for line in stderr.splitlines())


def list_models(consortium: Consortium, job_id: str) -> list[str]:
    with transaction(consortium.sessions) as session:
        query = select(ModelVersionRow.id).where(ModelVersionRow.job_id == job_id)
        return list(session.scalars(query))


def leaves(home: Path) -> list[str]:
    with transaction(open_consortium(home).sessions) as session:
        return list(session.scalars(select(LedgerEntryRow.leaf).order_by(LedgerEntryRow.seq)))


def test_a_node_offline_for_the_whole_job_is_named_and_the_others_finish(
    world: Federation,
) -> None:
    home, c = world.home, ("--home", str(world.home))
    consortium = open_consortium(home)
    offline = FOUR[3]
    world.served[offline].stop()  # its machine is down for the whole job
    before = {j.id for j in list_jobs(consortium)}
    started = time.monotonic()
    run = Training(world, "offline", "--rounds", "1", "--epsilon", "1", "--seed", "5",
                   "--admission-timeout", str(ADMISSION))  # fmt: skip
    out, err = run.finish(150)
    seconds = time.monotonic() - started
    assert run.process.returncode == 0, out + err
    assert seconds < 120, seconds  # the wait for it is bounded by --admission-timeout
    table = [line for line in out.splitlines() if "│" in line and f"{offline}-heart" in line]
    assert "│ offline " in table[-1], out  # the site table names it offline

    [job] = [j for j in list_jobs(consortium) if j.id not in before]
    assert job.status == "completed" and job.completed_rounds == 1, job
    sites = {s["dataset"]: s for s in ok(*c, "job", job.id)["sites"]}
    gone = sites[f"{offline}-heart"]
    assert gone["status"] == "refused", gone
    assert gone["reason"] == f"offline: its node did not connect within {ADMISSION} s", gone
    assert {d for d, s in sites.items() if s["status"] == "participating"} == {
        f"{m}-heart" for m in FOUR[:3]
    }
    assert list_models(consortium, job.id)  # released, trained by the three
    # Nothing reserved for the offline dataset: its node was never asked.
    spent = {b.dataset: b for b in budgets(consortium)}
    assert spent[f"{offline}-heart"].spent == 0, spent
    assert spent[f"{offline}-heart"].committed == 0, spent
    assert all(spent[f"{m}-heart"].spent > 0 for m in FOUR[:3]), spent
    [refusal] = [
        entry
        for entry in (json.loads(leaf)["entry"] for leaf in leaves(home))
        if entry["kind"] == "job.refused" and entry["payload"]["job"] == job.id
    ]
    assert refusal["actor"] == "coordinator", refusal  # the node said nothing: not its word
    assert refusal["payload"]["dataset"] == f"{offline}-heart", refusal

    # Its machine is back: the node starts again and reconnects, for the next case.
    world.served[offline] = restart_node(world, offline)
    print(f"offline case: train took {seconds:.0f} s")  # shown with -s (timings)


def restart_node(world: Federation, member: str, timeout: float = 120) -> Supervised:
    """`kumiai node serve` again for a node that was stopped, once it is accepted.

    The SuperLink refuses to activate a node id it still counts as online (412, "Failed
    to activate SuperNode") until the stopped node's heartbeats lapse, so a node back soon
    after it stopped starts again until it is accepted, as its IT would retry."""
    node, deadline = world.nodes[member], time.monotonic() + timeout
    while True:
        since = supernode_log(node).stat().st_size
        process = node_serve(node, world.coordinator.link_port, _started(world))
        try:
            process.wait_until(lambda s=since: connected(node, s), 60, "connected again")
            return process
        except KumiaiError:
            process.stop()
            if time.monotonic() > deadline:
                raise
            time.sleep(5)


def _started(world: Federation) -> list[Supervised]:
    """The module's list of started processes (what `four_hospitals` appended to)."""
    return world.coordinator.stopped_at_end  # type: ignore[no-any-return]


def test_the_coordinator_killed_mid_job_fails_the_job_and_loses_nothing(
    world: Federation,
) -> None:
    home, c = world.home, ("--home", str(world.home))
    consortium = open_consortium(home)
    before = {j.id for j in list_jobs(consortium)}
    run = Training(world, "killed", "--rounds", "6", "--epsilon", "1", "--seed", "9")
    try:
        # after round 1 is recorded (read from the database, as `kumiai jobs` would)
        deadline, job = time.monotonic() + 120, None
        while time.monotonic() < deadline and run.process.poll() is None:
            new = [j for j in list_jobs(consortium) if j.id not in before]
            if new and new[0].completed_rounds >= 1:
                job = new[0]
                break
            time.sleep(0.1)
        assert job is not None, f"round 1 was never recorded: {run.err.read_text()[-2000:]}"
        recorded_rounds = job.completed_rounds
        ledger_before = leaves(home)
        spent_before = {b.dataset: b.spent for b in budgets(consortium)}

        # kill -9: the coordinator service and its SuperLink, a machine that died
        coordinator = world.coordinator.process
        assert coordinator is not None and coordinator.pid is not None
        pids = [coordinator.pid, *descendants(coordinator.pid)]
        assert len(pids) >= 2  # the service and its SuperLink
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        out, err = run.finish(KILLED_WITHIN + 30)
        ended = time.monotonic() - killed
        assert ended < KILLED_WITHIN, ended
        print(f"coordinator case: train ended {ended:.0f} s after the kill")
    finally:
        run.kill()
    assert not any(alive(p) for p in pids)
    assert run.process.returncode != 0, out + err
    line = error_line(err)
    assert "lost the coordinator's SuperLink" in line and "no model was released" in line, line

    world.coordinator.start()  # restarted by its operator
    detail = ok(*c, "job", job.id)
    if detail["status"] != "failed":  # not recorded by the process: recovery marks it
        assert kumiai(*c, "jobs", "--recover").returncode == 0
        detail = ok(*c, "job", job.id)
    assert detail["status"] == "failed", detail
    assert "lost the coordinator's SuperLink" in detail["error"], detail
    assert detail["completed_rounds"] >= recorded_rounds  # its finished rounds are kept
    assert [r["round"] for r in detail["rounds"]] == list(
        range(1, detail["completed_rounds"] + 1)
    ), detail["rounds"]
    assert not list_models(consortium, job.id)  # no model released

    # The ledger only grew, and it verifies offline from an export.
    ledger_after = leaves(home)
    assert ledger_after[: len(ledger_before)] == ledger_before
    assert len(ledger_after) > len(ledger_before)  # at least the job's failure
    kinds = [json.loads(leaf)["entry"]["kind"] for leaf in ledger_after[len(ledger_before) :]]
    assert "job.failed" in kinds and "model.released" not in kinds, kinds
    exported = home.parent / "auditor" / "ledger.jsonl"
    exported.parent.mkdir(exist_ok=True)
    keys = exported.with_suffix(".keys")
    done = kumiai(*c, "ledger", "export", str(exported), "--keys", str(keys))
    assert done.returncode == 0, done.stderr
    verified = kumiai("ledger", "verify", str(exported), "--keys", str(keys))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # Budgets: what was recorded as spent before the kill is never lowered.
    after = {b.dataset: b for b in budgets(consortium)}
    for dataset, spent in spent_before.items():
        assert after[dataset].spent >= spent, (dataset, spent, after[dataset])
    # The ε the nodes reserved: each node releases it from its own home and reports its
    # spend, which never lowers what was recorded.
    released_everywhere(world)
    after = {b.dataset: b for b in budgets(consortium)}
    for dataset, spent in spent_before.items():
        assert after[dataset].spent >= spent, (dataset, spent, after[dataset])
