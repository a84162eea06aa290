"""Offline verification of a ledger export: every signature, the tree, every head.

Pure: it receives the export's contents and a function that checks a batch of Ed25519
signatures (the service passes one that uses both cores). Each finding names the entry,
head or cosignature at fault, so an auditor knows exactly where the record breaks.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from kumiai.domain import keys, merkle
from kumiai.domain.canonical import canonical_json
from kumiai.domain.errors import InvalidInput
from kumiai.domain.ledger import (
    COORDINATOR,
    KINDS,
    SignedEntry,
    TreeHead,
    cosign_document,
)

SignatureCheck = tuple[str, bytes, str]  # public key (base64), message, signature (base64)
BatchVerifier = Callable[[list[SignatureCheck]], list[bool]]
MAX_FINDINGS = 100


def verify_sequentially(checks: list[SignatureCheck]) -> list[bool]:
    return [keys.verify(public, message, signature) for public, message, signature in checks]


@dataclass(frozen=True)
class Cosignature:
    size: int
    witness: str
    signature: str


@dataclass
class ExportContents:
    coordinator_key: str
    leaves: list[str]  # each entry's leaf exactly as exported, in log order
    heads: list[TreeHead]
    cosignatures: list[Cosignature]


@dataclass(frozen=True)
class Finding:
    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass
class AuditReport:
    entries: int
    heads: int
    cosignatures: int
    findings: list[Finding] = field(default_factory=list)
    root: str = ""

    @property
    def ok(self) -> bool:
        return not self.findings


class _Keys:
    """Which key each actor holds as the log is replayed (joins and rotations)."""

    def __init__(self, coordinator_key: str, pinned: dict[str, str]) -> None:
        self.current: dict[str, str] = {COORDINATOR: coordinator_key}
        self.history: dict[str, list[str]] = {COORDINATOR: [coordinator_key]}
        self.pinned = pinned

    def set(self, actor: str, key: str) -> None:
        self.current[actor] = key
        self.history.setdefault(actor, []).append(key)


def _entry_key(
    signed: SignedEntry, registry: _Keys, where: str, findings: list[Finding]
) -> str | None:
    """The key this entry must verify under, updating the registry for joins/rotations."""
    entry = signed.entry
    payload = entry.payload
    if entry.kind not in KINDS:
        findings.append(Finding(where, f"unknown kind {entry.kind!r}"))
    if entry.kind == "consortium.created":
        if payload.get("coordinator_key") != registry.current[COORDINATOR]:
            findings.append(Finding(where, "names a coordinator key other than the export's"))
        return registry.current[COORDINATOR]
    if entry.kind == "member.joined":
        member, key = str(payload.get("member")), str(payload.get("public_key"))
        if entry.actor != member:
            findings.append(Finding(where, f"{entry.actor!r} signed the joining of {member!r}"))
        if member in registry.current:
            findings.append(Finding(where, f"{member!r} joins a second time"))
        pinned = registry.pinned.get(member)
        if pinned is not None and pinned != key:
            findings.append(
                Finding(
                    where,
                    f"{member!r} joined with a key other than the one pinned in the keys file",
                )
            )
        registry.set(member, key)
        return key
    key = registry.current.get(entry.actor)
    if key is None:
        findings.append(
            Finding(where, f"signed by {entry.actor!r}, who had no registered key at that time")
        )
        return None
    if entry.kind == "member.key-rotated":
        registry.set(entry.actor, str(payload.get("public_key")))
    return key


def audit(
    contents: ExportContents,
    *,
    pinned: dict[str, str] | None = None,
    verify_batch: BatchVerifier = verify_sequentially,
) -> AuditReport:
    """Check everything in an export; the report lists each failing entry, head or cosignature."""
    pinned = pinned or {}
    findings: list[Finding] = []
    if COORDINATOR in pinned and pinned[COORDINATOR] != contents.coordinator_key:
        findings.append(Finding("export header", "the coordinator key differs from the pinned one"))
    registry = _Keys(contents.coordinator_key, pinned)
    checks: list[SignatureCheck] = []
    checked_where: list[str] = []
    for position, leaf in enumerate(contents.leaves):
        where = f"entry {position}"
        try:
            signed = SignedEntry.from_leaf_bytes(leaf)
        except InvalidInput as exc:
            findings.append(Finding(where, str(exc)))
            continue
        if signed.entry.seq != position:
            findings.append(
                Finding(
                    where,
                    f"carries sequence number {signed.entry.seq}: an entry "
                    "before it was deleted, or entries were reordered",
                )
            )
        key = _entry_key(signed, registry, where, findings)
        if key is None:
            continue
        if signed.key_fingerprint != keys.fingerprint(key):
            findings.append(
                Finding(
                    where,
                    f"signed with key {signed.key_fingerprint}, which was "
                    f"not {signed.entry.actor!r}'s registered key at "
                    "that time",
                )
            )
            continue
        checks.append((key, canonical_json(signed.entry.document()), signed.signature))
        checked_where.append(where)

    tree = merkle.MerkleTree(merkle.leaf_hash(leaf.encode()) for leaf in contents.leaves)
    heads = sorted(contents.heads, key=lambda h: h.size)
    for head in heads:
        checks.append((contents.coordinator_key, canonical_json(head.document()), head.signature))
        checked_where.append(f"tree head {head.size}")
    by_size = {h.size: h for h in heads}
    for cosig in contents.cosignatures:
        head = by_size.get(cosig.size)
        witness_keys = registry.history.get(cosig.witness, [])
        if head is None or not witness_keys:
            findings.append(
                Finding(
                    f"cosignature of head {cosig.size} by {cosig.witness}",
                    "names a head or witness that is not in the export",
                )
            )
            continue
        message = canonical_json(cosign_document(head, cosig.witness))
        for key in witness_keys:  # a witness may have cosigned before rotating its key
            checks.append((key, message, cosig.signature))
            checked_where.append(f"cosignature of head {cosig.size} by {cosig.witness}")

    valid: dict[str, bool] = {}
    for where, ok in zip(checked_where, verify_batch(checks), strict=True):
        valid[where] = valid.get(where, False) or ok
    findings.extend(
        Finding(where, "signature does not verify") for where, ok in valid.items() if not ok
    )

    seen: dict[int, str] = {}
    for head in heads:
        where = f"tree head {head.size}"
        if head.size in seen and seen[head.size] != head.root:
            findings.append(
                Finding(
                    where, "two different roots for the same size: the coordinator forked its log"
                )
            )
        seen[head.size] = head.root
        if head.size > tree.size:
            findings.append(
                Finding(
                    where,
                    f"claims {head.size} entries; the export holds "
                    f"{tree.size}: entries were deleted",
                )
            )
        elif tree.root(head.size).hex() != head.root:
            findings.append(
                Finding(
                    where,
                    "root does not match the entries: an entry up to "
                    f"{head.size} was changed, deleted or reordered",
                )
            )
    for older, newer in itertools.pairwise(heads):
        if older.size >= newer.size or newer.size > tree.size:
            continue
        proof = tree.consistency_proof(older.size, newer.size)
        try:
            consistent = merkle.verify_consistency(
                older.size, newer.size, bytes.fromhex(older.root), bytes.fromhex(newer.root), proof
            )
        except ValueError:
            consistent = False
        if not consistent:
            findings.append(
                Finding(
                    f"tree heads {older.size} and {newer.size}",
                    "are not consistent with each other",
                )
            )
    order = {w: i for i, w in enumerate(checked_where)}
    findings.sort(
        key=lambda f: (
            (0, int(f.where.split()[1]))
            if f.where.startswith("entry ")
            else (1, order.get(f.where, 0))
        )
    )
    return AuditReport(
        len(contents.leaves),
        len(heads),
        len(contents.cosignatures),
        findings[:MAX_FINDINGS],
        tree.root().hex(),
    )
