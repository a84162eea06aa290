"""Merkle tree: known CT answers, agreement with the RFC definitions, and forged proofs fail.

Known-answer vectors are the RFC 6962 reference data used across Certificate Transparency
(google/certificate-transparency C++ tests, now transparency-dev/merkle `testonly/constants.go`,
`testonly/reference_test.go` and `proof/verify_test.go`).
"""

import random
from collections.abc import Callable, Sequence

import pytest

from kumiai.domain.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

LEAF_INPUTS = [
    h(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

# Leaf hashes (level 0) and complete-subtree hashes of the 8-leaf tree.
NODES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# ROOTS[n] is the root of the tree of the first n leaves.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# (index, size, audit path), index 0-based.
INCLUSION_VECTORS = [
    (0, 1, []),
    (0, 2, [NODES[0][1]]),
    (1, 2, [NODES[0][0]]),
    (2, 3, [NODES[1][0]]),
    (1, 5, [NODES[0][0], NODES[1][1], NODES[0][4]]),
    (0, 8, [NODES[0][1], NODES[1][1], NODES[2][1]]),
    (5, 8, [NODES[0][4], NODES[1][3], NODES[2][0]]),
]

# (old size, new size, consistency proof).
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (1, 8, [NODES[0][1], NODES[1][1], NODES[2][1]]),
    (2, 5, [NODES[1][1], NODES[0][4]]),
    (6, 8, [NODES[1][2], NODES[1][3], NODES[2][0]]),
    (6, 7, [NODES[1][2], NODES[0][6], NODES[2][0]]),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def _leaves(n: int, seed: str = "") -> list[bytes]:
    return [leaf_hash(f"{seed}entry-{i}".encode()) for i in range(n)]


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) written exactly as RFC 6962 §2.1.1 defines it."""
    if len(d) == 1:
        return []
    k = _split(len(d))
    if m < k:
        return [*_ref_path(m, d[:k]), root_from_leaves(d[k:])]
    return [*_ref_path(m - k, d[k:]), root_from_leaves(d[:k])]


def _ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) written exactly as RFC 6962 §2.1.2 defines it."""
    if m == len(d):
        return [] if b else [root_from_leaves(d)]
    k = _split(len(d))
    if m <= k:
        return [*_ref_subproof(m, d[:k], b), root_from_leaves(d[k:])]
    return [*_ref_subproof(m - k, d[k:], False), root_from_leaves(d[:k])]


def _flip(value: bytes, bit: int = 3) -> bytes:
    return bytes([value[0] ^ (1 << bit)]) + value[1:]


def _forged_inclusions(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> list[tuple[bytes, int, int, list[bytes], bytes]]:
    """Every way of getting an inclusion claim slightly wrong; none may verify."""
    bad = [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        (leaf_hash(b"WrongLeaf"), index, size, proof, root),
        (_flip(leaf), index, size, proof, root),
        (leaf, index, size, proof, EMPTY_ROOT),
        (leaf, index, size, proof, SOME_HASH),
        (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [root, *proof], root),
        (leaf, index, size, [*proof, SOME_HASH], root),
    ]
    for i in range(len(proof)):
        bad.append((leaf, index, size, [*proof[:i], _flip(proof[i]), *proof[i + 1 :]], root))
    if proof:
        bad.append((leaf, index, size, proof[:-1], root))
    if len(proof) > 1:
        bad.append((leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root))
    if size > 1 and index >= _split(size):
        # The same path, replayed as if the right subtree were the whole tree.
        k = _split(size)
        bad.append((leaf, index - k, size - k, proof, root))
    return [b for b in bad if b != (leaf, index, size, proof, root)]


def _forged_consistencies(
    m: int, n: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> list[tuple[int, int, bytes, bytes, list[bytes]]]:
    """Every way of getting a consistency claim slightly wrong; none may verify."""
    bad = [
        (m - 1, n, root1, root2, proof),
        (m + 1, n, root1, root2, proof),
        (m ^ 2, n, root1, root2, proof),
        (m, n * 2, root1, root2, proof),
        (m, n // 2, root1, root2, proof),
        (m, n, SOME_HASH, root2, proof),
        (m, n, root1, SOME_HASH, proof),
        (m, n, root2, root1, proof),
        (m, n, root1, root2, []),
        (m, n, root1, root2, [*proof, root1]),
        (m, n, root1, root2, [*proof, root2]),
        (m, n, root1, root2, [root1, *proof]),
        (m, n, root1, root2, [root2, *proof]),
        (m, n, root1, root2, [proof[0], *proof]),
        (m, n, root1, root2, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad.append((m, n, root1, root2, [*proof[:i], _flip(proof[i], 4), *proof[i + 1 :]]))
    if m > _split(n):
        # The same proof, replayed as if the right subtree were the whole tree.
        k = _split(n)
        bad.append((m - k, n - k, root1, root2, proof))
    return [b for b in bad if b != (m, n, root1, root2, proof)]


# --- known answers -------------------------------------------------------------------------


def test_hashing_matches_the_ct_reference_nodes() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert [leaf_hash(x) for x in LEAF_INPUTS] == NODES[0]
    for level in range(1, 4):
        children = NODES[level - 1]
        parents = [
            node_hash(children[2 * i], children[2 * i + 1]) for i in range(len(NODES[level]))
        ]
        assert parents == NODES[level]


def test_roots_for_every_size_match_the_known_answers() -> None:
    leaves = [leaf_hash(x) for x in LEAF_INPUTS]
    tree = MerkleTree()
    assert tree.root() == ROOTS[0]
    for n in range(1, 9):
        tree.append(leaves[n - 1])
        assert tree.root() == ROOTS[n]
        assert root_from_leaves(leaves[:n]) == ROOTS[n]
    assert [tree.root(n) for n in range(9)] == ROOTS


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_VECTORS)
def test_known_inclusion_proofs(index: int, size: int, path: list[bytes]) -> None:
    tree = MerkleTree(leaf_hash(x) for x in LEAF_INPUTS)
    assert tree.inclusion_proof(index, size) == path
    leaf = NODES[0][index]
    assert verify_inclusion(leaf, index, size, path, ROOTS[size])
    for forged in _forged_inclusions(leaf, index, size, path, ROOTS[size]):
        assert not verify_inclusion(*forged), forged


@pytest.mark.parametrize(("m", "n", "proof"), CONSISTENCY_VECTORS)
def test_known_consistency_proofs(m: int, n: int, proof: list[bytes]) -> None:
    tree = MerkleTree(leaf_hash(x) for x in LEAF_INPUTS)
    assert tree.consistency_proof(m, n) == proof
    assert verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)
    if proof:
        for forged in _forged_consistencies(m, n, ROOTS[m], ROOTS[n], proof):
            assert not verify_consistency(*forged), forged


# --- agreement with the RFC definitions over many sizes -------------------------------------

MAX = 70
LEAVES = _leaves(MAX)
TREE = MerkleTree(LEAVES)
REF_ROOTS = [root_from_leaves(LEAVES[:n]) for n in range(MAX + 1)]


def test_fast_roots_equal_the_recursive_definition_for_all_small_sizes() -> None:
    assert len(set(REF_ROOTS)) == MAX + 1
    assert [TREE.root(n) for n in range(MAX + 1)] == REF_ROOTS
    grown = MerkleTree()
    for n in range(1, MAX + 1):
        assert grown.append(LEAVES[n - 1]) == n - 1
        assert grown.size == n
        assert grown.root() == REF_ROOTS[n]


def test_every_inclusion_proof_equals_the_rfc_path_and_verifies() -> None:
    for n in range(1, MAX + 1):
        for i in range(n):
            proof = TREE.inclusion_proof(i, n)
            assert proof == _ref_path(i, LEAVES[:n])
            assert verify_inclusion(LEAVES[i], i, n, proof, REF_ROOTS[n])
            assert not verify_inclusion(LEAVES[i], i, n, proof, REF_ROOTS[n - 1])
            if n > 1:
                other = (i + 1) % n
                assert not verify_inclusion(LEAVES[i], other, n, proof, REF_ROOTS[n])
                assert not verify_inclusion(LEAVES[other], i, n, proof, REF_ROOTS[n])


def test_every_consistency_proof_equals_the_rfc_subproof_and_verifies() -> None:
    for n in range(1, MAX + 1):
        for m in range(n + 1):
            proof = TREE.consistency_proof(m, n)
            expected = [] if m in (0, n) else _ref_subproof(m, LEAVES[:n], True)
            assert proof == expected
            assert verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n], proof)
            if 0 < m < n:
                assert not verify_consistency(m, n, REF_ROOTS[m - 1], REF_ROOTS[n], proof)
                assert not verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n - 1], proof)


