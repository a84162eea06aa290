"""The transparency ledger's values: signed entries, signed tree heads, cosignatures.

Everything here is canonical JSON signed with Ed25519; leaves are hashed with RFC 6962
(see kumiai.domain.merkle). The leaf of an entry is the canonical JSON of the entry *and*
its signature, so swapping a signature changes the tree as surely as changing a byte.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.domain import keys
from kumiai.domain.canonical import canonical_json
from kumiai.domain.clock import parse_iso, to_iso
from kumiai.domain.errors import InvalidInput

ENTRY_TYPE, HEAD_TYPE, COSIGN_TYPE = "kumiai.ledger-entry", "kumiai.tree-head", "kumiai.cosignature"
VERSION = 1
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

    def leaf_bytes(self) -> bytes:
        """The exact bytes hashed into the Merkle tree."""
        return canonical_json(
            {
                "entry": self.entry.document(),
                "signature": self.signature,
                "key_fingerprint": self.key_fingerprint,
            }
        )

    @classmethod
    def from_leaf_bytes(cls, data: bytes | str) -> "SignedEntry":
        try:
            doc = json.loads(data)
            body = doc["entry"]
            if body.get("type") != ENTRY_TYPE or body.get("version") != VERSION:
                raise ValueError(f"not a version-{VERSION} {ENTRY_TYPE}")
            entry = Entry(
                seq=int(body["seq"]),
                time=parse_iso(str(body["time"])),
                actor=str(body["actor"]),
                kind=str(body["kind"]),
                payload=dict(body["payload"]),
            )
            return cls(entry, str(doc["signature"]), str(doc["key_fingerprint"]))
        except (ValueError, KeyError, TypeError, AttributeError, InvalidInput) as exc:
            raise InvalidInput(f"ledger entry is malformed ({exc})") from None


def sign_entry(entry: Entry, key: Ed25519PrivateKey) -> SignedEntry:
    return SignedEntry(
        entry,
        keys.sign(key, canonical_json(entry.document())),
        keys.fingerprint(keys.public_key_b64(key)),
    )


def entry_signature_valid(signed: SignedEntry, public_b64: str) -> bool:
    return keys.verify(public_b64, canonical_json(signed.entry.document()), signed.signature)


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
            doc = json.loads(text)
            head = doc["head"]
            if head.get("type") != HEAD_TYPE or head.get("version") != VERSION:
                raise ValueError(f"not a version-{VERSION} {HEAD_TYPE}")
            return cls(
                int(head["size"]),
                str(head["root"]),
                parse_iso(str(head["time"])),
                str(doc.get("signature") or ""),
            )
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
