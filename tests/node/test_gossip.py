"""One witness round at the node (kumiai.node.gossip), against a scripted coordinator: the
node's own history (rollback, fork, refused proof, unsigned head) and what it keeps of the
other witnesses (a changed key, a withheld or replayed head, a forged cosignature).
"""

import json
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from kumiai.adapters.coordinator_client import CoordinatorClient
from kumiai.adapters.tls import create_authority
from kumiai.domain import keys
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import StateError
from kumiai.domain.ledger import (
    TreeHead,
    cosign,
    cosignature_valid,
    head_signature_valid,
    sign_head,
)
from kumiai.domain.merkle import MerkleTree, leaf_hash
from kumiai.domain.request_auth import HttpRequest, read_claim, verify_request
from kumiai.interfaces.cli.main import app as cli
from kumiai.node.gossip import (
    EXIT_SPLIT_VIEW,
    EXIT_UNTRUSTED,
    RoundReport,
    WitnessChannel,
    witness_round,
)
from kumiai.node.home import NodeHome

COORDINATOR = keys.new_private_key()
BETA = keys.new_private_key()
WHEN = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
HONEST = MerkleTree(leaf_hash(f"entry {i}".encode()) for i in range(10))
FORK = MerkleTree(leaf_hash(f"entry {i}".encode() if i != 3 else b"forged") for i in range(10))


def head(tree: MerkleTree, size: int, key: Any = COORDINATOR) -> TreeHead:
    return sign_head(TreeHead(size, tree.root(size).hex(), WHEN), key)


def listed(witness: str, signed: TreeHead, key: Any = BETA, public: Any = BETA) -> dict:
    return {
        "witness": witness,
        "head": {"head": signed.document(), "signature": signed.signature},
        "signature": cosign(signed, witness, key),
        "public_key": keys.public_key_b64(public),
    }


@dataclass
class Scripted:
    """Shows `head`, proves from `tree` (or refuses), lists `others`; records what it got."""

    tree: MerkleTree
    shown: TreeHead
    others: list[dict] = field(default_factory=list)
    refuse_proofs: bool = False
    published: list[tuple[str, TreeHead]] = field(default_factory=list)
    url: str = "https://coordinator.test"

    def head(self) -> TreeHead:
        return self.shown

    def consistency(self, old: int, new: int) -> tuple[list[bytes] | None, str | None]:
        if self.refuse_proofs:
            return None, "404: no"
        return self.tree.consistency_proof(old, new), None

    def publish(self, witness: str, signed: TreeHead, signature: str) -> None:
        self.published.append((witness, signed))

    def cosigned(self) -> list[dict]:
        mine = [listed(w, h, NODE_KEYS[w], NODE_KEYS[w]) for w, h in self.published[-1:]]
        return mine + self.others


NODE_KEYS: dict[str, Any] = {}


@pytest.fixture()
def alpha(tmp_path: Path) -> NodeHome:
    key = keys.new_private_key()
    NODE_KEYS["alpha"] = key
    node = NodeHome(tmp_path / "alpha")
    node.create("alpha", "hospital", key, keys.public_key_b64(COORDINATOR))
    return node


def evidence(node: NodeHome) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((node.root / "split-views").glob("*"))]


def test_a_first_round_cosigns_publishes_and_remembers(alpha: NodeHome) -> None:
    coordinator = Scripted(HONEST, head(HONEST, 6))
    report = witness_round(alpha, coordinator)  # type: ignore[arg-type]
    assert report.exit_code == 0 and report.cosigned and report.peers == []
    assert coordinator.published == [("alpha", head(HONEST, 6))]
    assert TreeHead.from_json(alpha.witnessed_head() or "") == head(HONEST, 6)


