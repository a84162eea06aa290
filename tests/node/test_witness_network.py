"""Witnesses that talk, with real processes on 127.0.0.1: each `kumiai node witness --once`
runs with its own node home, no shared directory, against a coordinator over TLS.

A hostile coordinator that shows member alpha one history and member beta a forked one is
caught within one round: once both have published, the second exits with the split-view
code (3) and its evidence holds both signed heads; the first's next run is caught too. An
honest `kumiai coordinator serve` has both witnesses agree. Every process is started and
stopped by its PID.
"""

import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kumiai.adapters.tls import create_authority, issue_server
from kumiai.domain import keys, merkle
from kumiai.domain.clock import utc_now
from kumiai.domain.ledger import TreeHead, cosignature_valid, head_signature_valid
from kumiai.domain.split_view import Outcome, check_evidence
from kumiai.node.gossip import EXIT_SPLIT_VIEW
from kumiai.node.home import NodeHome
from kumiai.services.consortium import init_consortium
from kumiai.services.coordinator_tls import init_tls
from kumiai.services.members import add_member
from tests.coordinator_process import start_coordinator

SCRIPT = Path(__file__).with_name("hostile_witness_coordinator.py")
ENV = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}


def free_port() -> str:
    """A free TCP port on 127.0.0.1, released for the server to take."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM by PID, then wait; SIGKILL only if it will not stop."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def witness_node(home: Path, url: str, ca: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """One `kumiai node witness --json` process (`--once` unless told), awaited by its PID."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "kumiai", "node", "witness", "--home", str(home)),
            *("--coordinator", url, "--ca", str(ca), "--json", *(extra or ("--once",))),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        out, err = process.communicate(timeout=60)
    finally:
        stop(process)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def evidence(home: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((home / "split-views").glob("*.json"))]


# -- a hostile coordinator -------------------------------------------------------------------


@pytest.fixture()
def world(tmp_path: Path) -> dict[str, object]:
    """Two node homes that pinned one coordinator key, and TLS files signed by one CA."""
    tls = tmp_path / "coordinator-tls"
    create_authority(tls, "hostile", utc_now())
    issue_server(tls, ["127.0.0.1"], utc_now())
    coordinator = keys.new_private_key()
    (tmp_path / "coordinator.pem").write_bytes(keys.private_key_to_pem(coordinator))
    homes, members = {}, {}
    for name in ("alpha", "beta"):
        homes[name] = tmp_path / f"{name}-machine" / "node"
        members[name] = NodeHome(homes[name]).create(
            name, "hospital", keys.new_private_key(), keys.public_key_b64(coordinator)
        )
    ca = tmp_path / "alpha-machine" / "ca.pem"  # each machine holds its own copy of the CA
    shutil.copy(tls / "ca.pem", ca)
    shutil.copy(tls / "ca.pem", homes["beta"].parent / "ca.pem")
    return {
        "tmp": tmp_path,
        "tls": tls,
        "homes": homes,
        "members": members,
        "coordinator_key": keys.public_key_b64(coordinator),
    }


@pytest.fixture()
def hostile(world: dict) -> Iterator[callable]:
    started: list[subprocess.Popen[str]] = []

    def start(sizes: dict[str, int]) -> str:
        config = world["tmp"] / "hostile.json"
        config.write_text(
            json.dumps(
                {
                    "cert": str(world["tls"] / "server.pem"),
                    "key": str(world["tls"] / "server.key"),
                    "coordinator_key": str(world["tmp"] / "coordinator.pem"),
                    "members": world["members"],
                    "sizes": sizes,
                }
            )
        )
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        started.append(process)
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the hostile coordinator did not start within 30 s"
        port = process.stdout.readline().strip()
        assert port.isdigit(), process.stderr.read()
        return f"https://127.0.0.1:{port}"

    yield start
    for process in started:
        stop(process)
        assert process.returncode is not None


