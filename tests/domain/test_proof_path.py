"""The inclusion path shown step by step ends at the root exactly when the proof verifies."""

from kumiai.domain import merkle
from kumiai.domain.proof_path import Step, inclusion_steps


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"entry {i}".encode()) for i in range(n)]


def test_every_walk_ends_at_the_root_of_its_tree() -> None:
    for size in range(1, 34):
        leaves = _leaves(size)
        tree = merkle.MerkleTree(leaves)
        root = merkle.root_from_leaves(leaves)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            steps = inclusion_steps(leaves[index], index, size, proof)
            assert steps is not None and len(steps) == len(proof)
            end = steps[-1].result if steps else leaves[index]
            assert end == root, (size, index)
            assert [s.sibling for s in steps] == proof


def test_the_sides_of_a_small_tree_by_hand() -> None:
    a, b, c = _leaves(3)
    ab = merkle.node_hash(a, b)
    # Leaf 1 of three: its sibling a on the left, then c on the right.
    assert inclusion_steps(b, 1, 3, [a, c]) == [
        Step(a, "left", ab),
        Step(c, "right", merkle.node_hash(ab, c)),
    ]
    # Leaf 2 of three: the lone last leaf, its sibling the left subtree.
    assert inclusion_steps(c, 2, 3, [ab]) == [Step(ab, "left", merkle.node_hash(ab, c))]


def test_a_forged_step_leads_elsewhere_and_a_wrong_length_is_refused() -> None:
    leaves = _leaves(7)
    tree = merkle.MerkleTree(leaves)
    root = merkle.root_from_leaves(leaves)
    proof = tree.inclusion_proof(4, 7)
    forged = [proof[0][::-1], *proof[1:]]
    steps = inclusion_steps(leaves[4], 4, 7, forged)
    assert steps is not None and steps[-1].result != root
    assert inclusion_steps(leaves[4], 4, 7, proof[:-1]) is None
    assert inclusion_steps(leaves[4], 4, 7, [*proof, proof[0]]) is None
    assert inclusion_steps(leaves[4], 7, 7, proof) is None