@pytest.mark.parametrize(
    ("shown", "tree", "refuse", "reason"),
    [
        (head(HONEST, 4), HONEST, False, "rollback: the coordinator now shows a log of 4"),
        (head(FORK, 9), FORK, False, "does not extend the log of 6"),
        (head(HONEST, 9), HONEST, True, "would not prove that its log of 9 entries extends"),
        (head(FORK, 6), FORK, False, "two different logs of 6 entries"),
    ],
)
def test_a_coordinator_breaking_this_nodes_own_history_is_caught_with_evidence(
    alpha: NodeHome, shown: TreeHead, tree: MerkleTree, refuse: bool, reason: str
) -> None:
    witness_round(alpha, Scripted(HONEST, head(HONEST, 6)))  # type: ignore[arg-type]
    coordinator = Scripted(tree, shown, refuse_proofs=refuse)
    report = witness_round(alpha, coordinator)  # type: ignore[arg-type]
    assert report.exit_code == EXIT_SPLIT_VIEW and not report.cosigned
    assert report.own is not None and reason in report.own.reason
    assert coordinator.published == []  # nothing cosigned, nothing published
    assert TreeHead.from_json(alpha.witnessed_head() or "") == head(HONEST, 6)
    [found] = evidence(alpha)
    heads = [TreeHead.from_document(h["head"]) for h in found["heads"]]
    assert heads == [head(HONEST, 6), shown]
    assert all(head_signature_valid(h, found["coordinator_key"]) for h in heads)
    assert found["refusal"] == ("404: no" if refuse else None)


def test_a_head_not_signed_by_the_pinned_key_is_untrusted_not_evidence(alpha: NodeHome) -> None:
    coordinator = Scripted(HONEST, head(HONEST, 6, key=keys.new_private_key()))
    report = witness_round(alpha, coordinator)  # type: ignore[arg-type]
    assert report.exit_code == EXIT_UNTRUSTED and coordinator.published == []
    assert evidence(alpha) == [] and alpha.witnessed_head() is None


def round_with(alpha: NodeHome, size: int, others: list[dict]) -> RoundReport:
    coordinator = Scripted(HONEST, head(HONEST, size), others)
    return witness_round(alpha, coordinator)  # type: ignore[arg-type]


def test_the_node_keeps_the_key_it_first_saw_for_a_witness(alpha: NodeHome) -> None:
    assert round_with(alpha, 6, [listed("beta", head(HONEST, 5))]).exit_code == 0
    book = json.loads((alpha.root / "witness-peers.json").read_text())["peers"]
    assert book["beta"]["public_key"] == keys.public_key_b64(BETA)
    impostor = keys.new_private_key()  # the coordinator swaps in a key of its own
    report = round_with(alpha, 7, [listed("beta", head(FORK, 7), impostor, impostor)])
    assert report.exit_code == EXIT_UNTRUSTED
    [peer] = report.peers
    assert peer.comparison.reason.startswith(
        f"beta's key changed: this node keeps {keys.fingerprint(keys.public_key_b64(BETA))}"
    )
    assert evidence(alpha) == []


def test_a_withheld_or_replayed_head_of_another_witness_is_flagged(alpha: NodeHome) -> None:
    assert round_with(alpha, 8, [listed("beta", head(HONEST, 8))]).exit_code == 0
    withheld = round_with(alpha, 8, [])
    assert withheld.exit_code == EXIT_UNTRUSTED
    assert "no longer lists beta's cosigned head" in withheld.peers[0].comparison.reason
    replayed = round_with(alpha, 9, [listed("beta", head(HONEST, 5))])
    assert replayed.exit_code == EXIT_UNTRUSTED
    assert replayed.peers[0].comparison.reason.startswith("replay: beta already cosigned")


def test_a_forged_cosignature_or_a_false_key_for_this_node_is_flagged(alpha: NodeHome) -> None:
    forged = round_with(alpha, 6, [listed("beta", head(FORK, 6), key=keys.new_private_key())])
    assert forged.exit_code == EXIT_UNTRUSTED and evidence(alpha) == []
    assert "beta's cosignature on size 6" in forged.peers[0].comparison.reason
    lie = listed("alpha", head(HONEST, 7), NODE_KEYS["alpha"], keys.new_private_key())
    report = round_with(alpha, 7, [lie])
    assert report.exit_code == EXIT_UNTRUSTED
    assert any("another key for this very node" in p.comparison.reason for p in report.peers)


def test_a_forked_witness_is_a_split_view_with_both_cosigned_heads(alpha: NodeHome) -> None:
    report = round_with(alpha, 7, [listed("beta", head(FORK, 7))])
    assert report.exit_code == EXIT_SPLIT_VIEW
    [found] = evidence(alpha)
    assert [h["witness"] for h in found["heads"]] == ["alpha", "beta"]
    assert [TreeHead.from_document(h["head"]) for h in found["heads"]] == [
        head(HONEST, 7),
        head(FORK, 7),
    ]


