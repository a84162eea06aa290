"""The rule a node applies before it masks its share of a secure sum: trust no relayed key.

The coordinator relays the other sites' masking keys. A node accepts them only if

1. they name exactly the sites of the coordinator-signed job document (the coordinator's own
   claim, recorded in the ledger as `job.started`): a coordinator that drops a site to pair
   the node with a colluder, or adds one, is refused;
2. each peer's key is signed (`domain.masking_key`) for this job and this dataset by the
   member that owns the dataset;
3. that member's signing key and its ownership of the dataset are ones the node verifies by
   itself: `member.joined` (self-signed), `member.key-rotated` (signed by the previous key)
   and `dataset.registered` (signed by the owner) entries, each with an inclusion proof
   against the tree head this node itself last witnessed. A coordinator that invents a
   member must then write it into the log every node witnesses and any auditor reads.
4. what the node verified in earlier jobs stays pinned in its home: a dataset's owner or a
   member's joining key that differs from the pinned one is refused (the coordinator would
   have had to leave the earlier entries out of the evidence), and a peer verified before
   needs no proof again.

Everything here is pure: the node passes in its own head, its own key and what it was sent.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kumiai.domain import merkle
from kumiai.domain.errors import InvalidInput
from kumiai.domain.ledger import SignedEntry, TreeHead, entry_signature_valid
from kumiai.domain.masking_key import SignedMaskingKey, signed_by

IDENTITY_KINDS = ("member.joined", "member.key-rotated", "dataset.registered")


@dataclass(frozen=True)
class LoggedEntry:
    """A ledger entry as the coordinator relays it: its leaf and an inclusion proof."""

    seq: int
    leaf: str  # the leaf's canonical JSON, as hashed into the tree
    path: tuple[str, ...]  # the inclusion proof's hashes, hex

    def document(self) -> dict[str, Any]:
        return {"seq": self.seq, "leaf": self.leaf, "path": list(self.path)}

    @classmethod
    def from_document(cls, doc: Any) -> "LoggedEntry":
        try:
            seq, leaf, path = doc["seq"], doc["leaf"], doc["path"]
            if not (isinstance(seq, int) and isinstance(leaf, str) and isinstance(path, list)):
                raise TypeError("seq, leaf and path must be a number, a string and a list")
            return cls(seq, leaf, tuple(str(p) for p in path))
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"a logged entry is malformed ({exc})") from None


@dataclass(frozen=True)
class Identities:
    """What the verified entries say: each member's keys, and who owns each dataset."""

    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {"keys": {m: list(k) for m, k in self.keys.items()}, "owners": self.owners}

    @classmethod
    def from_document(cls, doc: Any) -> "Identities":
        try:
            keys = {str(m): tuple(str(k) for k in held) for m, held in doc["keys"].items()}
            return cls(keys, {str(d): str(m) for d, m in doc["owners"].items()})
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"the pinned identities are malformed ({exc})") from None


@dataclass(frozen=True)
class PeerVerdict:
    allowed: bool
    reason: str
    masking_keys: dict[str, str] = field(default_factory=dict)  # dataset -> X25519 key
    identities: Identities = field(default_factory=Identities)  # what to pin, when allowed


def with_pins(pinned: Identities, found: Identities) -> Identities:
    """`found` joined to what this node verified before; InvalidInput on a contradiction.

    A member's joining key and a dataset's owner never change in an append-only log, so a
    different one means the coordinator left the earlier entries out. Keys from rotations
    only add up.
    """
    for dataset, owner in found.owners.items():
        if pinned.owners.get(dataset, owner) != owner:
            raise InvalidInput(
                f"this node verified earlier that {dataset!r} belongs to "
                f"{pinned.owners[dataset]!r}, but the evidence says {owner!r}"
            )
    keys = dict(pinned.keys)
    for member, held in found.keys.items():
        before = pinned.keys.get(member, ())
        if before and before[0] != held[0]:
            raise InvalidInput(
                f"this node verified another joining key for member {member!r} earlier"
            )
        keys[member] = before + tuple(k for k in held if k not in before)
    return Identities(keys, {**pinned.owners, **found.owners})


def included(entry: LoggedEntry, head: TreeHead) -> SignedEntry:
    """The entry, once its inclusion proof verifies against `head`; InvalidInput if not."""
    try:
        path = [bytes.fromhex(p) for p in entry.path]
        root = bytes.fromhex(head.root)
    except ValueError:
        path, root = [], b""
    leaf_hash = merkle.leaf_hash(entry.leaf.encode())
    if not merkle.verify_inclusion(leaf_hash, entry.seq, head.size, path, root):
        raise InvalidInput(
            f"the inclusion proof of ledger entry {entry.seq} does not verify against the "
            f"tree head this node witnessed (size {head.size}, root {head.root[:16]}…)"
        )
    return SignedEntry.from_leaf_bytes(entry.leaf)


