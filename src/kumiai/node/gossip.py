"""A node witnessing over the network, and comparing what the other witnesses cosigned.

One round: fetch the coordinator's head, check it extends the last head this node witnessed
(`witnessing.check`, with a consistency proof fetched from the coordinator), cosign and
publish it; then read every other witness's latest cosigned head and compare it with this
node's own (`domain.split_view`). Gossip goes through the coordinator, which may withhold it
but cannot forge it: a cosignature verifies only with the witness's key, and this node keeps
the keys it first saw rather than trusting the coordinator's list each time.

A split view (two signed heads that cannot be one log) is written as evidence to
`split-views/` in the node home. Exit codes of `kumiai node witness`: 0 one log,
3 split view (evidence written), 4 untrusted (a head or cosignature that does not verify, a
witness whose key changed, a replayed or withheld cosignature: something is wrong, but
nothing here proves a fork).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kumiai.adapters.coordinator_client import CoordinatorClient
from kumiai.adapters.files import write_json_atomic
from kumiai.domain import keys
from kumiai.domain.clock import to_iso, utc_now
from kumiai.domain.errors import InvalidInput, StateError
from kumiai.domain.ledger import TreeHead
from kumiai.domain.split_view import Comparison, Cosigned, Outcome, compare, extends
from kumiai.node.home import NodeHome
from kumiai.node.witnessing import check, last_witnessed, remember

EXIT_SPLIT_VIEW = 3
EXIT_UNTRUSTED = 4
PEERS_FILE = "witness-peers.json"
PEERS_TYPE, PEERS_VERSION = "kumiai.witness-peers", 1
EVIDENCE_FOLDER = "split-views"
EVIDENCE_TYPE, EVIDENCE_VERSION = "kumiai.split-view", 1


def _head_document(head: TreeHead) -> dict[str, Any]:
    return {"head": head.document(), "signature": head.signature}


# -- the coordinator, over HTTPS -----------------------------------------------------------


class WitnessChannel:
    """What a witness asks the coordinator, over the node's one client
    (`kumiai.adapters.coordinator_client`: the consortium's CA alone trusted, every request
    signed with the member's key). A refusal is said as the coordinator's refusal of what the
    witness asked for; a refused consistency proof is evidence, so it is returned, not raised.
    """

    def __init__(self, client: CoordinatorClient) -> None:
        self.client = client
        self.url = client.url

    def close(self) -> None:
        self.client.close()

    def _json(self, path: str, what: str) -> Any:
        status, document = self.client.answer("GET", path)
        if status != 200:
            raise StateError(f"the coordinator refused {what} ({_refusal(status, document)})")
        if document is None:
            raise StateError(f"the coordinator's {what} is not JSON")
        return document

    def head(self) -> TreeHead:
        return TreeHead.from_document(self._json("/ledger/head", "its latest tree head"))

    def consistency(self, old: int, new: int) -> tuple[list[bytes] | None, str | None]:
        """(proof, None), or (None, why) when the coordinator gives none it can parse."""
        status, document = self.client.answer("GET", "/ledger/consistency", old=old, new=new)
        if status != 200:
            return None, _refusal(status, document)
        try:
            return [bytes.fromhex(p) for p in document["path"]], None
        except (ValueError, KeyError, TypeError):
            return None, "the proof it sent is malformed"

    def publish(self, witness: str, head: TreeHead, signature: str) -> None:
        body = {"witness": witness, "head": _head_document(head), "signature": signature}
        status, document = self.client.answer("POST", "/witness/cosignatures", document=body)
        if status != 200:
            raise StateError(
                f"the coordinator refused this node's cosignature on head {head.size} "
                f"({_refusal(status, document)})"
            )

    def cosigned(self) -> list[Any]:
        listed = self._json("/witness/cosigned", "the witnesses' cosigned heads")
        if not isinstance(listed, list):
            raise StateError("the coordinator's list of cosigned heads is not a JSON list")
        return listed


def _refusal(status: int, document: Any) -> str:
    """`404: its error`, as a refusal is kept in evidence and said to the steward."""
    said = document.get("error") if isinstance(document, dict) else None
    return f"{status}: {said if said is not None else 'no error given'}"


def open_channel(node: NodeHome, url: str, ca: Path) -> WitnessChannel:
    """The node's signed client to the coordinator at `url`, trusting the CA at `ca` alone."""
    return WitnessChannel(CoordinatorClient(url, ca_cert=ca, key=node.private_key()))


# -- what this node remembers of the other witnesses --------------------------------------


@dataclass
class PeerBook:
    """The key this node first saw for each witness, and the latest head it saw it cosign."""

    path: Path
    peers: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, node: NodeHome) -> "PeerBook":
        path = node.root / PEERS_FILE
        if not path.is_file():
            return cls(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("type") != PEERS_TYPE or doc.get("version") != PEERS_VERSION:
                raise ValueError(f"not {PEERS_TYPE} version {PEERS_VERSION}")
            return cls(path, dict(doc["peers"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(
                f"{path} is unreadable ({exc}); restore it from backup: it holds the witness "
                "keys this node trusts"
            ) from None

    def key(self, witness: str) -> str | None:
        peer = self.peers.get(witness)
        return str(peer["public_key"]) if peer else None

    def seen(self, witness: str) -> TreeHead | None:
        peer = self.peers.get(witness)
        return TreeHead.from_document(peer["head"]) if peer and peer.get("head") else None

    def seen_signature(self, witness: str) -> str | None:
        peer = self.peers.get(witness)
        return str(peer["signature"]) if peer and peer.get("signature") else None

    def saw(self, witness: str, public_key: str, cosigned: Cosigned) -> None:
        """Keep the witness's key, and its head when it is newer than the one kept."""
        last = self.seen(witness)
        if last is None or cosigned.head.size > last.size:
            self.peers[witness] = {
                "public_key": public_key,
                "head": _head_document(cosigned.head),
                "signature": cosigned.signature,
            }

    def save(self) -> None:
        write_json_atomic(
            self.path, {"type": PEERS_TYPE, "version": PEERS_VERSION, "peers": self.peers}
        )


# -- one round -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerVerdict:
    witness: str
    size: int | None
    comparison: Comparison


@dataclass
class RoundReport:
    witness: str
    coordinator: str
    head: TreeHead
    cosigned: bool
    reason: str
    peers: list[PeerVerdict] = field(default_factory=list)
    evidence: list[Path] = field(default_factory=list)
    own: Comparison | None = None  # set when this node's own check refused the head

    @property
    def exit_code(self) -> int:
        outcomes = [p.comparison.outcome for p in self.peers]
        if self.own is not None:
            outcomes.append(self.own.outcome)
        if Outcome.SPLIT_VIEW in outcomes:
            return EXIT_SPLIT_VIEW
        if Outcome.UNTRUSTED in outcomes:
            return EXIT_UNTRUSTED
        return 0

    def document(self) -> dict[str, Any]:
        return {
            "witness": self.witness,
            "coordinator": self.coordinator,
            "head": {"size": self.head.size, "root": self.head.root},
            "cosigned": self.cosigned,
            "reason": self.own.reason if self.own else self.reason,
            "peers": [
                {
                    "witness": p.witness,
                    "size": p.size,
                    "outcome": p.comparison.outcome.value,
                    "reason": p.comparison.reason,
                }
                for p in self.peers
            ],
            "evidence": [str(p) for p in self.evidence],
            "exit_code": self.exit_code,
        }


def write_evidence(
    node: NodeHome,
    coordinator: str,
    reason: str,
    heads: list[tuple[str, TreeHead, str | None]],
    proof: list[bytes] | None,
    refusal: str | None,
) -> Path:
    """Both signed heads (and who cosigned them), the proof or the refusal: checkable by anyone
    with the coordinator's public key."""
    now = utc_now()
    other, other_head, _ = heads[-1]
    name = f"{now:%Y%m%dT%H%M%SZ}-{other}-{other_head.size}-{other_head.root[:16]}.json"
    path = node.root / EVIDENCE_FOLDER / name
    write_json_atomic(
        path,
        {
            "type": EVIDENCE_TYPE,
            "version": EVIDENCE_VERSION,
            "detected_at": to_iso(now),
            "detected_by": node.member_name,
            "coordinator": coordinator,
            "coordinator_key": node.coordinator_key(),
            "reason": reason,
            "heads": [
                {"witness": w, "head": _head_document(h), "cosignature": s} for w, h, s in heads
            ],
            "proof": [p.hex() for p in proof] if proof is not None else None,
            "refusal": refusal,
        },
    )
    return path


def witness_round(node: NodeHome, client: WitnessChannel) -> RoundReport:
    """Witness the coordinator's latest head, publish the cosignature, compare with the others."""
    me = node.member_name
    coordinator_key = node.coordinator_key()
    head = client.head()
    last = last_witnessed(node)
    proof: list[bytes] | None = []
    refusal = None
    if last is not None and last.size < head.size:
        proof, refusal = client.consistency(last.size, head.size)
    seen = check(node, head, proof or [])
    if seen.cosignature is None:
        own = (
            extends(last, head, proof, coordinator_key)
            if last is not None
            else Comparison(Outcome.UNTRUSTED, seen.verdict.reason)
        )
        if own.outcome is Outcome.AGREE:  # refused for a reason of this node's own
            own = Comparison(Outcome.UNTRUSTED, seen.verdict.reason)
        report = RoundReport(me, client.url, head, False, seen.verdict.reason, own=own)
        if last is not None and own.outcome is Outcome.SPLIT_VIEW:
            heads = [(me, last, None), ("coordinator", head, None)]
            report.evidence.append(
                write_evidence(node, client.url, own.reason, heads, proof, refusal)
            )
        return report
    client.publish(me, head, seen.cosignature)
    remember(node, head)
    report = RoundReport(me, client.url, head, True, seen.verdict.reason)
    _compare_with_peers(node, client, head, seen.cosignature, coordinator_key, report)
    return report


def _untrusted(witness: str, size: int | None, why: str) -> PeerVerdict:
    return PeerVerdict(witness, size, Comparison(Outcome.UNTRUSTED, why))


def _compare_with_peers(
    node: NodeHome,
    client: WitnessChannel,
    head: TreeHead,
    own_signature: str,
    coordinator_key: str,
    report: RoundReport,
) -> None:
    """Compare every other witness's latest cosigned head with this node's `head`."""
    me = report.witness
    book = PeerBook.load(node)
    listed: set[str] = set()
    for item in client.cosigned():
        try:
            other = Cosigned(
                str(item["witness"]), TreeHead.from_document(item["head"]), str(item["signature"])
            )
            listed_key = str(item["public_key"])
        except (KeyError, TypeError, InvalidInput) as exc:
            report.peers.append(_untrusted("?", None, f"a malformed cosigned head ({exc})"))
            continue
        name, size = other.witness, other.head.size
        listed.add(name)
        known = node.public_key() if name == me else book.key(name)
        if name == me and known != listed_key:
            fingerprint = keys.fingerprint(listed_key)
            why = f"the coordinator lists another key for this very node ({fingerprint})"
            report.peers.append(_untrusted(name, size, why))
        elif known is not None and known != listed_key:
            why = (
                f"{name}'s key changed: this node keeps {keys.fingerprint(known)}, the "
                f"coordinator now lists {keys.fingerprint(listed_key)}; if {name} rotated its "
                f"key (a member.key-rotated entry), remove {name} from {book.path.name} to "
                "learn the new one"
            )
            report.peers.append(_untrusted(name, size, why))
        elif name != me:  # first sight: trust on first use, then this key is kept
            key = known or listed_key
            _compare_one(
                node, client, book, head, own_signature, coordinator_key, other, key, report
            )
    for name in sorted(set(book.peers) - listed - {me}):
        why = (
            f"the coordinator no longer lists {name}'s cosigned head, which this node saw "
            "before: it withholds a witness's view"
        )
        report.peers.append(_untrusted(name, None, why))
    book.save()


def _compare_one(
    node: NodeHome,
    client: WitnessChannel,
    book: PeerBook,
    head: TreeHead,
    own_signature: str,
    coordinator_key: str,
    other: Cosigned,
    key: str,
    report: RoundReport,
) -> None:
    """One other witness: fetch the proof between the two heads, compare, keep what holds."""
    name = other.witness
    proof: list[bytes] | None = []
    refusal = None
    if other.head.size != head.size:
        low, high = sorted((other.head.size, head.size))
        proof, refusal = client.consistency(low, high)
    earlier = book.seen(name)
    verdict = compare(
        head, other, proof, coordinator_key=coordinator_key, witness_key=key, seen=earlier
    )
    report.peers.append(PeerVerdict(name, other.head.size, verdict))
    if verdict.outcome is Outcome.AGREE:
        book.saw(name, key, other)
    elif verdict.outcome is Outcome.SPLIT_VIEW:
        if earlier is not None and earlier.size == other.head.size:  # it cosigned two heads
            heads = [
                (name, earlier, book.seen_signature(name)),
                (name, other.head, other.signature),
            ]
        else:
            heads = [(report.witness, head, own_signature), (name, other.head, other.signature)]
        report.evidence.append(
            write_evidence(node, client.url, verdict.reason, heads, proof, refusal)
        )
