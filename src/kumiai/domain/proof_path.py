"""An inclusion proof as a path a reader can follow by hand: at each step, the sibling
hash, the side it sits on, and the hash the two make (RFC 9162 §2.1.3.2, step by step).

`merkle.verify_inclusion` answers yes or no; this shows the walk behind the answer, the
same walk, so that the last hash can be compared with the signed root by eye.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from kumiai.domain.merkle import node_hash


@dataclass(frozen=True)
class Step:
    sibling: bytes
    side: str  # where the sibling sits: "left" (hash(sibling ‖ ours)) or "right"
    result: bytes  # the hash after this step


def inclusion_steps(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> list[Step] | None:
    """The walk from leaf `index` of a tree of `size` leaves up its proof; None when the
    proof's length does not fit the tree (the walk would not end at a root)."""
    if not 0 <= index < size:
        return None
    fn, sn, current = index, size - 1, leaf_hash
    steps = []
    for sibling in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            current, side = node_hash(sibling, current), "left"
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            current, side = node_hash(current, sibling), "right"
        fn >>= 1
        sn >>= 1
        steps.append(Step(sibling, side, current))
    return steps if sn == 0 else None
