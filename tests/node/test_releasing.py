"""The node releases the ε of jobs that are over, deciding itself, and reports it.

A coordinator stands in here as a small fake that answers a job's status and takes
reports: the node must give up only its right to spend, whatever the coordinator says.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kumiai.domain import keys
from kumiai.domain.budget import RELEASE, RESERVE, SPEND
from kumiai.domain.errors import InvalidInput, NotFound, StateError
from kumiai.node.home import NodeHome
from kumiai.node.releasing import Release, check_in, keep_releasing
from kumiai.node.spendlog import SpendLog
from tests.services.helpers import log_records

DATASET = "cleveland-heart"
DETAILS = {"noise_multiplier": 1.1, "sample_rate": 0.1, "delta": 1e-5, "rounds": 3}
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class FakeCoordinator:
    """Answers every job with `status` (None: unknown) and takes every report."""

    def __init__(self, status: str | None = "completed", reachable: bool = True) -> None:
        self.status, self.reachable = status, reachable
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.refuse_reports: Exception | None = None

    def get(self, path: str, **_: Any) -> Any:
        if not self.reachable:
            raise InvalidInput("cannot reach the coordinator at https://c:8443: refused")
        if self.status is None:
            raise NotFound(f"coordinator: no job {path.rsplit('/', 1)[-1]}")
        return {"status": self.status}

    def __enter__(self) -> "FakeCoordinator":
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def post(self, path: str, document: Any) -> Any:
        if self.refuse_reports is not None:
            raise self.refuse_reports
        self.reports.append((path, document))
        return {"status": "done", "result": {"released": True}}


@pytest.fixture
def node(tmp_path: Path) -> NodeHome:
    home = NodeHome(tmp_path / "cleveland")
    home.create(
        "cleveland", "hospital", keys.new_private_key(), keys.public_key_b64(keys.new_private_key())
    )
    return home


def held(node: NodeHome, job: str = "job-1", spent: tuple[float, ...] = (0.3,)) -> SpendLog:
    """A reservation of ε=1.0 with a round or more spent: a job the node takes part in."""
    log = SpendLog(node, DATASET)
    decision = log.reserve(
        job=job, project="heart", planned=1.0, delta=1e-5, agreement_cap=None, details=DETAILS
    )
    assert decision.allowed
    for round_, epsilon in enumerate(spent, start=1):
        log.spend(job=job, round_=round_, epsilon=epsilon)
    return log


def kinds(log: SpendLog) -> list[str]:
    return [r["kind"] for r in log_records(log)]


def test_a_job_that_is_over_is_released_in_the_nodes_log_and_reported(node: NodeHome) -> None:
    log = held(node, spent=(0.3, 0.6))
    coordinator = FakeCoordinator("completed")

    found = check_in(node.root, coordinator, now=T0)  # type: ignore[arg-type]

    assert found == [Release("job-1", DATASET, 1.0, 0.6, 2, True, True, "the job is completed")]
    assert kinds(log) == [RESERVE, SPEND, SPEND, RELEASE]
    assert log.view().committed == 0.0 and log.view().spent == 0.6
    [(path, body)] = coordinator.reports
    assert path == f"/jobs/job-1/privacy/{DATASET}/release"
    assert (body["spent"], body["rounds"]) == (0.6, 2)
    assert json.loads(body["attestation"])["attestation"]["lines"] == 4  # the release included
    # Twice is harmless: nothing new in the log, nothing sent again.
    assert check_in(node.root, coordinator, now=T0) == []
    assert kinds(log) == [RESERVE, SPEND, SPEND, RELEASE] and len(coordinator.reports) == 1


@pytest.mark.parametrize("status", ["failed", None])
def test_a_failed_job_or_one_the_coordinator_does_not_know_is_released(
    node: NodeHome, status: str | None
) -> None:
    log = held(node)
    [found] = check_in(node.root, FakeCoordinator(status), now=T0)  # type: ignore[arg-type]
    assert found.released and found.reported
    assert found.reason == ("the job is failed" if status else "the coordinator knows no such job")
    assert kinds(log)[-1] == RELEASE


def test_a_coordinator_that_lies_the_job_is_over_only_stops_the_node_taking_part(
    tmp_path: Path,
) -> None:
    """A real job: the node releases on a lie, and its guard refuses the next round."""
    from tests.services.crash import SETTINGS, run_until_the_window
    from tests.services.helpers import heart_consortium

    consortium, _ = heart_consortium(tmp_path / "c", hospitals=("cleveland-clinic",))
    job_id = run_until_the_window(consortium, recorded=1, logged=1)  # still running
    root = consortium.member_home("cleveland-clinic")
    dataset = "cleveland-clinic-heart"
    log = SpendLog(NodeHome(root), dataset)
    spent = log.view().jobs[job_id].spent

    [found] = check_in(root, FakeCoordinator("completed"))  # type: ignore[arg-type]
    assert (found.job, found.released, found.spent) == (job_id, True, spent)

    from kumiai.adapters.models.logistic import LogisticRegression
    from kumiai.domain.preprocessing import merge_summaries
    from kumiai.node.worker import NodeWorker

    worker = NodeWorker(root)
    plan = merge_summaries({dataset: worker.summary(dataset, SETTINGS)})
    arrays = LogisticRegression(len(plan.feature_names), len(plan.classes)).arrays
    lines = log.log.read_text()
    with pytest.raises(StateError) as refused:
        worker.train(dataset, SETTINGS, plan, arrays, 2, job_id)
    assert str(refused.value) == (
        f"job {job_id} holds no privacy reservation on {dataset!r}; it must pass the node's "
        "budget check first"
    )
    assert log.log.read_text() == lines  # nothing spent
    assert log.view().jobs[job_id].spent == spent


def test_running_forever_is_released_once_untouched_for_stale_after(node: NodeHome) -> None:
    log = held(node)
    running = FakeCoordinator("running")
    day = timedelta(hours=24)

    def at(moment: datetime) -> Release:
        [found] = check_in(node.root, running, now=moment, stale_after=day)  # type: ignore[arg-type]
        return found

    assert at(T0) == Release(
        "job-1", DATASET, 1.0, 0.3, 1, False, False, "kept: the job is running"
    )
    assert not at(T0 + timedelta(hours=12)).released
    log.spend(job="job-1", round_=2, epsilon=0.5)  # it moved: the clock starts again
    assert not at(T0 + timedelta(hours=30)).released
    assert kinds(log)[-1] == SPEND and running.reports == []
    released = at(T0 + timedelta(hours=54))
    assert released.released and released.reported and released.spent == 0.5
    assert released.reason.startswith("the coordinator says running, but nothing was spent on it")
    assert kinds(log)[-1] == RELEASE


def test_an_unreachable_coordinator_keeps_the_reservation_until_it_is_stale(
    node: NodeHome,
) -> None:
    log = held(node)
    away = FakeCoordinator(reachable=False)
    [kept] = check_in(node.root, away, now=T0)  # type: ignore[arg-type]
    assert not kept.released
    assert "the coordinator did not answer (cannot reach the coordinator" in kept.reason
    [late] = check_in(node.root, away, now=T0 + timedelta(days=2))  # type: ignore[arg-type]
    assert late.released and kinds(log)[-1] == RELEASE


def test_a_report_that_did_not_get_through_is_sent_again_not_released_again(
    node: NodeHome,
) -> None:
    log = held(node)
    coordinator = FakeCoordinator("completed")
    coordinator.refuse_reports = InvalidInput("cannot reach the coordinator at https://c:8443")
    [first] = check_in(node.root, coordinator, now=T0)  # type: ignore[arg-type]
    assert first.released and not first.reported
    assert "not yet reported (cannot reach the coordinator" in first.reason
    coordinator.refuse_reports = None
    [second] = check_in(node.root, coordinator, now=T0)  # type: ignore[arg-type]
    assert second.released and second.reported
    assert second.reason == "released before; reporting it"
    assert kinds(log).count(RELEASE) == 1 and len(coordinator.reports) == 1


def test_a_damaged_log_is_named_and_released_nothing(node: NodeHome) -> None:
    log = held(node)
    log.log.write_text(log.log.read_text().replace("0.3", "0.1"))
    [found] = check_in(node.root, FakeCoordinator("completed"), now=T0)  # type: ignore[arg-type]
    assert (found.dataset, found.released) == (DATASET, False)
    assert found.reason == (
        f"dataset {DATASET!r}: spend log line 2 is not signed by this node (a forged record); "
        "restore the spend log from backup"
    )
    assert RELEASE not in kinds(log)


def test_the_background_check_in_survives_a_failure_and_stops_on_request(
    node: NodeHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from kumiai.node import releasing

    calls: list[int] = []
    stop = threading.Event()

    def flaky(root: Path, **_: Any) -> list[Release]:
        calls.append(1)
        if len(calls) == 1:
            raise InvalidInput("cannot reach the coordinator at https://c:8443")
        stop.set()
        return [Release("job-1", DATASET, 1.0, 0.3, 1, True, True, "the job is completed")]

    monkeypatch.setattr(releasing, "release_finished", flaky)
    said: list[str] = []
    keep_releasing(node.root, 0.01, timedelta(hours=24), stop, said.append)
    assert said == [
        "could not check this node's reservations (cannot reach the coordinator at "
        "https://c:8443); retrying in 0.01 s",
        f"released job job-1 on {DATASET} (ε 0.300 spent): the job is completed",
    ]


def test_an_unreadable_record_of_what_was_reported_only_sends_a_report_again(
    node: NodeHome,
) -> None:
    log = held(node)
    coordinator = FakeCoordinator("completed")
    check_in(node.root, coordinator, now=T0)  # type: ignore[arg-type]
    (node.root / "privacy" / "releasing.json").write_text("{not json")
    [again] = check_in(node.root, coordinator, now=T0)  # type: ignore[arg-type]
    assert (again.released, again.reported) == (True, True)
    assert kinds(log).count(RELEASE) == 1 and len(coordinator.reports) == 2
    assert check_in(node.root, coordinator, now=T0) == []  # type: ignore[arg-type]


def test_kumiai_node_release_prints_a_table(
    node: NodeHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from kumiai.interfaces.cli.main import app as cli
    from kumiai.node import remote
    from kumiai.node.port import LocalNode

    held(node, job="job-1")
    held(node, job="job-2", spent=())
    coordinator = FakeCoordinator("running")
    monkeypatch.setattr(remote, "client_for", lambda root: (coordinator, LocalNode(root)))
    argv = ["node", "release", "--home", str(node.root), "--stale-after", "3600"]
    result = CliRunner().invoke(cli, argv, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "job-" in line]
    assert len(rows) == 2 and all("kept: the job is running" in row for row in rows)
    assert "0.300" in rows[0] and "no" in rows[0].split()
    coordinator.status = "completed"
    result = CliRunner().invoke(cli, argv, env={"COLUMNS": "200"})
    rows = [line for line in result.output.splitlines() if "job-" in line]
    assert len(rows) == 2 and all("yes" in row.split() for row in rows)
