"""The coordinator's SuperLink: TLS with the consortium's CA, node authentication on with the
keys members' nodes made when they joined, and stopped by PID."""

import stat
from pathlib import Path

import pytest

from kumiai.adapters.flower.superlink import registered_nodes
from kumiai.domain.errors import StateError
from kumiai.node.home import NodeHome
from kumiai.services.consortium import init_consortium
from kumiai.services.coordinator_tls import init_tls
from kumiai.services.deployment import node_keys, start_superlink, superlink_for
from kumiai.services.members import add_member
from tests.deployment.conftest import alive, free_port

pytestmark = pytest.mark.deployment


def test_a_member_node_makes_its_supernode_key_at_joining(home: Path) -> None:
    consortium = init_consortium(home)
    add_member(consortium, "st-mary", "hospital")
    node = NodeHome(consortium.member_home("st-mary"))
    private = node.supernode_auth_file
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    keys = node_keys(consortium)
    assert keys == {"st-mary": private.with_suffix(".pub").read_text().strip()}
    assert keys["st-mary"].startswith("ecdsa-sha2-nistp256 ")
    assert "PRIVATE" not in keys["st-mary"]


def test_the_superlink_serves_tls_and_admits_only_registered_nodes(
    home: Path, stopped_at_end: list
) -> None:  # type: ignore[type-arg]
    consortium = init_consortium(home)
    for member in ("st-mary", "lab"):
        add_member(consortium, member, "hospital" if member == "st-mary" else "university")
    with pytest.raises(StateError, match="coordinator init"):
        superlink_for(consortium, free_port())
    init_tls(home, ["127.0.0.1"])
    link = superlink_for(consortium, free_port())
    stopped_at_end.append(link)
    link.start(node_keys(consortium))
    assert link.pid is not None and alive(link.pid)
    nodes = registered_nodes(link.address)
    assert sorted(nodes.values()) == ["lab", "st-mary"]
    assert {v: k for k, v in nodes.items()} == link.nodes
    log = (home / "superlink" / "superlink.log").read_text()
    assert "https://127.0.0.1" in log and "--insecure" not in " ".join(link.command())
    assert "--enable-supernode-auth" in link.command()
    assert "--disable-runtime-dependency-installation" in link.command()
    pid = link.pid
    link.stop()
    assert not alive(pid)


def test_start_superlink_registers_every_member(home: Path, stopped_at_end: list) -> None:  # type: ignore[type-arg]
    consortium = init_consortium(home)
    add_member(consortium, "st-mary", "hospital")
    init_tls(home, ["127.0.0.1"])
    link = start_superlink(consortium, free_port())
    stopped_at_end.append(link)
    assert list(link.nodes) == ["st-mary"]
