"""Append-only Merkle tree with RFC 6962 / RFC 9162 hashing, for the transparency ledger.

The ledger publishes tree heads (size, root). Anyone holding a head can check that an entry is
in the log (inclusion proof) and that a later head extends an earlier one without rewriting
history (consistency proof). Hashing follows RFC 6962 §2.1 so proofs interoperate with the
Certificate Transparency ecosystem, and the verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2.

`MerkleTree` keeps, for every level k, the hashes of the complete aligned subtrees
[i·2^k, (i+1)·2^k). Appending updates them in amortised O(1), and every tree head of any past
size, and every proof, is then assembled from O(log n) of those stored hashes.
"""

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
"""Bytes in a SHA-256 digest; every leaf hash, node hash and root has this length."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256

EMPTY_ROOT = _sha256(b"").digest()
"""Root of the empty tree, MTH({}) = SHA-256(""), RFC 6962 §2.1."""


def leaf_hash(entry: bytes) -> bytes:
    """Hash an entry as a leaf; the 0x00 prefix keeps leaves distinct from interior nodes."""
    return _sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children; the 0x01 prefix prevents second-preimage attacks across levels."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH by the literal recursive definition of RFC 6962 §2.1: the reference for tests.

    Slow (O(n) hashes, O(n log n) copying) on purpose: it is obviously correct, so the fast
    tree can be checked against it.
    """
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_from_leaves(leaf_hashes[:k]), root_from_leaves(leaf_hashes[k:]))


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2): RFC 6962's split point."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _as_path(proof: object) -> list[bytes] | None:
    """The proof as a list of 32-byte hashes, or None if it is not one (never raises)."""
    if not isinstance(proof, list | tuple):
        return None
    if not all(_is_hash(p) for p in proof):
        return None
    return [bytes(p) for p in proof]