def identities(head: TreeHead, entries: Iterable[LoggedEntry]) -> Identities:
    """Members' keys and datasets' owners from entries proven in the log under `head`.

    Taken in log order: a member's first key is the one its `member.joined` entry signs
    itself with; a rotation counts only if signed by a key the member already held; a
    dataset's owner only if the member signed its registration. Two different claims to one
    member or one dataset are refused, not resolved.
    """
    verified = sorted((included(e, head) for e in entries), key=lambda s: s.entry.seq)
    found = Identities()
    for signed in verified:
        entry, payload = signed.entry, signed.entry.payload
        actor = entry.actor
        held = found.keys.get(actor, ())
        if entry.kind == "member.joined" and payload.get("member") == actor:
            key = str(payload.get("public_key", ""))
            if entry_signature_valid(signed, key):
                if held and held[0] != key:
                    raise InvalidInput(f"the log names two joining keys for member {actor!r}")
                found.keys.setdefault(actor, (key,))
        elif entry.kind == "member.key-rotated" and payload.get("member") == actor:
            previous, key = str(payload.get("previous_key", "")), str(payload.get("public_key"))
            if previous in held and entry_signature_valid(signed, previous):
                found.keys[actor] = (*held, key)
        elif entry.kind == "dataset.registered" and payload.get("member") == actor:
            dataset = str(payload.get("dataset", ""))
            if any(entry_signature_valid(signed, k) for k in held):
                owner = found.owners.setdefault(dataset, actor)
                if owner != actor:
                    raise InvalidInput(
                        f"the log says both {owner!r} and {actor!r} registered {dataset!r}"
                    )
    return found


def check_peer_keys(
    *,
    job: str,
    job_datasets: Iterable[str],
    own_dataset: str,
    own_masking_key: str,
    peers: Mapping[str, SignedMaskingKey],
    head: TreeHead | None,
    evidence: Iterable[LoggedEntry],
    pinned: Identities | None = None,
) -> PeerVerdict:
    """Whether a node may mask its share for `peers` (dataset -> signed masking key).

    `head`: the tree head this node last witnessed (it checked the coordinator's signature
    and consistency then). `evidence`: the identity entries with their inclusion proofs.
    `pinned`: what the node verified in earlier jobs (`PeerVerdict.identities` to pin again).
    """
    named = sorted(job_datasets)
    if sorted(peers) != named or own_dataset not in peers or len(named) < 2:
        return PeerVerdict(
            False,
            f"a secure sum masks for exactly the sites the signed job document names "
            f"({', '.join(named)}), at least 2 and this node among them; the coordinator "
            f"sent keys for {', '.join(sorted(peers)) or 'none'}",
        )
    if peers[own_dataset].statement.masking_key != own_masking_key:
        return PeerVerdict(False, "the masking key sent for this node's own site is not its own")
    if head is None:
        return PeerVerdict(
            False,
            "this node has witnessed no tree head, so it cannot verify its peers' keys; "
            "witness the ledger first (kumiai ledger witness)",
        )
    try:
        known = with_pins(pinned or Identities(), identities(head, evidence))
    except InvalidInput as exc:
        return PeerVerdict(False, str(exc))
    for dataset in named:
        if dataset == own_dataset:
            continue
        signed = peers[dataset]
        statement, owner = signed.statement, known.owners.get(dataset)
        if statement.job != job or statement.dataset != dataset:
            return PeerVerdict(
                False,
                f"the masking key for {dataset!r} was signed for job {statement.job} and "
                f"dataset {statement.dataset!r}, not this job {job} and that dataset",
            )
        if owner is None or owner not in known.keys:
            return PeerVerdict(
                False,
                f"this node cannot verify who owns {dataset!r}: no member.joined and "
                "dataset.registered entries for it are proven under the tree head it "
                f"witnessed (size {head.size})",
            )
        if statement.member != owner or not signed_by(signed, known.keys[owner]):
            return PeerVerdict(
                False,
                f"the masking key for {dataset!r} is not signed by {owner!r}, the member "
                "that owns it in the witnessed ledger",
            )
    keys = {d: peers[d].statement.masking_key for d in named}
    return PeerVerdict(True, f"{len(named) - 1} peer key(s) signed by their owners", keys, known)
