"""The transparency ledger's values: signed entries, signed tree heads, cosignatures.

Everything here is canonical JSON (RFC 8785) signed with Ed25519; leaves are hashed with
RFC 6962 (see kumiai.domain.merkle). The leaf of an entry is the canonical JSON of the entry
*and* its signature, so swapping a signature changes the tree as surely as changing a byte.
Readers are strict: a document holds exactly the fields that were signed, in the form they
were signed in, so an independent verifier (verifiers/js) reaches the same verdicts.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.domain import keys
from kumiai.domain.canonical import canonical_json, load_json, require_version, whole_number
from kumiai.domain.clock import to_iso
from kumiai.domain.errors import InvalidInput, UnsupportedVersion

ENTRY_TYPE, HEAD_TYPE, COSIGN_TYPE = "kumiai.ledger-entry", "kumiai.tree-head", "kumiai.cosignature"
# 2: RFC 8785 canonical JSON (version 1 was Python's json.dumps with sorted keys).
VERSION = 2
_OLD_LOG_FIX = (
    "A signed log cannot be re-signed: audit it with the kumiai release that wrote it, "
    "or start a new consortium with this one."
)
_LEAF_FIELDS = frozenset({"entry", "signature", "key_fingerprint"})
_ENTRY_FIELDS = frozenset({"type", "version", "seq", "time", "actor", "kind", "payload"})
_HEAD_FIELDS = frozenset({"type", "version", "size", "root", "time"})
_ROOT = re.compile(r"[0-9a-f]{64}")
COORDINATOR = "coordinator"  # the actor name of the coordinator's own key

# Every kind of act the ledger records.
KINDS = (
    "consortium.created",
    "member.joined",
    "member.key-rotated",
    "dataset.registered",
    "dataset.updated",
    "project.proposed",
    "project.approved",
    "project.closed",
    "request.made",
    "request.refused",
    "agreement.signed",
    "agreement.revoked",
    "job.started",
    "round.completed",
    "job.refused",
    "job.failed",
    "model.released",
    "model.contributions",
    "privacy.recovered",
    "charter.proposed",
    "charter.signed",
    "charter.adopted",
    "motion.proposed",
    "motion.voted",
    "motion.closed",
    "spinout.created",
    "licence.granted",
    "revenue.reported",
    "royalties.distributed",
    "contribution.started",
    "privacy.charged",
    "theme.created",
    "theme.ranked",
    "project.themed",
    "funds.received",
    "funds.allocated",
    "spend.recorded",
    "milestone.set",
    "milestone.evidence",
    "milestone.accepted",
    "milestone.rejected",
    "model.personalised",
    "analysis.released",
    "model.audited",
    "access.granted",
    "member.invited",
    "consent.signed",
    "consent.revoked",
    "agent.training-started",
    "agent.training-completed",
    "privacy.budget-set",
)


@dataclass(frozen=True)
class Entry:
    """One act: who did what, when, about which subjects."""

    seq: int
    time: datetime
    actor: str
    kind: str
    payload: dict[str, Any]

    def document(self) -> dict[str, Any]:
        return {
            "type": ENTRY_TYPE,
            "version": VERSION,
            "seq": self.seq,
            "time": to_iso(self.time),
            "actor": self.actor,
            "kind": self.kind,
            "payload": self.payload,
        }


@dataclass(frozen=True)
class SignedEntry:
    entry: Entry
    signature: str
    key_fingerprint: str
    signed_bytes: bytes = field(default=b"", compare=False, repr=False)  # kept by sign_entry

    def message(self) -> bytes:
        """The bytes the actor signed: the entry's canonical JSON."""
        return self.signed_bytes or canonical_json(self.entry.document())

    def leaf_bytes(self) -> bytes:
        """The exact bytes hashed into the Merkle tree.

        canonical_json({"entry", "key_fingerprint", "signature"}), assembled around the signed
        bytes: JCS writes those keys in this order and each value in its own canonical form.
        """
        return b"".join(
            (
                b'{"entry":',
                self.message(),
                b',"key_fingerprint":',
                canonical_json(self.key_fingerprint),
                b',"signature":',
                canonical_json(self.signature),
                b"}",
            )
        )

    @classmethod
    def from_leaf_bytes(cls, data: bytes | str) -> "SignedEntry":
        """Parse a leaf: exactly the signed fields, each in the form it was signed in."""
        try:
            doc = load_json(data)
            _require_fields(doc, _LEAF_FIELDS, "a leaf")
            body = doc["entry"]
            require_version(body, ENTRY_TYPE, VERSION, what="this ledger entry", fix=_OLD_LOG_FIX)
            _require_fields(body, _ENTRY_FIELDS, "an entry")
            seq = whole_number(body["seq"], "seq")
            actor, kind, payload = body["actor"], body["kind"], body["payload"]
            if not (isinstance(actor, str) and isinstance(kind, str)):
                raise ValueError("actor and kind must be strings")
            if not isinstance(payload, dict):
                raise ValueError("the payload is not an object")
            signature, fingerprint = doc["signature"], doc["key_fingerprint"]
            if not (isinstance(signature, str) and isinstance(fingerprint, str)):
                raise ValueError("signature and key_fingerprint must be strings")
            entry = Entry(seq, _canonical_time(body["time"]), actor, kind, payload)
            return cls(entry, signature, fingerprint)
        except UnsupportedVersion:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, InvalidInput) as exc:
            raise InvalidInput(f"ledger entry is malformed ({exc})") from None