@pytest.mark.parametrize("sizes", [{"alpha": 7, "beta": 7}, {"alpha": 6, "beta": 8}])
def test_a_coordinator_showing_two_histories_is_caught_within_one_round(
    world: dict, hostile: callable, sizes: dict[str, int]
) -> None:
    url = hostile(sizes)
    alpha, beta = world["homes"]["alpha"], world["homes"]["beta"]
    ca_alpha, ca_beta = alpha.parent / "ca.pem", beta.parent / "ca.pem"

    first = witness_node(alpha, url, ca_alpha)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["cosigned"] is True and report["head"]["size"] == sizes["alpha"]
    assert report["peers"] == [] and evidence(alpha) == []

    second = witness_node(beta, url, ca_beta)  # beta has published, then compares
    assert second.returncode == EXIT_SPLIT_VIEW, second.stderr
    assert "SPLIT VIEW" in second.stderr and "Traceback" not in second.stderr
    report = json.loads(second.stdout)
    assert [(p["witness"], p["outcome"]) for p in report["peers"]] == [("alpha", "split-view")]
    [found] = evidence(beta)
    assert report["evidence"] == [str(next((beta / "split-views").iterdir()))]
    assert found["type"] == "kumiai.split-view" and found["detected_by"] == "beta"
    heads = {h["witness"]: h for h in found["heads"]}
    assert set(heads) == {"alpha", "beta"}
    # Both heads are the coordinator's own signed words, and both witnesses vouched for them.
    for name, item in heads.items():
        head = TreeHead.from_document(item["head"])
        assert head.size == sizes[name]
        assert head_signature_valid(head, world["coordinator_key"])
        assert cosignature_valid(head, name, item["cosignature"], world["members"][name])
    a, b = (TreeHead.from_document(heads[n]["head"]) for n in ("alpha", "beta"))
    if a.size == b.size:
        assert a.root != b.root and "two different logs of 7 entries" in found["reason"]
        # The file proves the fork to anyone holding the coordinator's key, with nothing else.
        proven = check_evidence([a, b], None, world["coordinator_key"])
        assert proven.outcome is Outcome.SPLIT_VIEW
    else:  # the coordinator's best proof, from beta's own history, does not verify
        assert found["proof"] is not None and found["refusal"] is None
        proof = [bytes.fromhex(p) for p in found["proof"]]
        assert not merkle.verify_consistency(
            a.size, b.size, bytes.fromhex(a.root), bytes.fromhex(b.root), proof
        )
        assert "does not extend the log of 6" in found["reason"]

    # Alpha's next round is caught too, and a node witnessing `--every` stops at it.
    again = witness_node(alpha, url, ca_alpha, "--every", "1")
    assert again.returncode == EXIT_SPLIT_VIEW, again.stderr
    [caught] = evidence(alpha)
    assert {h["witness"] for h in caught["heads"]} == {"alpha", "beta"}
    if a.size != b.size:  # alpha's history has no 8th entry: no proof is given at all
        assert caught["proof"] is None and caught["refusal"].startswith("404")
        assert "would not prove that its log of 8 entries extends its log of 6" in caught["reason"]


def test_a_witness_refuses_a_coordinator_it_cannot_authenticate(world: dict, hostile) -> None:
    url = hostile({"alpha": 6, "beta": 6})
    alpha = world["homes"]["alpha"]
    other = world["tmp"] / "other-ca"
    create_authority(other, "someone-else", utc_now())
    refused = witness_node(alpha, url, other / "ca.pem")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    said = " ".join(refused.stderr.split())
    assert f"the server at {url} did not present a certificate signed by the consortium's" in said
    wrong = witness_node(alpha, url, alpha.parent / "ca.pem", "--once", "--member", "beta")
    assert wrong.returncode == 2
    assert "belongs to 'alpha', not 'beta'" in " ".join(wrong.stderr.split())
    assert not (alpha / "witness.json").exists()


