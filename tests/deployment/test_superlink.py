"""The coordinator's SuperLink: TLS with the consortium's CA, node authentication on with the
keys members' nodes made when they joined, and stopped by PID."""

import ssl
import stat
from pathlib import Path

import pytest

from kumiai.adapters.flower.superlink import registered_nodes
from kumiai.domain.errors import StateError
from kumiai.node.home import NodeHome
from kumiai.services.consortium import init_consortium
from kumiai.services.coordinator_tls import init_tls
from kumiai.services.deployment import (
    node_keys,
    registered_ids,
    start_superlink,
    superlink_for,
)
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
    assert registered_ids(consortium) == link.nodes  # what `train --superlink` sends to
    assert "kumiai.adapters.flower.superlink_guard" in link.command()


def test_coordinator_serve_starts_and_stops_the_superlink_with_the_api(home: Path) -> None:
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    from kumiai.adapters.flower.supervised import stop_pids

    consortium = init_consortium(home)
    add_member(consortium, "st-mary", "hospital")
    init_tls(home, ["127.0.0.1"])
    api, superlink = free_port(), free_port()
    log = home / "serve.log"
    with log.open("wb") as out:
        serving = subprocess.Popen(
            [sys.executable, "-m", "kumiai", "--home", str(home), "coordinator", "serve",
             "--port", str(api), "--superlink-port", str(superlink)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "300"},
        )  # fmt: skip
    pid = None
    try:
        deadline = time.monotonic() + 50
        while time.monotonic() < deadline and pid is None:
            found = re.search(r"SuperLink \(pid (\d+)\)", " ".join(log.read_text().split()))
            pid = int(found[1]) if found else None
            assert serving.poll() is None, log.read_text()
            time.sleep(0.2)
        assert pid is not None and alive(pid), log.read_text()
        text = " ".join(log.read_text().split())
        assert "admitting the nodes of st-mary" in text
        serving.send_signal(signal.SIGTERM)
        serving.wait(timeout=30)
        deadline = time.monotonic() + 15
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(pid), "the SuperLink outlived `coordinator serve`"
    finally:
        stop_pids([p for p in (serving.pid, pid) if p is not None], wait=2)


def test_train_on_a_superlink_refuses_a_bad_address(home: Path) -> None:
    from tests.interfaces.test_cli import assert_user_error, kumiai

    init_consortium(home)
    assert_user_error(kumiai(home, "train", "heart", "--superlink", "nowhere"), "is not HOST:PORT")
    assert_user_error(
        kumiai(home, "train", "heart", "--superlink", "127.0.0.1:9092"), "coordinator init"
    )


def _outside_address() -> str:
    """This machine's non-loopback address (a UDP connect sends nothing), or skip."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            address = str(probe.getsockname()[0])
    except OSError:
        address = "127.0.0.1"
    if address.startswith("127."):
        pytest.skip("no non-loopback address to call from")
    return address


def _status(port: int, ca: Path, source: str, path: str) -> tuple[int, bytes]:
    """POST `path` over TLS to 127.0.0.1:port from the local address `source`."""
    import socket
    import ssl

    context = ssl.create_default_context(cafile=str(ca))
    with socket.socket() as raw:
        raw.settimeout(10)
        raw.bind((source, 0))
        raw.connect(("127.0.0.1", port))
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            reply = b""
            while chunk := tls.recv(65536):
                reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_the_control_api_answers_only_the_coordinators_machine(
    home: Path, stopped_at_end: list
) -> None:  # type: ignore[type-arg]
    """A real SuperLink on all addresses: a caller from another address than the one it
    reached (here: this machine's LAN address dialling 127.0.0.1, as a remote host would
    look) gets 403 on the Control and Runtime APIs; the Fleet API still answers it."""
    from kumiai.adapters.flower.superlink_guard import REFUSED

    outside = _outside_address()
    consortium = init_consortium(home)
    add_member(consortium, "st-mary", "hospital")
    init_tls(home, ["127.0.0.1", "0.0.0.0"])
    port = free_port()
    link = start_superlink(consortium, port, host="0.0.0.0")
    stopped_at_end.append(link)
    assert list(link.nodes) == ["st-mary"]  # the coordinator's own calls pass
    ca = link.tls.ca_cert
    for path in ("/v1/control/list-runs", "/v1/control/start-run", "/v1/runtime/acquire-task"):
        assert _status(port, ca, outside, path) == (403, REFUSED), path
    assert _status(port, ca, "127.0.0.1", "/v1/control/list-runs")[0] != 403
    assert _status(port, ca, outside, "/v1/fleet/register-node")[0] != 403


def test_admission_drops_a_node_registered_behind_the_coordinators_back(
    home: Path, stopped_at_end: list, tmp_path: Path
) -> None:  # type: ignore[type-arg]
    """A stranger's key registered through the Control API under a member's own name, and a
    nodes file rewritten to point jobs at it: one pass unregisters the stranger, restores the
    file from the consortium's own keys, and registers nothing it does not hold."""
    from kumiai.adapters.flower.superlink import (
        live_nodes,
        register_node,
        write_registered,
    )
    from kumiai.adapters.tls import supernode_auth_key
    from kumiai.services.node_admission import admit_members

    consortium = init_consortium(home)
    add_member(consortium, "st-mary", "hospital")
    init_tls(home, ["127.0.0.1"])
    link = start_superlink(consortium, free_port())
    stopped_at_end.append(link)
    ours = link.nodes["st-mary"]
    (tmp_path / "stranger").mkdir()
    stranger = register_node(link.address, supernode_auth_key(tmp_path / "stranger"), "st-mary")
    write_registered(link.nodes_file, {"st-mary": stranger, "ghost": 7})
    changes = admit_members(consortium, link)
    assert changes == [
        f"unregistered node {stranger} (registered as 'st-mary'): no member holds its key now"
    ]
    assert [n.node_id for n in live_nodes(link.address)] == [ours]
    assert registered_ids(consortium) == {"st-mary": ours} == link.nodes
    assert admit_members(consortium, link) == []
    for garbage in ("{not json", '["st-mary"]', '{"st-mary": {"node": 1}}'):
        link.nodes_file.write_text(garbage)  # a corrupted file does not stop admission
        assert admit_members(consortium, link) == []
        assert registered_ids(consortium) == {"st-mary": ours}


