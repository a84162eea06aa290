"""Comparing two heads of one log: the same history, or a coordinator that showed two.

A coordinator can sign any head it likes, so it can show witness A one history and witness B
another. What it cannot do is make the two consistent: two heads of the same size with
different roots, or a smaller head that no consistency proof (RFC 9162) takes to the larger
one, are two signed statements that cannot both be true. Each witness therefore compares the
head it cosigned with the heads the other witnesses cosigned, and keeps the pair as evidence
when they disagree. Anyone can check that evidence later with the coordinator's public key.
"""

from dataclasses import dataclass
from enum import StrEnum

from kumiai.domain import keys, merkle
from kumiai.domain.ledger import TreeHead, cosignature_valid, head_signature_valid


class Outcome(StrEnum):
    AGREE = "agree"  # one history: equal heads, or a proof that one extends the other
    SPLIT_VIEW = "split-view"  # two signed heads that cannot both be true: evidence
    UNTRUSTED = "untrusted"  # proves nothing either way, but someone is misbehaving


@dataclass(frozen=True)
class Comparison:
    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class Cosigned:
    """A head as one witness cosigned it: the coordinator's signed head and the witness's."""

    witness: str
    head: TreeHead
    signature: str


def _short(head: TreeHead) -> str:
    return f"size {head.size}, root {head.root[:16]}…"


def _consistent(a: TreeHead, b: TreeHead, proof: list[bytes] | None, what: str) -> Comparison:
    """Both heads are signed; decide whether they belong to one log."""
    if a.size == b.size:
        if a.root == b.root:
            return Comparison(Outcome.AGREE, f"{what}: the same head ({_short(a)})")
        return Comparison(
            Outcome.SPLIT_VIEW,
            f"{what}: two different logs of {a.size} entries, both signed by the coordinator "
            f"(roots {a.root[:16]}… and {b.root[:16]}…)",
        )
    small, large = (a, b) if a.size < b.size else (b, a)
    if proof is None:
        return Comparison(
            Outcome.SPLIT_VIEW,
            f"{what}: the coordinator would not prove that its log of {large.size} entries "
            f"extends its log of {small.size}",
        )
    if not merkle.verify_consistency(
        small.size, large.size, bytes.fromhex(small.root), bytes.fromhex(large.root), proof
    ):
        return Comparison(
            Outcome.SPLIT_VIEW,
            f"{what}: the log of {large.size} entries ({large.root[:16]}…) does not extend the "
            f"log of {small.size} ({small.root[:16]}…): the consistency proof fails",
        )
    return Comparison(Outcome.AGREE, f"{what}: consistent, {small.size} -> {large.size}")


def extends(
    last: TreeHead, new: TreeHead, proof: list[bytes] | None, coordinator_key: str
) -> Comparison:
    """Classify a new head shown to this witness against the last one it witnessed.

    Never smaller (a signed head of fewer entries after a larger one is a rollback), and
    consistent. `proof` goes from `last` to `new`; None when the coordinator gave none.
    """
    if not head_signature_valid(new, coordinator_key):
        return Comparison(
            Outcome.UNTRUSTED,
            f"the head shown ({_short(new)}) is not signed by the coordinator key this node pinned",
        )
    if new.size < last.size:
        return Comparison(
            Outcome.SPLIT_VIEW,
            f"rollback: the coordinator now shows a log of {new.size} entries, but this node "
            f"already witnessed {last.size}",
        )
    return _consistent(last, new, proof, "this node's own history")


def compare(
    own: TreeHead,
    other: Cosigned,
    proof: list[bytes] | None,
    *,
    coordinator_key: str,
    witness_key: str,
    seen: TreeHead | None = None,
) -> Comparison:
    """Does the head `other.witness` cosigned belong to the same log as this node's own?

    `witness_key` is the key this node holds for that witness (not the coordinator's word);
    `seen` the latest head this node saw that witness cosign before; `proof` a consistency
    proof from the smaller of the two heads to the larger (None: the coordinator gave none).
    """
    name = other.witness
    if not cosignature_valid(other.head, name, other.signature, witness_key):
        return Comparison(
            Outcome.UNTRUSTED,
            f"{name}'s cosignature on {_short(other.head)} does not verify with the key this "
            f"node holds for {name} ({keys.fingerprint(witness_key)}): forged or altered in "
            "transit",
        )
    if not head_signature_valid(other.head, coordinator_key):
        return Comparison(
            Outcome.UNTRUSTED,
            f"the head {name} cosigned ({_short(other.head)}) is not signed by the pinned "
            "coordinator key",
        )
    if seen is not None:
        if other.head.size < seen.size:
            return Comparison(
                Outcome.UNTRUSTED,
                f"replay: {name} already cosigned a log of {seen.size} entries, but the "
                f"coordinator now shows its older head of {other.head.size}, hiding what "
                f"{name} saw since",
            )
        if other.head.size == seen.size and other.head.root != seen.root:
            return _consistent(seen, other.head, None, f"{name}'s own cosignatures")
    return _consistent(own, other.head, proof, f"{name}'s head against this node's")


def check_evidence(
    heads: list[TreeHead], proof: list[bytes] | None, coordinator_key: str
) -> Comparison:
    """What a split-view evidence file proves to someone holding the coordinator's key.

    Two signed heads of one size with different roots prove a fork alone, as does a smaller
    head signed later than a larger one (a rollback). Otherwise the heads are checked with
    the file's proof; a failed or missing proof proves nothing alone, since the log could
    still hold both: ask the coordinator (or an export) for a proof between the two sizes
    and check again with it.
    """
    if len(heads) != 2:
        return Comparison(Outcome.UNTRUSTED, f"evidence holds {len(heads)} heads, not 2")
    for head in heads:
        if not head_signature_valid(head, coordinator_key):
            return Comparison(
                Outcome.UNTRUSTED, f"the head of {_short(head)} is not signed by that key"
            )
    first, second = sorted(heads, key=lambda h: (h.time, h.size))
    if first.time < second.time and second.size < first.size:
        return Comparison(
            Outcome.SPLIT_VIEW,
            f"rollback: a head of {second.size} entries signed after a head of {first.size}",
        )
    verdict = _consistent(heads[0], heads[1], proof, "evidence")
    if verdict.outcome is Outcome.SPLIT_VIEW and heads[0].size != heads[1].size:
        return Comparison(
            Outcome.UNTRUSTED,
            f"{verdict.reason}; ask for a consistency proof between sizes "
            f"{min(heads[0].size, heads[1].size)} and {max(heads[0].size, heads[1].size)} "
            "and check again: no valid proof exists if the log forked",
        )
    return verdict
