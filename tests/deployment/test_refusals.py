"""Who cannot take part: a SuperNode whose key was never registered, a node without the
consortium's CA, and (the key question) a coordinator shipping an app of its own choosing."""

import time
from pathlib import Path

import pytest
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid, ServerApp

from kumiai.adapters.flower import deployment
from kumiai.adapters.flower.shim import SHIM_PYPROJECT, fab_sha256
from kumiai.adapters.flower.supernode import APP_REFUSED
from kumiai.domain.errors import KumiaiError
from kumiai.node.serving import supernode_for
from kumiai.services.consortium import init_consortium
from kumiai.services.coordinator_tls import init_tls
from kumiai.services.deployment import free_port, start_local_nodes, start_superlink
from kumiai.services.members import add_member

pytestmark = pytest.mark.deployment


@pytest.fixture
def link(home: Path, stopped_at_end: list):  # type: ignore[no-untyped-def, type-arg]
    """A SuperLink that knows one member's node, st-mary's."""
    consortium = init_consortium(home)
    add_member(consortium, "st-mary", "hospital")
    init_tls(home, ["127.0.0.1"])
    running = start_superlink(consortium, free_port())
    stopped_at_end.append(running)
    return consortium, running


def test_a_supernode_whose_key_is_not_registered_is_refused(link, stopped_at_end: list) -> None:  # type: ignore[no-untyped-def, type-arg]
    consortium, running = link
    add_member(consortium, "stranger", "company")  # joined after the SuperLink registered keys
    node = supernode_for(
        consortium.member_home("stranger"),
        running.address.address,
        running.tls.ca_cert,
        free_port(),
    )
    stopped_at_end.append(node)
    began = time.monotonic()
    with pytest.raises(KumiaiError, match=r"Exit Code: 305 .*Failed to activate SuperNode"):
        node.start(timeout=40)
    assert time.monotonic() - began < 40


def test_a_node_without_the_consortium_ca_cannot_connect(link, stopped_at_end: list) -> None:  # type: ignore[no-untyped-def, type-arg]
    consortium, running = link
    node = supernode_for(
        consortium.member_home("st-mary"), running.address.address, None, free_port()
    )
    stopped_at_end.append(node)
    with pytest.raises(KumiaiError, match="Exit Code: 305"):
        node.start(timeout=50)


OTHER_APP = SHIM_PYPROJECT.replace(b"kumiai.shim:clientapp", b"coordinator_code:clientapp")


def test_a_node_refuses_an_app_the_coordinator_chose(  # type: ignore[no-untyped-def]
    link, stopped_at_end: list, monkeypatch
) -> None:  # type: ignore[type-arg]
    """The SuperLink ships a FAB that is not kumiai's shim: the node answers with an error
    and runs nothing from it."""
    from flwr.cli.build import build_fab_from_files

    consortium, running = link
    stopped_at_end.extend(start_local_nodes(consortium, running, ["st-mary"]))
    other = build_fab_from_files({"pyproject.toml": OTHER_APP})[0]
    monkeypatch.setattr(deployment, "shim_fab", lambda: other)
    monkeypatch.setattr(deployment, "SHIM_SHA256", fab_sha256(other))
    replies: list[Message] = []
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        ids = list(grid.get_node_ids())
        question = Message(
            RecordDict({"config": ConfigRecord({"hello": 1})}),
            dst_node_id=ids[0],
            message_type=MessageType.QUERY,
        )
        replies.extend(grid.send_and_receive([question], timeout=30))

    deployment.run_deployment(app, running.address, running.nodes.values())
    assert len(replies) == 1 and replies[0].has_error()
    assert replies[0].error.code == ErrorCode.INVALID_FAB
    assert APP_REFUSED in (replies[0].error.reason or "")
    assert fab_sha256(other)[:12] in (replies[0].error.reason or "")


def test_a_supernode_dies_with_its_node_process(link, stopped_at_end: list) -> None:  # type: ignore[no-untyped-def, type-arg]
    """kill -9 of `kumiai node serve` leaves no SuperNode behind to hold messages unanswered."""
    import os
    import signal

    from kumiai.adapters.flower.supervised import descendants
    from tests.deployment.conftest import alive

    consortium, running = link
    (node,) = start_local_nodes(consortium, running, ["st-mary"])
    stopped_at_end.append(node)
    assert node.pid is not None
    children = descendants(node.pid)
    assert children
    os.kill(node.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in children)


def test_a_members_old_supernode_key_is_refused_once_admission_ran(  # type: ignore[no-untyped-def]
    link, stopped_at_end: list, tmp_path: Path
) -> None:  # type: ignore[type-arg]
    """st-mary's node key changes (kumiai has no act for that yet: the row is changed here as
    such an act would): one admission pass drops the old key, and a SuperNode still holding
    it is refused by Flower itself; the new key is what `train --superlink` sends to."""
    from kumiai.adapters.flower.superlink import live_nodes
    from kumiai.adapters.storage.database import transaction
    from kumiai.adapters.storage.schema import MemberRow
    from kumiai.adapters.tls import supernode_auth_key
    from kumiai.services.deployment import registered_ids
    from kumiai.services.node_admission import admit_members

    consortium, running = link
    old = running.nodes["st-mary"]
    (tmp_path / "new").mkdir()
    new_key = supernode_auth_key(tmp_path / "new").strip()
    with transaction(consortium.sessions) as session:
        session.get(MemberRow, "st-mary").supernode_key = new_key  # type: ignore[union-attr]
    changes = admit_members(consortium, running)
    new = running.nodes["st-mary"]
    assert new != old
    assert changes == [
        f"unregistered node {old} (registered as 'st-mary'): no member holds its key now",
        f"registered st-mary's SuperNode key (node {new})",
    ]
    assert [n.node_id for n in live_nodes(running.address)] == [new]
    assert registered_ids(consortium) == {"st-mary": new}
    assert admit_members(consortium, running) == []  # in step: nothing more to do
    node = supernode_for(  # the home still holds the old key
        consortium.member_home("st-mary"), running.address.address, running.tls.ca_cert,
        free_port(),
    )  # fmt: skip
    stopped_at_end.append(node)
    with pytest.raises(KumiaiError, match=r"Exit Code: 305 .*Failed to activate SuperNode"):
        node.start(timeout=40)
