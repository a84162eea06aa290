"""The witnesses' comparison: one log, or a coordinator that showed two (domain.split_view)."""

from datetime import UTC, datetime, timedelta

import pytest

from kumiai.domain import keys
from kumiai.domain.ledger import TreeHead, cosign, sign_head
from kumiai.domain.merkle import MerkleTree, leaf_hash
from kumiai.domain.split_view import Cosigned, Outcome, check_evidence, compare, extends

COORDINATOR = keys.new_private_key()
COORDINATOR_KEY = keys.public_key_b64(COORDINATOR)
BETA = keys.new_private_key()
BETA_KEY = keys.public_key_b64(BETA)
WHEN = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

# One honest history of 9 entries, and a fork that rewrote entry 5 and went on to 8.
HONEST = MerkleTree(leaf_hash(f"entry {i}".encode()) for i in range(9))
FORK = MerkleTree(leaf_hash(f"entry {i}".encode() if i != 5 else b"rewritten") for i in range(8))


def head(tree: MerkleTree, size: int, key: object = COORDINATOR) -> TreeHead:
    return sign_head(TreeHead(size, tree.root(size).hex(), WHEN), key)  # type: ignore[arg-type]


def beta(signed: TreeHead, key: object = BETA) -> Cosigned:
    return Cosigned("beta", signed, cosign(signed, "beta", key))  # type: ignore[arg-type]


def check(own: TreeHead, other: Cosigned, proof: list[bytes] | None, seen: TreeHead | None = None):
    return compare(
        own, other, proof, coordinator_key=COORDINATOR_KEY, witness_key=BETA_KEY, seen=seen
    )


def test_equal_heads_agree_without_a_proof() -> None:
    verdict = check(head(HONEST, 7), beta(head(HONEST, 7)), None)
    assert verdict.outcome is Outcome.AGREE
    assert verdict.reason.startswith("beta's head against this node's: the same head (size 7")


@pytest.mark.parametrize(("own", "other"), [(5, 9), (9, 5), (1, 8)])
def test_heads_of_one_log_agree_with_a_consistency_proof(own: int, other: int) -> None:
    proof = HONEST.consistency_proof(min(own, other), max(own, other))
    verdict = check(head(HONEST, own), beta(head(HONEST, other)), proof)
    assert verdict.outcome is Outcome.AGREE
    assert verdict.reason.endswith(f"consistent, {min(own, other)} -> {max(own, other)}")


def test_a_fork_at_equal_size_is_a_split_view_with_no_proof_needed() -> None:
    verdict = check(head(HONEST, 7), beta(head(FORK, 7)), None)
    assert verdict.outcome is Outcome.SPLIT_VIEW
    assert "two different logs of 7 entries, both signed by the coordinator" in verdict.reason


def test_a_fork_at_different_sizes_fails_every_proof_the_coordinator_can_give() -> None:
    own, other = head(HONEST, 7), beta(head(FORK, 8))
    for proof in (FORK.consistency_proof(7, 8), HONEST.consistency_proof(7, 8), []):
        verdict = check(own, other, proof)
        assert verdict.outcome is Outcome.SPLIT_VIEW
        assert "the log of 8 entries" in verdict.reason
        assert "does not extend the log of 7" in verdict.reason
    # Entries before the fork are shared: a head of 5 still agrees with both.
    assert check(head(HONEST, 5), other, FORK.consistency_proof(5, 8)).outcome is Outcome.AGREE


def test_a_coordinator_that_will_not_prove_consistency_is_a_split_view() -> None:
    verdict = check(head(HONEST, 6), beta(head(HONEST, 9)), None)
    assert verdict.outcome is Outcome.SPLIT_VIEW
    assert "would not prove that its log of 9 entries extends its log of 6" in verdict.reason


def test_a_bad_cosignature_proves_nothing_and_is_flagged() -> None:
    forged = beta(head(FORK, 7), key=keys.new_private_key())  # not beta's key
    verdict = check(head(HONEST, 7), forged, None)
    assert verdict.outcome is Outcome.UNTRUSTED
    assert "beta's cosignature on size 7" in verdict.reason
    assert f"({keys.fingerprint(BETA_KEY)}): forged or altered in transit" in verdict.reason
    # A cosignature moved onto another head fails too.
    moved = Cosigned("beta", head(FORK, 7), beta(head(HONEST, 7)).signature)
    assert check(head(HONEST, 7), moved, None).outcome is Outcome.UNTRUSTED


def test_a_head_not_signed_by_the_coordinator_is_no_evidence() -> None:
    unsigned = beta(head(FORK, 7, key=keys.new_private_key()))
    verdict = check(head(HONEST, 7), unsigned, None)
    assert verdict.outcome is Outcome.UNTRUSTED
    assert "is not signed by the pinned coordinator key" in verdict.reason