class MerkleTree:
    """An append-only RFC 6962 Merkle tree over leaf hashes, with proofs for any past size.

    Level k of `_levels` is a bytearray of the concatenated 32-byte hashes of the complete,
    aligned subtrees of 2^k leaves, in order; level 0 holds the leaf hashes. Invariant:
    ``len(level[k + 1]) == len(level[k]) // 2`` (counted in hashes). A flat bytearray per
    level uses 32 bytes per hash (about 64 MB for 10^6 leaves) instead of a Python object each.

    Methods raise ValueError on programmer errors: a leaf hash that is not 32 bytes, an index
    or size out of range. The module-level verifiers never raise; they return False.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash and return its index. Raises ValueError if not 32 bytes."""
        if not _is_hash(leaf_hash):
            raise ValueError("a leaf hash must be 32 bytes")
        levels = self._levels
        index = self._size
        levels[0] += leaf_hash
        self._size = index + 1
        # Each trailing 1-bit of the index closes a complete subtree one level up.
        i, k = index, 0
        while i & 1:
            off = (i - 1) * HASH_SIZE
            parent = _sha256(_NODE_PREFIX + levels[k][off : off + 2 * HASH_SIZE]).digest()
            if k + 1 == len(levels):
                levels.append(bytearray())
            levels[k + 1] += parent
            i >>= 1
            k += 1
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes, level by level (faster than repeated `append`).

        Raises ValueError, leaving the tree unchanged, if any leaf hash is not 32 bytes.
        """
        batch = list(leaf_hashes)
        if not all(_is_hash(h) for h in batch):
            raise ValueError("a leaf hash must be 32 bytes")
        if not batch:
            return
        levels = self._levels
        levels[0] += b"".join(batch)
        self._size += len(batch)
        k = 0
        while True:
            child = levels[k]
            want = len(child) // (2 * HASH_SIZE)
            if want == 0:
                break
            if k + 1 == len(levels):
                levels.append(bytearray())
            parent = levels[k + 1]
            have = len(parent) // HASH_SIZE
            if have == want:
                break  # nothing new closed here, so nothing above changes either
            step = 2 * HASH_SIZE
            parent += b"".join(
                [
                    _sha256(_NODE_PREFIX + child[i * step : (i + 1) * step]).digest()
                    for i in range(have, want)
                ]
            )
            k += 1

    def leaf(self, index: int) -> bytes:
        """The leaf hash at `index`. Raises ValueError if out of range."""
        if not 0 <= index < self._size:
            raise ValueError(f"leaf index {index} out of range for size {self._size}")
        return self._node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (default: all), i.e. the root of any past tree head.

        Raises ValueError if size is negative or larger than the tree.
        """
        n = self._size if size is None else self._check_size(size)
        if n == 0:
            return EMPTY_ROOT
        return self._right_edge(n)[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Audit path PATH(index, D[0:size]) of RFC 6962 §2.1.1, ordered leaf to root.

        Raises ValueError unless 0 <= index < size <= self.size.
        """
        n = self._check_size(size)
        if not 0 <= index < n:
            raise ValueError(f"leaf index {index} out of range for size {n}")
        edge = self._right_edge(n)
        path: list[bytes] = []
        start, length, m = 0, n, index  # current subtree is [start, start + length)
        while length > 1:
            k = _split(length)
            if m < k:
                path.append(self._hash(start + k, start + length, n, edge))
                length = k
            else:
                path.append(self._hash(start, start + k, n, edge))
                start, length, m = start + k, length - k, m - k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """PROOF(old_size, D[0:new_size]) of RFC 6962 §2.1.2, ordered as the RFC gives it.

        Empty when old_size is 0 or equals new_size (nothing to prove beyond the roots).
        Raises ValueError unless 0 <= old_size <= new_size <= self.size.
        """
        n = self._check_size(new_size)
        if not 0 <= old_size <= n:
            raise ValueError(f"old size {old_size} out of range for new size {n}")
        if old_size in (0, n):
            return []
        edge = self._right_edge(n)
        proof: list[bytes] = []
        start, length, m, complete = 0, n, old_size, True  # SUBPROOF(m, D[start:+length], b)
        while m != length:
            k = _split(length)
            if m <= k:
                proof.append(self._hash(start + k, start + length, n, edge))
                length = k
            else:
                proof.append(self._hash(start, start + k, n, edge))
                start, length, m, complete = start + k, length - k, m - k, False
        if not complete:
            proof.append(self._hash(start, start + length, n, edge))
        proof.reverse()
        return proof

    def _check_size(self, size: int) -> int:
        if not 0 <= size <= self._size:
            raise ValueError(f"size {size} out of range for a tree of {self._size} leaves")
        return size

    def _node(self, level: int, i: int) -> bytes:
        off = i * HASH_SIZE
        return bytes(self._levels[level][off : off + HASH_SIZE])

    def _right_edge(self, n: int) -> dict[int, bytes]:
        """MTH(D[s:n]) for each start s of the power-of-two decomposition of n (n >= 1).

        These are the only incomplete subtrees that RFC 6962's recursions for size n ever
        visit; computing all of them costs O(log n) hashes, so every proof is O(log n).
        """
        starts: list[tuple[int, bytes]] = []
        s = 0
        for k in range(n.bit_length() - 1, -1, -1):
            if n >> k & 1:
                starts.append((s, self._node(k, s >> k)))
                s += 1 << k
        edge: dict[int, bytes] = {}
        s, acc = starts.pop()
        edge[s] = acc
        while starts:
            s, h = starts.pop()
            acc = node_hash(h, acc)
            edge[s] = acc
        return edge

    def _hash(self, start: int, end: int, n: int, edge: dict[int, bytes]) -> bytes:
        """MTH(D[start:end]) for a subtree met in the RFC recursion over the first n leaves."""
        if end == n and start in edge:
            return edge[start]
        k = (end - start).bit_length() - 1  # a complete aligned subtree of 2^k leaves
        return self._node(k, start >> k)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True iff `proof` shows leaf `index` of the tree of `size` leaves with `root` is
    `leaf_hash`: RFC 9162 §2.1.3.2, step by step. Returns False on any malformed input."""
    path = _as_path(proof)
    if path is None or not (_is_hash(leaf_hash) and _is_hash(root)):
        return False
    if not (_is_size(index) and _is_size(size)) or index >= size:
        return False
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True iff `proof` shows the tree (new_size, new_root) extends (old_size, old_root).

    RFC 9162 §2.1.4.2 step by step for 0 < old_size < new_size. The RFC leaves the trivial
    cases undefined; here they need an empty proof and: old_size == new_size requires equal
    roots, old_size == 0 requires old_root to be the empty-tree root. Returns False on any
    malformed input.
    """
    path = _as_path(proof)
    if path is None or not (_is_hash(old_root) and _is_hash(new_root)):
        return False
    if not (_is_size(old_size) and _is_size(new_size)) or old_size > new_size:
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    if old_size == 0:
        return not path and old_root == EMPTY_ROOT
    if not path:
        return False
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