def test_tampered_proofs_are_rejected_for_all_small_sizes() -> None:
    for n in range(1, MAX + 1):
        for i in range(n):
            proof = TREE.inclusion_proof(i, n)
            for forged in _forged_inclusions(LEAVES[i], i, n, proof, REF_ROOTS[n]):
                assert not verify_inclusion(*forged), (i, n, forged)
        for m in range(1, n):
            proof = TREE.consistency_proof(m, n)
            for forged in _forged_consistencies(m, n, REF_ROOTS[m], REF_ROOTS[n], proof):
                assert not verify_consistency(*forged), (m, n, forged)


def test_random_larger_sizes_agree_with_the_reference() -> None:
    rng = random.Random(6962)
    leaves = _leaves(3000, seed="big-")
    tree = MerkleTree(leaves)
    for _ in range(25):
        n = rng.randint(1, len(leaves))
        m = rng.randint(1, n)
        i = rng.randrange(n)
        root_n, root_m = root_from_leaves(leaves[:n]), root_from_leaves(leaves[:m])
        assert tree.root(n) == root_n
        assert tree.root(m) == root_m
        inclusion = tree.inclusion_proof(i, n)
        assert inclusion == _ref_path(i, leaves[:n])
        assert verify_inclusion(leaves[i], i, n, inclusion, root_n)
        consistency = tree.consistency_proof(m, n)
        assert verify_consistency(m, n, root_m, root_n, consistency)
        if m < n:
            assert consistency == _ref_subproof(m, leaves[:n], True)