def test_a_replay_of_an_old_head_of_another_witness_is_flagged() -> None:
    old = beta(head(HONEST, 4))
    verdict = check(head(HONEST, 9), old, HONEST.consistency_proof(4, 9), seen=head(HONEST, 8))
    assert verdict.outcome is Outcome.UNTRUSTED
    assert verdict.reason.startswith(
        "replay: beta already cosigned a log of 8 entries, but the coordinator now shows its "
        "older head of 4"
    )
    # The same head again is no news, and agrees.
    again = check(
        head(HONEST, 9), beta(head(HONEST, 8)), HONEST.consistency_proof(8, 9), seen=head(HONEST, 8)
    )
    assert again.outcome is Outcome.AGREE


def test_a_witness_seen_cosigning_two_heads_of_one_size_is_a_split_view() -> None:
    verdict = check(head(FORK, 7), beta(head(FORK, 7)), None, seen=head(HONEST, 7))
    assert verdict.outcome is Outcome.SPLIT_VIEW
    assert verdict.reason.startswith("beta's own cosignatures: two different logs of 7 entries")


def test_own_history_rollback_to_a_smaller_tree_is_a_split_view() -> None:
    verdict = extends(head(HONEST, 8), head(HONEST, 5), None, COORDINATOR_KEY)
    assert verdict.outcome is Outcome.SPLIT_VIEW
    assert verdict.reason == (
        "rollback: the coordinator now shows a log of 5 entries, but this node already witnessed 8"
    )


def test_own_history_extends_forks_or_is_unsigned() -> None:
    last = head(HONEST, 5)
    grown = extends(last, head(HONEST, 9), HONEST.consistency_proof(5, 9), COORDINATOR_KEY)
    assert grown.outcome is Outcome.AGREE
    forked = extends(last, head(FORK, 8), FORK.consistency_proof(5, 8), COORDINATOR_KEY)
    assert forked.outcome is Outcome.AGREE  # the fork is after entry 5: nothing to see yet
    rewritten = extends(
        head(HONEST, 6), head(FORK, 8), FORK.consistency_proof(6, 8), COORDINATOR_KEY
    )
    assert rewritten.outcome is Outcome.SPLIT_VIEW
    assert rewritten.reason.startswith("this node's own history: the log of 8 entries")
    refused = extends(last, head(HONEST, 9), None, COORDINATOR_KEY)
    assert refused.outcome is Outcome.SPLIT_VIEW and "would not prove" in refused.reason
    stranger = extends(
        last, head(HONEST, 9, key=BETA), HONEST.consistency_proof(5, 9), COORDINATOR_KEY
    )
    assert stranger.outcome is Outcome.UNTRUSTED
    assert "not signed by the coordinator key this node pinned" in stranger.reason


def test_evidence_of_a_fork_at_one_size_proves_itself() -> None:
    verdict = check_evidence([head(HONEST, 7), head(FORK, 7)], None, COORDINATOR_KEY)
    assert verdict.outcome is Outcome.SPLIT_VIEW
    assert "two different logs of 7 entries" in verdict.reason


def test_evidence_of_a_rollback_proves_itself_by_the_signed_times() -> None:
    older = head(HONEST, 8)
    later = sign_head(TreeHead(5, HONEST.root(5).hex(), WHEN + timedelta(minutes=1)), COORDINATOR)
    verdict = check_evidence([older, later], None, COORDINATOR_KEY)
    assert verdict.outcome is Outcome.SPLIT_VIEW
    assert verdict.reason == "rollback: a head of 5 entries signed after a head of 8"


def test_evidence_at_different_sizes_needs_a_proof_the_log_cannot_give() -> None:
    pair = [head(HONEST, 6), head(FORK, 8)]
    without = check_evidence(pair, FORK.consistency_proof(6, 8), COORDINATOR_KEY)
    assert without.outcome is Outcome.UNTRUSTED
    assert "ask for a consistency proof between sizes 6 and 8" in without.reason
    # Evidence that is no evidence: the proof in the file shows one log.
    honest_pair = [head(HONEST, 6), head(HONEST, 8)]
    assert check_evidence(honest_pair, HONEST.consistency_proof(6, 8), COORDINATOR_KEY).outcome is (
        Outcome.AGREE
    )


def test_evidence_with_a_head_the_coordinator_did_not_sign_proves_nothing() -> None:
    pair = [head(HONEST, 7), head(FORK, 7, key=BETA)]
    verdict = check_evidence(pair, None, COORDINATOR_KEY)
    assert verdict.outcome is Outcome.UNTRUSTED and "is not signed by that key" in verdict.reason
    assert check_evidence(pair[:1], None, COORDINATOR_KEY).outcome is Outcome.UNTRUSTED