# -- the honest coordinator -------------------------------------------------------------------


def test_witnesses_of_an_honest_coordinator_agree(tmp_path: Path) -> None:
    home = tmp_path / "coordinator-machine" / "consortium"
    consortium = init_consortium(home)
    for name in ("alpha", "beta"):
        add_member(consortium, name, "hospital")
    init_tls(home, ["127.0.0.1"])
    nodes = {}
    for name in ("alpha", "beta"):  # each node home moves to its own machine, with the CA
        machine = tmp_path / f"{name}-machine"
        nodes[name] = machine / "node"
        shutil.copytree(consortium.member_home(name), nodes[name])
        shutil.copy(home / "tls" / "ca.pem", machine / "ca.pem")
    port = free_port()
    server = start_coordinator(home, port)
    url = f"https://127.0.0.1:{port}"
    trusting = ssl.create_default_context(cafile=str(home / "tls" / "ca.pem"))
    try:
        size = TreeHead.from_json(_head(url, trusting)).size
        # Between rounds the log grows (a member joins): the proofs come over the network.
        runs = [
            ("alpha", size, [], ""),
            ("beta", size + 1, [("alpha", size)], f"consistent, {size} -> {size + 1}"),
            ("alpha", size + 1, [("beta", size + 1)], "the same head"),
        ]
        for name, expected, peers, reason in runs:
            done = witness_node(nodes[name], url, nodes[name].parent / "ca.pem")
            assert done.returncode == 0, done.stderr
            report = json.loads(done.stdout)
            assert report["cosigned"] is True and report["head"]["size"] == expected
            assert [(p["witness"], p["size"], p["outcome"]) for p in report["peers"]] == [
                (peer, at, "agree") for peer, at in peers
            ]
            assert all(reason in p["reason"] for p in report["peers"])
            if name == "alpha" and expected == size:
                add_member(consortium, "gamma", "university")
        assert report["reason"] == f"consistent: {size} -> {size + 1}"  # its own proof
        with urllib.request.urlopen(f"{url}/witness/cosigned", context=trusting) as response:
            listed = json.loads(response.read())
        with urllib.request.urlopen(f"{url}/ledger/head", context=trusting) as response:
            head = json.loads(response.read())
    finally:
        stop(server)
    assert [c["witness"] for c in listed] == ["alpha", "beta"]
    assert all(c["head"] == head for c in listed)
    for name in ("alpha", "beta"):
        assert evidence(nodes[name]) == []
        assert (
            TreeHead.from_json((nodes[name] / "witness.json").read_text()).document()
            == (head["head"])
        )
        peers = json.loads((nodes[name] / "witness-peers.json").read_text())["peers"]
        other = "beta" if name == "alpha" else "alpha"
        assert peers[other]["public_key"] == NodeHome(nodes[other]).public_key()


def _head(url: str, context: ssl.SSLContext) -> str:
    with urllib.request.urlopen(f"{url}/ledger/head", context=context) as response:
        return response.read().decode()


def test_a_node_witnessing_every_few_seconds_stops_on_sigterm(world: dict, hostile) -> None:
    url = hostile({"alpha": 6, "beta": 6})
    alpha = world["homes"]["alpha"]
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "kumiai", "node", "witness", "--home", str(alpha)),
            *("--coordinator", url, "--ca", str(alpha.parent / "ca.pem"), "--every", "1"),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        rounds = []
        while len(rounds) < 2:  # two rounds, one JSON document each
            ready, _, _ = select.select([process.stdout], [], [], 30)
            assert ready, "no round within 30 s"
            rounds.append(json.loads(process.stdout.readline()))
    finally:
        stop(process)
    assert [r["exit_code"] for r in rounds] == [0, 0]
    assert [r["reason"] for r in rounds] == ["first head seen: size 6", "consistent: 6 -> 6"]
    assert process.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in process.stderr.read()
