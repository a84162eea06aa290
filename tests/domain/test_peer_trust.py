"""Signed masking keys and the rule a node applies to its peers' keys, on a small log built
here: each refusal names why, and only keys the node can trace to the witnessed log pass."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kumiai.domain import keys
from kumiai.domain.errors import InvalidInput
from kumiai.domain.ledger import Entry, TreeHead, sign_entry
from kumiai.domain.masking_key import MaskingKey, SignedMaskingKey, sign_masking_key, signed_by
from kumiai.domain.merkle import MerkleTree, leaf_hash
from kumiai.domain.peer_trust import (
    Identities,
    LoggedEntry,
    PeerVerdict,
    check_peer_keys,
    identities,
    with_pins,
)
from kumiai.domain.secure_sum import public_key_b64

T = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
JOB = "job-2"
SITES = ("a-heart", "b-heart", "c-heart")
MEMBERS = {"a-heart": "a", "b-heart": "b", "c-heart": "c"}


class Log:
    """A tiny ledger: the members join, register a dataset each; proofs under its head."""

    def __init__(self) -> None:
        self.member_keys = {m: Ed25519PrivateKey.generate() for m in MEMBERS.values()}
        self.leaves: list[str] = []
        for member, key in self.member_keys.items():
            public = keys.public_key_b64(key)
            self.add(member, "member.joined", {"member": member, "public_key": public}, key)
        for dataset, member in MEMBERS.items():
            payload = {"dataset": dataset, "member": member}
            self.add(member, "dataset.registered", payload, self.member_keys[member])

    def add(self, actor: str, kind: str, payload: dict[str, Any], key: Ed25519PrivateKey) -> int:
        seq = len(self.leaves)
        entry = Entry(seq, T, actor, kind, payload)
        self.leaves.append(sign_entry(entry, key).leaf_bytes().decode())
        return seq

    def head(self) -> TreeHead:
        tree = self.tree()
        return TreeHead(tree.size, tree.root().hex(), T)

    def tree(self) -> MerkleTree:
        return MerkleTree(leaf_hash(leaf.encode()) for leaf in self.leaves)

    def evidence(self) -> list[LoggedEntry]:
        tree = self.tree()
        return [
            LoggedEntry(seq, leaf, tuple(p.hex() for p in tree.inclusion_proof(seq, tree.size)))
            for seq, leaf in enumerate(self.leaves)
        ]


@pytest.fixture
def log() -> Log:
    return Log()


def _signed(log: Log, dataset: str, *, job: str = JOB, by: str | None = None) -> SignedMaskingKey:
    member = MEMBERS[dataset]
    masking = public_key_b64(X25519PrivateKey.generate())
    statement = MaskingKey(job=job, dataset=dataset, member=member, masking_key=masking)
    return sign_masking_key(statement, log.member_keys[by or member])


def _check(log: Log, peers: dict[str, SignedMaskingKey], **kw: Any) -> PeerVerdict:
    args: dict[str, Any] = {
        "job": JOB,
        "job_datasets": SITES,
        "own_dataset": "a-heart",
        "own_masking_key": peers["a-heart"].statement.masking_key if "a-heart" in peers else "",
        "peers": peers,
        "head": log.head(),
        "evidence": log.evidence(),
    }
    return check_peer_keys(**{**args, **kw})


def test_a_signed_masking_key_verifies_only_unchanged_and_only_by_its_signer(log: Log) -> None:
    signed = _signed(log, "b-heart")
    b, c = (keys.public_key_b64(log.member_keys[m]) for m in ("b", "c"))
    assert signed_by(signed, (c, b)) and not signed_by(signed, (c,))
    again = SignedMaskingKey.from_json(signed.to_json())
    assert again == signed and signed_by(again, (b,))
    for field in ("job", "dataset", "member"):
        moved = MaskingKey(**{**vars(signed.statement), field: "other"})
        assert not signed_by(SignedMaskingKey(moved, signed.signature), (b,))
    with pytest.raises(InvalidInput, match="a signed masking key is malformed"):
        SignedMaskingKey.from_json(signed.to_json().replace('"job"', '"jab"'))


def test_peers_keys_signed_by_their_logged_owners_pass(log: Log) -> None:
    peers = {d: _signed(log, d) for d in SITES}
    verdict = _check(log, peers)
    assert verdict.allowed, verdict.reason
    assert verdict.masking_keys == {d: peers[d].statement.masking_key for d in SITES}


def test_a_rotated_key_counts_only_when_the_previous_key_signed_the_rotation(log: Log) -> None:
    old, new = log.member_keys["b"], Ed25519PrivateKey.generate()
    rotation = {
        "member": "b",
        "public_key": keys.public_key_b64(new),
        "previous_key": keys.public_key_b64(old),
    }
    forged = {**rotation, "public_key": keys.public_key_b64(Ed25519PrivateKey.generate())}
    log.add("b", "member.key-rotated", forged, log.member_keys["c"])  # not b's signature
    log.add("b", "member.key-rotated", rotation, old)
    found = identities(log.head(), log.evidence())
    assert found.keys["b"] == (keys.public_key_b64(old), keys.public_key_b64(new))
    assert found.owners == MEMBERS
    log.member_keys["b"] = new
    peers = {d: _signed(log, d) for d in SITES}
    assert _check(log, peers).allowed


def test_a_second_owner_for_a_dataset_is_refused_not_resolved(log: Log) -> None:
    log.add("c", "dataset.registered", {"dataset": "b-heart", "member": "c"}, log.member_keys["c"])
    verdict = _check(log, {d: _signed(log, d) for d in SITES})
    assert not verdict.allowed and verdict.masking_keys == {}
    assert verdict.reason == "the log says both 'b' and 'c' registered 'b-heart'"


def test_a_registration_not_signed_by_its_member_proves_nothing(log: Log) -> None:
    """The coordinator writes 'd-heart belongs to b' itself: b never signed it."""
    intruder = Ed25519PrivateKey.generate()
    log.add("b", "dataset.registered", {"dataset": "d-heart", "member": "b"}, intruder)
    assert "d-heart" not in identities(log.head(), log.evidence()).owners


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("unsigned", "the masking key for 'b-heart' is not signed by 'b', the member that owns it"),
        ("another member", "the masking key for 'b-heart' is not signed by 'b'"),
        ("another job", "the masking key for 'b-heart' was signed for job job-1 and dataset"),
        ("another dataset", "was signed for job job-2 and dataset 'c-heart', not this job"),
        ("unknown owner", "this node cannot verify who owns 'b-heart'"),
        ("a member it cannot verify", "this node cannot verify who owns 'b-heart'"),
        ("bad proof", "the inclusion proof of ledger entry 1 does not verify against the tree"),
        ("tampered leaf", "the inclusion proof of ledger entry 1 does not verify against the"),
        ("dropped peer", "a secure sum masks for exactly the sites the signed job document names"),
        ("added peer", "a secure sum masks for exactly the sites the signed job document names"),
        ("own key swapped", "the masking key sent for this node's own site is not its own"),
        ("no head", "this node has witnessed no tree head"),
    ],
)
def test_every_untraceable_peer_key_is_refused_with_its_reason(
    log: Log, attack: str, reason: str
) -> None:
    peers = {d: _signed(log, d) for d in SITES}
    own = peers["a-heart"].statement.masking_key
    evidence, head = log.evidence(), log.head()
    b = peers["b-heart"]
    if attack == "unsigned":
        peers["b-heart"] = SignedMaskingKey(b.statement, "")
    elif attack == "another member":
        peers["b-heart"] = _signed(log, "b-heart", by="c")
    elif attack == "another job":
        peers["b-heart"] = _signed(log, "b-heart", job="job-1")
    elif attack == "another dataset":
        peers["b-heart"] = peers["c-heart"]
    elif attack == "unknown owner":  # the registration is not among the proven entries
        evidence = [e for e in evidence if "b-heart" not in e.leaf]
    elif attack == "a member it cannot verify":  # b's joining is not among them
        evidence = [e for e in evidence if '"kind":"member.joined"' not in e.leaf or e.seq != 1]
    elif attack == "bad proof":
        first = evidence[1]
        evidence[1] = LoggedEntry(first.seq, first.leaf, ("00" * 32, *first.path[1:]))
    elif attack == "tampered leaf":  # b's joining key replaced by the coordinator's
        first = evidence[1]
        forged = keys.public_key_b64(Ed25519PrivateKey.generate())
        leaf = first.leaf.replace(keys.public_key_b64(log.member_keys["b"]), forged)
        evidence[1] = LoggedEntry(first.seq, leaf, first.path)
    elif attack == "dropped peer":
        del peers["c-heart"]
    elif attack == "added peer":
        peers["d-heart"] = peers["c-heart"]
    elif attack == "own key swapped":
        own = public_key_b64(X25519PrivateKey.generate())
    elif attack == "no head":
        head = None  # type: ignore[assignment]
    verdict = _check(log, peers, own_masking_key=own, evidence=evidence, head=head)
    assert not verdict.allowed and verdict.masking_keys == {}
    assert reason in verdict.reason


def test_a_proof_for_an_entry_beyond_the_witnessed_head_is_refused(log: Log) -> None:
    """A member that joined after the node's last head cannot be verified yet."""
    witnessed = log.head()
    late = Ed25519PrivateKey.generate()
    log.add("d", "member.joined", {"member": "d", "public_key": keys.public_key_b64(late)}, late)
    verdict = _check(log, {d: _signed(log, d) for d in SITES}, head=witnessed)
    assert not verdict.allowed
    assert "inclusion proof of ledger entry 0 does not verify" in verdict.reason