# --- append-only behaviour -----------------------------------------------------------------


def test_old_roots_and_proofs_do_not_change_as_the_tree_grows() -> None:
    tree = MerkleTree(LEAVES[:13])
    root13 = tree.root()
    path = tree.inclusion_proof(5, 13)
    for leaf in _leaves(100, seed="later-"):
        tree.append(leaf)
        assert tree.root(13) == root13
    assert tree.inclusion_proof(5, 13) == path
    assert tree.root() != root13
    assert verify_consistency(13, 113, root13, tree.root(), tree.consistency_proof(13, 113))


def test_extend_in_chunks_equals_appending_one_by_one() -> None:
    chunked = MerkleTree()
    for start, end in [(0, 1), (1, 3), (3, 3), (3, 17), (17, 18), (18, 64), (64, 70)]:
        chunked.extend(iter(LEAVES[start:end]))
        assert chunked.size == end
        assert chunked.root() == REF_ROOTS[end]
    assert [chunked.root(n) for n in range(MAX + 1)] == REF_ROOTS
    assert [chunked.leaf(i) for i in range(MAX)] == LEAVES
    assert chunked.inclusion_proof(37, 70) == TREE.inclusion_proof(37, 70)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.append(b"short"),
        lambda t: t.append("x" * 32),
        lambda t: t.extend([LEAVES[0], b"\x00" * 33]),
        lambda t: t.root(11),
        lambda t: t.root(-1),
        lambda t: t.leaf(10),
        lambda t: t.inclusion_proof(10, 10),
        lambda t: t.inclusion_proof(-1, 10),
        lambda t: t.inclusion_proof(0, 0),
        lambda t: t.inclusion_proof(0, 11),
        lambda t: t.consistency_proof(6, 5),
        lambda t: t.consistency_proof(-1, 5),
        lambda t: t.consistency_proof(3, 11),
    ],
)
def test_programmer_errors_raise_value_error_and_leave_the_tree_intact(
    call: Callable[[MerkleTree], object],
) -> None:
    tree = MerkleTree(LEAVES[:10])
    with pytest.raises(ValueError):
        call(tree)
    assert tree.size == 10
    assert tree.root() == REF_ROOTS[10]


