"""A witness follows another witness's key rotation only along entries it can check: proven
in the head it checked, signed by the key it holds, ending at the listed key."""

from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.domain import keys
from kumiai.domain.ledger import Entry, TreeHead, sign_entry
from kumiai.domain.merkle import MerkleTree, leaf_hash
from kumiai.domain.peer_trust import LoggedEntry
from kumiai.domain.witness_rotation import Link, follow, key_at

T = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
K1, K2, K3 = (Ed25519PrivateKey.generate() for _ in range(3))
P1, P2, P3 = (keys.public_key_b64(k) for k in (K1, K2, K3))


class Log:
    def __init__(self) -> None:
        self.leaves: list[str] = []
        self.add("st-mary", "member.joined", {"member": "st-mary", "public_key": P1}, K1)

    def add(self, actor: str, kind: str, payload: dict[str, Any], key: Any) -> int:
        seq = len(self.leaves)
        self.leaves.append(
            sign_entry(Entry(seq, T, actor, kind, payload), key).leaf_bytes().decode()
        )
        return seq

    def rotate(self, old: str, new: str, key: Any, member: str = "st-mary") -> int:
        payload = {"member": member, "public_key": new, "previous_key": old}
        return self.add(member, "member.key-rotated", payload, key)

    def head(self, size: int | None = None) -> TreeHead:
        tree = MerkleTree(leaf_hash(leaf.encode()) for leaf in self.leaves)
        size = tree.size if size is None else size
        return TreeHead(size, tree.root(size).hex(), T)

    def proven(self, *seqs: int, size: int | None = None) -> list[LoggedEntry]:
        tree = MerkleTree(leaf_hash(leaf.encode()) for leaf in self.leaves)
        size = tree.size if size is None else size
        return [
            LoggedEntry(s, self.leaves[s], tuple(p.hex() for p in tree.inclusion_proof(s, size)))
            for s in seqs
        ]


def test_one_rotation_signed_by_the_pinned_key_is_followed() -> None:
    log = Log()
    seq = log.rotate(P1, P2, K1)
    log.add("kita", "ledger.note", {"text": "later"}, K3)
    found = follow("st-mary", P1, P2, log.head(), log.proven(seq))
    assert found.accepted, found.reason
    assert found.chain == (Link(P1, 2), Link(P2))
    assert "1 time(s)" in found.reason


def test_two_rotations_are_followed_in_log_order_whatever_order_they_come_in() -> None:
    log = Log()
    first, second = log.rotate(P1, P2, K1), log.rotate(P2, P3, K2)
    found = follow("st-mary", P1, P3, log.head(), log.proven(second, first))
    assert found.accepted and found.chain == (Link(P1, 2), Link(P2, 3), Link(P3))
    assert [key_at(found.chain, n) for n in (1, 2, 3, 4)] == [P1, P2, P3, P3]
    only_second = follow("st-mary", P1, P3, log.head(), log.proven(second))
    assert not only_second.accepted  # K2 -> K3 alone does not start at the pinned key


def test_a_new_key_with_no_rotation_entry_is_refused() -> None:
    log = Log()
    found = follow("st-mary", P1, P2, log.head(), [])
    assert not found.accepted and found.chain == ()
    assert found.reason == (
        f"st-mary's key changed: this node keeps {keys.fingerprint(P1)}, the coordinator now "
        f"lists {keys.fingerprint(P2)}, and no member.key-rotated entry signed by the key "
        "this node keeps leads there in the log of 1 entries it checked"
    )


def test_a_rotation_signed_by_another_key_is_no_link() -> None:
    log = Log()
    forged = log.rotate(P1, P2, K2)  # the new key vouching for itself
    assert not follow("st-mary", P1, P2, log.head(), log.proven(forged)).accepted
    other = log.rotate(P1, P3, K1, member="kita")  # another member's entry naming st-mary's key
    assert not follow("st-mary", P1, P3, log.head(), log.proven(other)).accepted


def test_a_rotation_listing_another_key_than_the_log_is_refused() -> None:
    log = Log()
    seq = log.rotate(P1, P2, K1)
    assert not follow("st-mary", P1, P3, log.head(), log.proven(seq)).accepted


def test_a_proof_against_a_head_this_node_did_not_check_is_refused() -> None:
    log = Log()
    seq = log.rotate(P1, P2, K1)
    log.add("kita", "ledger.note", {"text": "later"}, K3)
    checked = log.head(2)  # the node checked the log of 2; the proof is for the log of 3
    found = follow("st-mary", P1, P2, checked, log.proven(seq))
    assert not found.accepted
    assert found.reason.startswith(
        "st-mary's rotation evidence: the inclusion proof of ledger entry 1 does not verify"
    )
    assert follow("st-mary", P1, P2, checked, log.proven(seq, size=2)).accepted
    beyond = follow("st-mary", P1, P2, log.head(1), log.proven(seq, size=2))
    assert not beyond.accepted  # an entry after the checked head is not in it


def test_a_rotation_back_to_an_old_key_is_refused() -> None:
    log = Log()
    log.rotate(P1, P2, K1)
    back = log.rotate(P2, P1, K2)
    found = follow("st-mary", P1, P1, log.head(), log.proven(1, back))
    assert not found.accepted
    assert found.reason.startswith(
        f"ledger entry 2 rotates st-mary's key back to {keys.fingerprint(P1)}, a key it held"
    )
    # also a key kept on record from an earlier rotation this node followed
    log2 = Log()
    again = log2.rotate(P1, P3, K1)
    assert not follow("st-mary", P1, P3, log2.head(), log2.proven(again), retired=[P3]).accepted