def test_what_a_node_verified_once_is_pinned_and_a_contradiction_is_refused(log: Log) -> None:
    """The coordinator later writes an impostor into the log ('e' joins, signs a
    registration of b-heart) and leaves b's real entries out of the evidence."""
    peers = {d: _signed(log, d) for d in SITES}
    first = _check(log, peers)
    assert first.allowed
    pins = Identities.from_document(json.loads(json.dumps(first.identities.document())))
    assert pins == first.identities and pins.owners == MEMBERS
    impostor = Ed25519PrivateKey.generate()
    log.member_keys["e"] = impostor
    log.add(
        "e", "member.joined", {"member": "e", "public_key": keys.public_key_b64(impostor)}, impostor
    )
    log.add("e", "dataset.registered", {"dataset": "b-heart", "member": "e"}, impostor)
    real_b = {1, 4}  # b's joining and b's registration
    evidence = [e for e in log.evidence() if e.seq not in real_b]
    forged = MaskingKey(JOB, "b-heart", "e", public_key_b64(X25519PrivateKey.generate()))
    peers["b-heart"] = sign_masking_key(forged, impostor)
    assert _check(log, peers, evidence=evidence).allowed  # without pins, the lie passes
    verdict = _check(log, peers, evidence=evidence, pinned=pins)
    assert not verdict.allowed
    assert verdict.reason == (
        "this node verified earlier that 'b-heart' belongs to 'b', but the evidence says 'e'"
    )
    # a peer verified before needs no proof again; a rotation adds to the pinned keys
    honest = {d: _signed(log, d) for d in SITES}
    assert _check(log, honest, evidence=[], pinned=pins).allowed
    with pytest.raises(InvalidInput, match="another joining key for member 'b'"):
        with_pins(pins, Identities({"b": ("other",)}, {}))
    rotated = with_pins(pins, Identities({"b": (*pins.keys["b"], "new")}, {}))
    assert rotated.keys["b"] == (*pins.keys["b"], "new")