def test_a_path_cannot_be_replayed_as_a_smaller_tree() -> None:
    # Leaf 5 of 8 is leaf 1 of the right half; its full path ends with the left half's hash.
    # Without RFC 9162's "sn is 0: fail" step, that extra hash would close the claimed root.
    path = TREE.inclusion_proof(5, 8)
    assert verify_inclusion(LEAVES[5], 5, 8, path, REF_ROOTS[8])
    assert not verify_inclusion(LEAVES[5], 1, 4, path, REF_ROOTS[8])
    proof = TREE.consistency_proof(6, 8)
    assert verify_consistency(6, 8, REF_ROOTS[6], REF_ROOTS[8], proof)
    assert not verify_consistency(2, 4, REF_ROOTS[6], REF_ROOTS[8], proof)


def test_verifiers_return_false_on_malformed_input_instead_of_raising() -> None:
    leaf, root, proof = LEAVES[2], REF_ROOTS[5], TREE.inclusion_proof(2, 5)
    assert verify_inclusion(leaf, 2, 5, proof, root)
    assert verify_inclusion(bytearray(leaf), 2, 5, tuple(proof), root)
    garbage: list[tuple[object, ...]] = [
        (leaf, 5, 5, proof, root),  # index == size
        (leaf, 7, 5, proof, root),
        (leaf, -1, 5, proof, root),
        (leaf, 0, 0, [], EMPTY_ROOT),
        (leaf, 2, -5, proof, root),
        (leaf, 2.0, 5, proof, root),
        (leaf, True, 5, proof, root),
        (leaf, "2", 5, proof, root),
        (leaf, 2, 5, None, root),
        (leaf, 2, 5, b"".join(proof), root),
        (leaf, 2, 5, [*proof[:-1], proof[-1][:31]], root),
        (leaf, 2, 5, [*proof[:-1], "x" * 32], root),
        (leaf, 2, 5, [*proof, b""], root),
        (leaf[:31], 2, 5, proof, root),
        (None, 2, 5, proof, root),
        (leaf, 2, 5, proof, root.hex()),
        (leaf, 2, 5, proof, None),
        (leaf, 2, 5 + 2**80, proof, root),
    ]
    for args in garbage:
        assert verify_inclusion(*args) is False, args  # type: ignore[arg-type]

    m, n = 3, 7
    cproof = TREE.consistency_proof(m, n)
    r3, r7 = REF_ROOTS[m], REF_ROOTS[n]
    assert verify_consistency(m, n, r3, r7, cproof)
    bad_consistency: list[tuple[object, ...]] = [
        (7, 3, r3, r7, cproof),  # old_size > new_size
        (-3, 7, r3, r7, cproof),
        (3, 7.0, r3, r7, cproof),
        (3, 7, r3[:16], r7, cproof),
        (3, 7, r3, None, cproof),
        (3, 7, r3, r7, None),
        (3, 7, r3, r7, [c[:31] for c in cproof]),
        (3, 7, r3, r7, [*cproof, 5]),
        (3, 7 + 2**80, r3, r7, cproof),
        (1, 2, r3, r7, []),  # non-trivial sizes need a proof
        (3, 3, r3, r7, []),  # same size, different roots
        (3, 3, r3, r3, [r3]),  # same size, but a proof
        (0, 7, r3, r7, []),  # the empty tree has exactly one root
        (0, 7, EMPTY_ROOT, r7, [r7]),
        (0, 0, EMPTY_ROOT, r7, []),
    ]
    for args in bad_consistency:
        assert verify_consistency(*args) is False, args  # type: ignore[arg-type]

    assert verify_consistency(0, 7, EMPTY_ROOT, r7, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(7, 7, r7, r7, [])