def _require_fields(doc: object, fields: frozenset[str], what: str) -> None:
    if not isinstance(doc, dict) or doc.keys() != fields:
        raise ValueError(f"{what} must hold exactly the fields {', '.join(sorted(fields))}")


_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z", re.ASCII)


def _canonical_time(value: object) -> datetime:
    """A time as it is signed, YYYY-MM-DDTHH:MM:SSZ (what to_iso writes), nothing else."""
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError
        return datetime(*(int(part) for part in match.groups()), tzinfo=UTC)
    except ValueError:
        raise ValueError(f"time {value!r} is not of the form YYYY-MM-DDTHH:MM:SSZ") from None


def sign_entry(entry: Entry, key: Ed25519PrivateKey) -> SignedEntry:
    message = canonical_json(entry.document())
    return SignedEntry(
        entry, keys.sign(key, message), keys.fingerprint(keys.public_key_b64(key)), message
    )


def entry_signature_valid(signed: SignedEntry, public_b64: str) -> bool:
    return keys.verify(public_b64, signed.message(), signed.signature)


@dataclass(frozen=True)
class TreeHead:
    """The coordinator's signed statement: 'my log had `size` entries with this root'."""

    size: int
    root: str  # hex
    time: datetime
    signature: str = ""

    def document(self) -> dict[str, Any]:
        return {
            "type": HEAD_TYPE,
            "version": VERSION,
            "size": self.size,
            "root": self.root,
            "time": to_iso(self.time),
        }

    def to_json(self) -> str:
        return canonical_json({"head": self.document(), "signature": self.signature}).decode()

    @classmethod
    def from_json(cls, text: str) -> "TreeHead":
        try:
            doc = load_json(text)
        except ValueError as exc:
            raise InvalidInput(f"tree head is malformed ({exc})") from None
        return cls.from_document(doc)

    @classmethod
    def from_document(cls, doc: object) -> "TreeHead":
        """Parse {"head", "signature"} strictly (see SignedEntry.from_leaf_bytes)."""
        try:
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            head = doc["head"]
            require_version(head, HEAD_TYPE, VERSION, what="this tree head", fix=_OLD_LOG_FIX)
            _require_fields(head, _HEAD_FIELDS, "a tree head")
            size = whole_number(head["size"], "size")
            root, signature = head["root"], doc.get("signature", "")
            if not isinstance(root, str) or not _ROOT.fullmatch(root):
                raise ValueError("root is not 64 lowercase hexadecimal digits")
            if not isinstance(signature, str):
                raise ValueError("the signature is not a string")
            return cls(size, root, _canonical_time(head["time"]), signature)
        except UnsupportedVersion:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, InvalidInput) as exc:
            raise InvalidInput(f"tree head is malformed ({exc})") from None


def sign_head(head: TreeHead, key: Ed25519PrivateKey) -> TreeHead:
    return TreeHead(
        head.size, head.root, head.time, keys.sign(key, canonical_json(head.document()))
    )


def head_signature_valid(head: TreeHead, coordinator_b64: str) -> bool:
    return keys.verify(coordinator_b64, canonical_json(head.document()), head.signature)


def cosign_document(head: TreeHead, witness: str) -> dict[str, Any]:
    """What a witness signs: the head as the coordinator signed it, and its own name."""
    return {
        "type": COSIGN_TYPE,
        "version": VERSION,
        "witness": witness,
        "head": head.document(),
        "head_signature": head.signature,
    }


def cosign(head: TreeHead, witness: str, key: Ed25519PrivateKey) -> str:
    return keys.sign(key, canonical_json(cosign_document(head, witness)))


def cosignature_valid(head: TreeHead, witness: str, signature: str, public_b64: str) -> bool:
    return keys.verify(public_b64, canonical_json(cosign_document(head, witness)), signature)
