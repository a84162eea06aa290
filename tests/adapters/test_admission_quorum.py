"""`_admit` on a fake grid: a node offline for the whole wait is recorded and left out, or
the job fails naming the missing members when too few came. Fast: no Flower engine."""

import time
from collections.abc import Collection
from datetime import UTC, datetime

import pytest
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from kumiai.adapters.flower import protocol
from kumiai.adapters.flower.serverapp import FederatedJob, _admit
from kumiai.domain.errors import JobFailed
from kumiai.domain.job import JobDocument, JobKind, sign_job
from kumiai.domain.keys import new_private_key
from kumiai.domain.preprocessing import SiteSummary
from kumiai.domain.schema import ColumnType
from kumiai.domain.training import TrainingSettings

SITES = {"a-heart": "a", "b-heart": "b", "c-heart": "c", "d-heart": "d"}
NODES = {11: "a", 22: "b", 33: "c", 44: "d"}


@pytest.fixture(autouse=True)
def run_identity() -> None:
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 0


class Grid:
    """Nodes that are connected (or not) and answer the admission query with a summary."""

    def __init__(self, connected: Collection[int], silent: Collection[int] = ()) -> None:
        self.connected, self.silent = list(connected), set(silent)
        self.asked: list[int] = []

    def get_node_ids(self) -> list[int]:
        return self.connected

    def send_and_receive(self, messages, *, timeout=None):  # type: ignore[no-untyped-def]
        replies = []
        for message in messages:
            node = message.metadata.dst_node_id
            self.asked.append(node)
            if node in self.silent:
                continue
            summary = SiteSummary(
                rows=10,
                schema={"age": ColumnType.NUMERIC},
                numeric={"age": (10, 500.0, 25500.0)},
                classes={"0": 5, "1": 5},
            )
            record = ConfigRecord(
                {
                    protocol.DATASET: f"{NODES[node]}-heart",
                    protocol.ROWS: 10,
                    protocol.SUMMARY: summary.to_json(),
                }
            )
            reply = Message(RecordDict({protocol.SUMMARY: record}), reply_to=message)
            replies.append(reply)
        return replies


class Observer:
    def __init__(self) -> None:
        self.decided: tuple | None = None  # type: ignore[type-arg]

    def sites_decided(self, admitted, refused, offline=None):  # type: ignore[no-untyped-def]
        self.decided = (list(admitted), dict(refused), dict(offline or {}))

    def cosigned(self, *args) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("no cosignature in these replies")

    def privacy_planned(self, *args) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("no DP in these jobs")

    def spend_attested(self, *args) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("no DP in these jobs")


def job(secure: bool = True, nodes: dict[int, str] | None = None) -> FederatedJob:
    document = JobDocument(
        job_id="job-1",
        project="heart",
        purpose="diagnosis support",
        kind=JobKind.TRAIN,
        datasets=tuple(SITES),
        settings=TrainingSettings(rounds=1, secure_aggregation=secure),
        agreements={},
        issued_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return FederatedJob(
        signed=sign_job(document, new_private_key()),
        agreements={},
        expected_nodes=4,
        members=dict(SITES),
        nodes=dict(NODES) if nodes is None else nodes,
        query_timeout=0.3,
    )


def test_three_of_four_connected_go_on_and_the_fourth_is_offline() -> None:
    grid, observer = Grid([11, 22, 33]), Observer()
    started = time.monotonic()
    sites = _admit(grid, job(), observer)
    assert time.monotonic() - started < 2  # waited the admission timeout, no longer
    assert sites == {11: "a-heart", 22: "b-heart", 33: "c-heart"}
    assert grid.asked == [11, 22, 33]  # the offline node was never asked: nothing reserved
    assert observer.decided == (
        ["a-heart", "b-heart", "c-heart"],
        {},
        {"d-heart": "offline: its node did not connect within 0 s"},
    )


def test_a_node_the_superlink_still_lists_but_that_never_answers_is_offline() -> None:
    """A stopped node stays listed until its heartbeats lapse: asked, it never answers."""
    grid, observer = Grid([11, 22, 33, 44], silent=[44]), Observer()
    started = time.monotonic()
    assert _admit(grid, job(), observer) == {11: "a-heart", 22: "b-heart", 33: "c-heart"}
    assert time.monotonic() - started < 2
    assert observer.decided is not None
    assert observer.decided[2] == {"d-heart": "offline: its node did not connect within 0 s"}


def test_below_the_minimum_the_job_fails_naming_who_is_missing() -> None:
    grid, observer = Grid([22]), Observer()
    with pytest.raises(JobFailed) as failed:
        _admit(grid, job(secure=True), observer)
    assert str(failed.value).startswith(
        "only 1 of 4 nodes connected within 0 s, fewer than the 2 this job needs; missing: a, c, d."
    )
    assert grid.asked == [] and observer.decided is None  # no node asked, nothing recorded


def test_one_node_is_enough_for_a_plain_job() -> None:
    grid, observer = Grid([44]), Observer()
    assert _admit(grid, job(secure=False), observer) == {44: "d-heart"}
    assert observer.decided is not None
    assert sorted(observer.decided[2]) == ["a-heart", "b-heart", "c-heart"]


def test_no_node_map_still_names_the_silent_datasets_offline() -> None:
    grid, observer = Grid([11, 22]), Observer()
    _admit(grid, job(nodes={}), observer)
    assert observer.decided is not None
    assert sorted(observer.decided[2]) == ["c-heart", "d-heart"]
    assert all(r.startswith("offline:") for r in observer.decided[2].values())


def test_all_connected_waits_no_longer() -> None:
    grid, observer = Grid([11, 22, 33, 44]), Observer()
    slow = job()
    slow.query_timeout = 30
    started = time.monotonic()
    assert len(_admit(grid, slow, observer)) == 4
    assert time.monotonic() - started < 2
    assert observer.decided is not None and observer.decided[2] == {}