def test_a_member_that_joins_while_serve_runs_connects_without_a_restart(
    home: Path, stopped_at_end: list, tmp_path: Path
) -> None:  # type: ignore[type-arg]
    """`coordinator serve --superlink-port` runs; then a member is invited, its node joins
    from its own home (`kumiai node init`) and `kumiai node serve` is accepted by the
    SuperLink: nobody restarted the coordinator."""
    import json
    import os
    import subprocess
    import sys

    import httpx

    from kumiai.adapters.flower.supervised import Supervised
    from kumiai.services.deployment import connected
    from kumiai.services.invitations import invite_member

    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
    consortium = init_consortium(home)
    init_tls(home, ["127.0.0.1"])
    api, superlink = free_port(), free_port()
    url = f"https://127.0.0.1:{api}"
    command = [sys.executable, "-m", "kumiai", "--home", str(home), "coordinator", "serve"]
    command += ["--port", str(api), "--superlink-port", str(superlink)]
    serving = Supervised("coordinator", command, home / "serve.log", {**env, "COLUMNS": "300"})
    serving.start()
    stopped_at_end.append(serving)

    trust = ssl.create_default_context(cafile=str(home / "tls" / "ca.pem"))

    def answers() -> bool:
        try:
            httpx.get(f"{url}/ledger/head", verify=trust, timeout=2)
        except httpx.HTTPError:
            return False
        return True

    serving.wait_until(answers, 60, "answering over HTTPS")
    assert "admitting the nodes of no member" in " ".join(serving.log.read_text().split())

    node = tmp_path / "lab-node"
    token = invite_member(consortium, "lab", "university").token
    joined = subprocess.run(
        [sys.executable, "-m", "kumiai", "node", "init", "--home", str(node),
         "--coordinator", url, "--invite", token, "--json"],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert joined.returncode == 0, joined.stderr
    assert json.loads(joined.stdout)["member"]["name"] == "lab"
    command = [sys.executable, "-m", "kumiai", "node", "serve", "--home", str(node)]
    command += ["--superlink", f"127.0.0.1:{superlink}", "--runtime-port", str(free_port())]
    served = Supervised("node", command, node / "serve.log", env)
    served.start()
    stopped_at_end.append(served)
    served.wait_until(lambda: connected(node), 40, "connected to the SuperLink")
    log = " ".join(serving.log.read_text().split())
    assert (
        f"SuperLink: registered lab's SuperNode key (node {registered_ids(consortium)['lab']})"
        in log
    )
    assert serving.exit_code() is None  # the same coordinator process throughout


def test_a_superlink_on_every_address_is_reached_over_loopback(
    home: Path,
    stopped_at_end: list,  # type: ignore[type-arg]
) -> None:
    """`--host 0.0.0.0` (a coordinator members reach by name): the certificate names
    127.0.0.1 too, so the coordinator's own checks and registrations pass its TLS check."""
    consortium = init_consortium(home)
    add_member(consortium, "st-mary", "hospital")
    init_tls(home, ["coordinator.example.org"])
    link = start_superlink(consortium, free_port(), host="0.0.0.0")
    stopped_at_end.append(link)
    assert list(link.nodes) == ["st-mary"]
    assert link.address.host == "127.0.0.1" and "0.0.0.0" in link.command()


def test_a_certificate_without_loopback_is_refused_for_every_address(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's own certificate that names only the public host: refused before
    anything starts, with the two ways out, rather than a TLS failure after a minute."""
    import kumiai.adapters.tls as tls
    from kumiai.domain.errors import InvalidInput

    consortium = init_consortium(home)
    monkeypatch.setattr(tls, "LOOPBACK", ())
    init_tls(home, ["coordinator.example.org"])
    superlink_for(consortium, free_port(), host="coordinator.example.org")  # a name: fine
    with pytest.raises(InvalidInput, match=r"--host '0.0.0.0' listens on every address.*"
                       r"add 127.0.0.1 to your certificate"):  # fmt: skip
        superlink_for(consortium, free_port(), host="0.0.0.0")
