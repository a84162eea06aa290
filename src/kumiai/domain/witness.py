"""A witness's rule: accept a new tree head only if it extends the one you last verified.

Each node keeps the last head it verified. A coordinator that forks its log (shows two
histories) or rewrites an old entry cannot produce a consistency proof from that head to
its new one, so the node refuses to go on with it.
"""

from dataclasses import dataclass

from kumiai.domain import merkle
from kumiai.domain.ledger import TreeHead, head_signature_valid


@dataclass(frozen=True)
class WitnessVerdict:
    accepted: bool
    reason: str


def check_new_head(
    last: TreeHead | None, new: TreeHead, proof: list[bytes], coordinator_key: str
) -> WitnessVerdict:
    """Decide whether `new` may replace `last` as the head this witness vouches for."""
    if not head_signature_valid(new, coordinator_key):
        return WitnessVerdict(
            False,
            f"tree head {new.size} is not signed by the coordinator key "
            "this node pinned when it joined",
        )
    if last is None:
        return WitnessVerdict(True, f"first head seen: size {new.size}")
    if new.size < last.size:
        return WitnessVerdict(
            False,
            f"the coordinator shows a log of {new.size} entries, but this "
            f"node already witnessed {last.size}: history was truncated",
        )
    try:
        old_root, new_root = bytes.fromhex(last.root), bytes.fromhex(new.root)
    except ValueError:
        return WitnessVerdict(False, "a tree head root is not hexadecimal")
    if not merkle.verify_consistency(last.size, new.size, old_root, new_root, proof):
        return WitnessVerdict(
            False,
            f"the coordinator's log (size {new.size}, root {new.root[:16]}…) is not consistent "
            f"with the head this node witnessed (size {last.size}, root {last.root[:16]}…): it "
            "forked or rewrote its history",
        )
    return WitnessVerdict(True, f"consistent: {last.size} -> {new.size}")