def test_a_witness_shown_cosigning_two_heads_of_one_size_is_caught_with_both(
    alpha: NodeHome,
) -> None:
    assert round_with(alpha, 7, [listed("beta", head(HONEST, 7))]).exit_code == 0
    report = round_with(alpha, 8, [listed("beta", head(FORK, 7))])
    assert report.exit_code == EXIT_SPLIT_VIEW
    assert report.peers[0].comparison.reason.startswith("beta's own cosignatures")
    [found] = evidence(alpha)
    assert [h["witness"] for h in found["heads"]] == ["beta", "beta"]
    shown = [TreeHead.from_document(h["head"]) for h in found["heads"]]
    assert shown == [head(HONEST, 7), head(FORK, 7)]
    for signed, item in zip(shown, found["heads"], strict=True):
        assert cosignature_valid(signed, "beta", item["cosignature"], keys.public_key_b64(BETA))


# -- the node's one client: signed requests, refusals kept, failures in one line -----------------


def test_the_witness_asks_through_the_nodes_signed_client(alpha: NodeHome) -> None:
    """Every request is signed with the member's key (RFC 9421); a refused proof is kept as
    the coordinator's words, a refused cosignature stops the round in one line."""
    signed = head(HONEST, 6)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/ledger/head":
            document = {"head": signed.document(), "signature": signed.signature}
            return httpx.Response(200, json=document)
        if request.url.path == "/ledger/consistency":
            return httpx.Response(404, json={"error": "no such tree size"})
        return httpx.Response(409, json={"error": "a stale head"})

    client = CoordinatorClient(
        "https://c.example", key=alpha.private_key(), transport=httpx.MockTransport(answer)
    )
    channel = WitnessChannel(client)
    assert channel.head().document() == signed.document()
    assert channel.consistency(2, 6) == (None, "404: no such tree size")
    with pytest.raises(StateError) as refused:
        channel.publish("alpha", signed, "c2ln")
    assert str(refused.value) == (
        "the coordinator refused this node's cosignature on head 6 (409: a stale head)"
    )
    for request in seen:
        path, _, query = request.url.raw_path.decode().partition("?")
        headers = {k.lower(): v for k, v in request.headers.items()}
        received = HttpRequest(request.method, path, query, request.content, headers)
        verify_request(received, read_claim(headers), alpha.public_key(), utc_now())
    assert "x-kumiai-member" not in {k.lower() for k in seen[0].headers}
    assert [r.url.params.get("old") for r in seen[1:2]] == ["2"]


def witness_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, ["node", "witness", *args, "--once"])


def test_an_unreachable_coordinator_or_an_unreadable_ca_is_one_line(
    alpha: NodeHome, tmp_path: Path
) -> None:
    create_authority(tmp_path / "tls", "consortium", utc_now())
    with socket.socket() as probe:  # a port nobody serves
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = ("--home", str(alpha.root))
    url = f"https://127.0.0.1:{port}"
    away = witness_cli(*home, "--coordinator", url, "--ca", str(tmp_path / "tls" / "ca.pem"))
    assert away.exception.exit_code == 2  # the exit code `kumiai` gives (a user's mistake)
    assert str(away.exception).startswith(f"cannot reach the coordinator at {url}: ")
    assert str(away.exception).endswith("check the address and that it serves")
    (tmp_path / "not-a-ca.pem").write_text("hello")
    garbled = witness_cli(*home, "--coordinator", url, "--ca", str(tmp_path / "not-a-ca.pem"))
    assert garbled.exception.exit_code == 2
    assert str(garbled.exception).startswith(f"{tmp_path / 'not-a-ca.pem'} is not a PEM CA")
    ca = str(tmp_path / "tls" / "ca.pem")
    plain = witness_cli(*home, "--coordinator", "http://127.0.0.1:1", "--ca", ca)
    assert plain.exception.exit_code == 2 and "https://" in str(plain.exception)
    assert not (alpha.root / "witness.json").exists()
