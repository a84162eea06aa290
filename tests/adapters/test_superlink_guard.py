"""The SuperLink's Control and Runtime APIs answer the coordinator's machine only, and a job
goes only to the node ids the coordinator itself registered."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from kumiai.adapters.flower.deployment import RegisteredNodes
from kumiai.adapters.flower.superlink import (
    NODES_FILE,
    SuperLink,
    read_registered,
    write_registered,
)
from kumiai.adapters.flower.superlink_guard import REFUSED, LocalControlOnly, same_machine
from kumiai.adapters.tls import ServerFiles
from kumiai.domain.errors import JobFailed


def _app() -> LocalControlOnly:
    async def ok(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("flower")

    paths = ["/v1/control/register-node", "/v1/runtime/acquire-task", "/v1/fleet/pull", "/health"]
    return LocalControlOnly(Starlette(routes=[Route(p, ok, methods=["POST"]) for p in paths]))


@pytest.mark.parametrize("path", ["/v1/control/register-node", "/v1/runtime/acquire-task"])
def test_control_and_runtime_refuse_another_machine(path: str) -> None:
    for client in [("203.0.113.7", 5000), ("testclient", 1), ("10.0.0.9", 5000)]:
        reply = TestClient(_app(), client=client).post(path)
        assert reply.status_code == 403, client
        assert reply.content == REFUSED


@pytest.mark.parametrize("path", ["/v1/control/register-node", "/v1/runtime/acquire-task"])
def test_control_and_runtime_answer_the_coordinators_machine(path: str) -> None:
    for client in [("127.0.0.1", 5000), ("::1", 5000), ("127.0.0.5", 1)]:
        reply = TestClient(_app(), client=client).post(path)
        assert (reply.status_code, reply.text) == (200, "flower"), client


def test_the_fleet_api_stays_public() -> None:
    reply = TestClient(_app(), client=("203.0.113.7", 5000)).post("/v1/fleet/pull")
    assert (reply.status_code, reply.text) == (200, "flower")


def test_same_machine_is_loopback_or_our_own_address() -> None:
    assert same_machine("127.0.0.1", "10.0.0.5")
    assert same_machine("10.0.0.5", "10.0.0.5")  # a process here dialling our public IP
    assert not same_machine("10.0.0.6", "10.0.0.5")
    assert not same_machine("10.0.0.6", None)
    assert not same_machine(None, "10.0.0.5")
    assert not same_machine("testclient", "testclient")
    assert not same_machine("/v1/control", "10.0.0.5")
    assert same_machine("::ffff:127.0.0.1", "::")  # a dual-stack socket's loopback client
    assert not same_machine("::ffff:10.0.0.6", "::ffff:10.0.0.5")
    assert same_machine("::ffff:10.0.0.5", "10.0.0.5")


def test_the_superlink_is_started_through_the_guard(tmp_path: Path) -> None:
    files = ServerFiles(tmp_path / "ca.pem", tmp_path / "c.pem", tmp_path / "k.pem")
    command = SuperLink(files, tmp_path, host="0.0.0.0", port=9092).command()
    assert command[1:3] == ["-m", "kumiai.adapters.flower.superlink_guard"]
    assert "flower-superlink" not in " ".join(command)
    assert command[command.index("--host") + 1] == "0.0.0.0"


def test_registered_ids_are_the_coordinators_own_record(tmp_path: Path) -> None:
    path = tmp_path / NODES_FILE
    assert read_registered(path) == {}
    write_registered(path, {"st-mary": 11, "lab": 22})
    assert read_registered(path) == {"lab": 22, "st-mary": 11}
    assert path.stat().st_mode & 0o777 == 0o600


class _Grid:
    """A grid that records what it was asked to send."""

    def __init__(self, ids: list[int]) -> None:
        self.ids, self.pushed = ids, []  # type: ignore[var-annotated]

    def get_node_ids(self) -> list[int]:
        return self.ids

    def push_messages(self, messages):  # type: ignore[no-untyped-def]
        self.pushed += list(messages)
        return ["m"]


def _to(node_id: int) -> SimpleNamespace:
    """Only the destination matters to the filter (a real Message needs a running task)."""
    return SimpleNamespace(metadata=SimpleNamespace(dst_node_id=node_id))


def test_a_node_the_coordinator_did_not_register_is_never_sent_a_message() -> None:
    inner = _Grid([11, 22, 666])  # 666 registered itself (a name anyone could take)
    grid = RegisteredNodes(inner, [11, 22])  # type: ignore[arg-type]
    assert list(grid.get_node_ids()) == [11, 22]
    with pytest.raises(JobFailed, match=r"unregistered node\(s\) \[666\]"):
        grid.push_messages([_to(11), _to(666)])
    assert inner.pushed == []
    assert list(grid.push_messages([_to(22)])) == ["m"]
    assert [m.metadata.dst_node_id for m in inner.pushed] == [22]
