"""A node witnessing the coordinator's log: check a new head against its own, then cosign."""

from dataclasses import dataclass

from kumiai.domain.errors import InvalidInput, UnsupportedVersion
from kumiai.domain.ledger import TreeHead, cosign
from kumiai.domain.witness import WitnessVerdict, check_new_head
from kumiai.node.home import NodeHome


@dataclass(frozen=True)
class Witnessed:
    verdict: WitnessVerdict
    cosignature: str | None  # the node's signature on the head, when accepted


def last_witnessed(node: NodeHome) -> TreeHead | None:
    text = node.witnessed_head()
    return TreeHead.from_json(text) if text else None


def observe(node: NodeHome, head: TreeHead, proof: list[bytes]) -> Witnessed:
    """Apply the witness rule with this node's own state; remember and cosign what passes."""
    seen = check(node, head, proof)
    if seen.cosignature is not None:
        remember(node, head)
    return seen


def remember(node: NodeHome, head: TreeHead) -> None:
    """Make `head` the one later heads must extend (never moves backwards)."""
    last = last_witnessed(node)
    if last is None or head.size > last.size:
        node.save_witnessed_head(head.to_json())


def check(node: NodeHome, head: TreeHead, proof: list[bytes]) -> Witnessed:
    """The witness rule and the node's cosignature, without remembering the head yet.

    The guard remembers a head only once its reply (which carries the cosignature) is on
    its way: a node that failed before answering has vouched for nothing, and its next job
    must not need a proof from a head the coordinator never learned it saw.
    """
    try:
        last = last_witnessed(node)
    except UnsupportedVersion as exc:
        return Witnessed(WitnessVerdict(False, f"this node's witness.json: {exc}"), None)
    except InvalidInput:
        return Witnessed(
            WitnessVerdict(False, "this node's witness.json is unreadable; restore it from backup"),
            None,
        )
    verdict = check_new_head(last, head, proof, node.coordinator_key())
    if not verdict.accepted:
        return Witnessed(verdict, None)
    return Witnessed(verdict, cosign(head, node.member_name, node.private_key()))
