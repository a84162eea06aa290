"""Offline verification of a ledger export: every signature, the tree, every head.

Pure: it receives the export's contents and a function that checks a batch of Ed25519
signatures (the service passes one that uses both cores). Each finding names the entry,
head or cosignature at fault, so an auditor knows exactly where the record breaks.
"""

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kumiai.domain import keys, merkle
from kumiai.domain.canonical import canonical_json
from kumiai.domain.device_acts import DEVICE_KINDS, device_signer
from kumiai.domain.errors import InvalidInput
from kumiai.domain.ledger import (
    COORDINATOR,
    KINDS,
    SignedEntry,
    TreeHead,
    cosign_document,
)
from kumiai.domain.minutes import Minutes
from kumiai.domain.recovery import RECOVERED, recovery_problem
from kumiai.domain.royalty_audit import RoyaltyReplay

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
    code: str = ""  # a stable name of the check that failed; verifiers/js uses the same ones

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass(frozen=True)
class Verdict:
    """One entry's, head's, head pair's or cosignature's result, with every problem found."""

    subject: dict[str, Any]  # {"seq": 3}, {"size": 5}, {"from": 4, "to": 5}, {"size", "witness"}
    problems: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def document(self) -> dict[str, Any]:
        return {
            **self.subject,
            "ok": self.ok,
            "reason": "; ".join(f.problem for f in self.problems) or None,
            "codes": sorted({f.code for f in self.problems}),
        }


@dataclass
class AuditReport:
    entries: int
    heads: int
    cosignatures: int
    findings: list[Finding] = field(default_factory=list)  # the first MAX_FINDINGS, to print
    root: str = ""
    # Per subject, every finding (not only the first MAX_FINDINGS): see report_document.
    verdicts: dict[str, list[Verdict]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings


REPORT_TYPE, REPORT_VERSION = "kumiai.audit-report", 1


def report_document(report: AuditReport) -> dict[str, Any]:
    """The report as JSON, entry by entry, in the shape verifiers/js/verify.mjs prints.

    Two verifiers of one export should print the same verdicts; a test holds them to it.
    """
    verdicts = report.verdicts
    [export] = verdicts.get("export") or [Verdict({})]
    return {
        "type": REPORT_TYPE,
        "version": REPORT_VERSION,
        "verifier": "kumiai (Python)",
        "ok": report.ok,
        "root": report.root,
        "counts": {
            "entries": report.entries,
            "tree_heads": report.heads,
            "cosignatures": report.cosignatures,
        },
        "export": export.document(),
        **{
            part: [v.document() for v in verdicts.get(part, [])]
            for part in ("entries", "tree_heads", "consistency", "cosignatures")
        },
    }


class _Keys:
    """Which key each actor holds as the log is replayed (joins and rotations)."""

    def __init__(self, coordinator_key: str, pinned: dict[str, str]) -> None:
        self.current: dict[str, str] = {COORDINATOR: coordinator_key}
        self.history: dict[str, list[str]] = {COORDINATOR: [coordinator_key]}
        self.pinned = pinned
        self.owners: dict[str, str] = {}  # dataset -> the member whose registration stands

    def holder(self, key: str) -> str | None:
        """Who has held this key, if anyone: a key names one actor, forever."""
        return next((actor for actor, held in self.history.items() if key in held), None)

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
        findings.append(Finding(where, f"unknown kind {entry.kind!r}", "unknown-kind"))
    if entry.kind == RECOVERED and (problem := recovery_problem(payload)) is not None:
        code, reason = problem
        findings.append(Finding(where, reason, code))
    if entry.kind == "consortium.created":
        if payload.get("coordinator_key") != registry.current[COORDINATOR]:
            findings.append(
                Finding(where, "names a coordinator key other than the export's", "coordinator-key")
            )
        return registry.current[COORDINATOR]
    if entry.kind == "member.joined":
        member, key = payload.get("member"), payload.get("public_key")
        if not (isinstance(member, str) and isinstance(key, str)):
            findings.append(
                Finding(where, "does not name the member and its public key", "malformed")
            )
            return None
        if entry.actor != member:
            findings.append(
                Finding(where, f"{entry.actor!r} signed the joining of {member!r}", "join-signer")
            )
        if member in registry.current:
            findings.append(Finding(where, f"{member!r} joins a second time", "join-twice"))
        if (holder := registry.holder(key)) not in (None, member):
            findings.append(Finding(where, f"joins with {holder!r}'s key", "key-reused"))
        pinned = registry.pinned.get(member)
        if pinned is not None and pinned != key:
            findings.append(
                Finding(
                    where,
                    f"{member!r} joined with a key other than the one pinned in the keys file",
                    "join-pinned",
                )
            )
        registry.set(member, key)
        return key
    if entry.kind in DEVICE_KINDS:
        key, problem = device_signer(entry.actor, payload)
        if problem is not None:
            findings.append(Finding(where, problem, "device-signer"))
        return key
    key = registry.current.get(entry.actor)
    if key is None:
        findings.append(
            Finding(
                where,
                f"signed by {entry.actor!r}, who had no registered key at that time",
                "no-key",
            )
        )
        return None
    if entry.kind == "member.key-rotated":
        _rotated(entry.actor, payload, key, registry, where, findings)
    elif entry.kind in ("dataset.registered", "dataset.updated"):
        _dataset_owner(entry.kind, entry.actor, payload, registry, where, findings)
    elif entry.kind == "privacy.charged" and (
        why := _charge_problem(entry.actor, payload, registry)
    ):
        findings.append(Finding(where, why, "privacy-charge"))
    elif entry.kind == "privacy.budget-set" and (
        why := _budget_problem(entry.actor, payload, registry)
    ):
        findings.append(Finding(where, why, "privacy-budget"))
    return key


def _charge_problem(actor: str, payload: dict[str, Any], registry: _Keys) -> str | None:
    """A node charges ε only to its own dataset, for a named job, and a positive finite ε."""
    job, dataset, epsilon = payload.get("job"), payload.get("dataset"), payload.get("epsilon")
    if not (isinstance(job, str) and isinstance(dataset, str)):
        return "does not name the job and the dataset charged"
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        return "does not name the ε charged as a number"
    if not (0 < epsilon < math.inf):
        return f"charges ε={epsilon}; a charge is positive and finite"
    if registry.owners.get(dataset) != actor:
        return f"{actor!r} charges {dataset!r}, which is not its dataset"
    return None


def _budget_problem(actor: str, payload: dict[str, Any], registry: _Keys) -> str | None:
    """Only a dataset's owner sets its lifetime ε, and a positive finite one: a coordinator
    cannot raise a dataset's budget under another member's name."""
    dataset, epsilon = payload.get("dataset"), payload.get("epsilon")
    if not isinstance(dataset, str):
        return "does not name the dataset whose budget it sets"
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        return "does not name the lifetime ε as a number"
    if not (0 < epsilon < math.inf):
        return f"sets a lifetime ε={epsilon}; a budget is positive and finite"
    if registry.owners.get(dataset) != actor or payload.get("member") != actor:
        return f"{actor!r} sets the budget of {dataset!r}, which is not its dataset"
    return None


def _rotated(
    actor: str,
    payload: dict[str, Any],
    key: str,
    registry: _Keys,
    where: str,
    findings: list[Finding],
) -> None:
    """A rotation counts only when the member signs it with the key it replaces."""
    new_key = payload.get("public_key")
    if not isinstance(new_key, str):
        findings.append(Finding(where, "does not name the new public key", "malformed"))
        return
    member = payload.get("member")
    if actor == COORDINATOR or member != actor or payload.get("previous_key") != key:
        findings.append(
            Finding(
                where,
                f"rotates {member!r}'s key, but is not signed by {member!r}'s previous key",
                "rotation-signer",
            )
        )
        return
    if (holder := registry.holder(new_key)) not in (None, actor):
        findings.append(Finding(where, f"rotates to {holder!r}'s key", "key-reused"))
        return
    registry.set(actor, new_key)


def _dataset_owner(
    kind: str,
    actor: str,
    payload: dict[str, Any],
    registry: _Keys,
    where: str,
    findings: list[Finding],
) -> None:
    """A dataset belongs to the member that first registered it; nobody else registers or
    updates it (its owner changes it with dataset.updated)."""
    dataset, member = payload.get("dataset"), payload.get("member")
    if not isinstance(dataset, str) or member != actor:
        problem = f"names the dataset's member {member!r}, but {actor!r} signed it"
    elif (owner := registry.owners.get(dataset)) == actor:
        return
    elif owner is not None:
        problem = f"{actor!r} claims {dataset!r}, which {owner!r} registered"
    elif kind == "dataset.registered":
        registry.owners[dataset] = actor
        return
    else:
        problem = f"updates {dataset!r}, which nobody registered"
    findings.append(Finding(where, problem, "dataset-owner"))


def royalty_code(what: str) -> str:
    """The audit code of a royalty mismatch (domain.royalty_audit names the field)."""
    if what in ("licence", "report", "distribution"):
        return f"royalty-{what}"
    return "royalty-payout"  # a recomputed figure, or the shares it was computed from


def audit(
    contents: ExportContents,
    *,
    pinned: dict[str, str] | None = None,
    verify_batch: BatchVerifier = verify_sequentially,
    royalties: bool = True,
) -> AuditReport:
    """Check everything in an export; the report lists each failing entry, head or cosignature.

    verifiers/js/verify.mjs makes exactly these checks in the same order: change one, change
    both (tests/verifiers holds them to agreeing, entry by entry). With `royalties`, every
    royalty is also recomputed (domain.royalty_audit); `kumiai royalties verify` turns that
    off to report the mismatches field by field itself.
    """
    pinned = pinned or {}
    findings: list[Finding] = []
    if COORDINATOR in pinned and pinned[COORDINATOR] != contents.coordinator_key:
        findings.append(
            Finding(
                "export header",
                "the coordinator key differs from the pinned one",
                "coordinator-pinned",
            )
        )
    registry = _Keys(contents.coordinator_key, pinned)
    minutes = Minutes()  # the board's record, every tally recomputed
    payouts = RoyaltyReplay()  # every royalty recomputed to the yen
    checks: list[SignatureCheck] = []
    checked_where: list[str] = []
    for position, leaf in enumerate(contents.leaves):
        where = f"entry {position}"
        try:
            signed = SignedEntry.from_leaf_bytes(leaf)
            message = signed.message()
        except InvalidInput as exc:
            findings.append(Finding(where, str(exc), "malformed"))
            continue
        if signed.entry.seq != position:
            findings.append(
                Finding(
                    where,
                    f"carries sequence number {signed.entry.seq}: an entry "
                    "before it was deleted, or entries were reordered",
                    "sequence",
                )
            )
        key = _entry_key(signed, registry, where, findings)
        findings.extend(Finding(where, why, code) for why, code in minutes.read(signed.entry))
        if royalties:
            payouts.read(replace(signed.entry, seq=position))
        if key is None:
            continue
        if signed.key_fingerprint != keys.fingerprint(key):
            findings.append(
                Finding(
                    where,
                    f"signed with key {signed.key_fingerprint}, which was "
                    f"not {signed.entry.actor!r}'s registered key at "
                    "that time",
                    "wrong-key",
                )
            )
            continue
        checks.append((key, message, signed.signature))
        checked_where.append(where)

    findings.extend(
        Finding(f"entry {m.seq}", str(m).split(": ", 1)[1], royalty_code(m.what))
        for m in (payouts.finish() if royalties else [])
    )
    tree = merkle.MerkleTree(merkle.leaf_hash(leaf.encode()) for leaf in contents.leaves)
    heads = sorted(contents.heads, key=lambda h: h.size)
    for head in heads:
        checks.append((contents.coordinator_key, canonical_json(head.document()), head.signature))
        checked_where.append(f"tree head {head.size}")
    by_size = {h.size: h for h in heads}
    cosignature_subjects: dict[str, dict[str, Any]] = {}
    for cosig in contents.cosignatures:
        where = f"cosignature of head {cosig.size} by {cosig.witness}"
        cosignature_subjects.setdefault(where, {"size": cosig.size, "witness": cosig.witness})
        head = by_size.get(cosig.size)
        witness_keys = registry.history.get(cosig.witness, [])
        if head is None or not witness_keys:
            findings.append(
                Finding(
                    where,
                    "names a head or witness that is not in the export",
                    "unknown-head-or-witness",
                )
            )
            continue
        message = canonical_json(cosign_document(head, cosig.witness))
        for key in witness_keys:  # a witness may have cosigned before rotating its key
            checks.append((key, message, cosig.signature))
            checked_where.append(where)

    valid: dict[str, bool] = {}
    for where, ok in zip(checked_where, verify_batch(checks), strict=True):
        valid[where] = valid.get(where, False) or ok
    findings.extend(
        Finding(where, "signature does not verify", "signature")
        for where, ok in valid.items()
        if not ok
    )

    seen: dict[int, str] = {}
    for head in heads:
        where = f"tree head {head.size}"
        if head.size in seen and seen[head.size] != head.root:
            findings.append(
                Finding(
                    where,
                    "two different roots for the same size: the coordinator forked its log",
                    "fork",
                )
            )
        seen[head.size] = head.root
        if head.size > tree.size:
            findings.append(
                Finding(
                    where,
                    f"claims {head.size} entries; the export holds "
                    f"{tree.size}: entries were deleted",
                    "too-large",
                )
            )
        elif tree.root(head.size).hex() != head.root:
            findings.append(
                Finding(
                    where,
                    "root does not match the entries: an entry up to "
                    f"{head.size} was changed, deleted or reordered",
                    "root",
                )
            )
    pairs: list[tuple[int, int]] = []
    for older, newer in itertools.pairwise(heads):
        if older.size >= newer.size or newer.size > tree.size:
            continue
        pairs.append((older.size, newer.size))
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
                    "inconsistent",
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
    subjects = {
        "export": {"export header": {}},
        "entries": {f"entry {i}": {"seq": i} for i in range(len(contents.leaves))},
        "tree_heads": {f"tree head {h.size}": {"size": h.size} for h in heads},
        "consistency": {f"tree heads {a} and {b}": {"from": a, "to": b} for a, b in pairs},
        "cosignatures": cosignature_subjects,
    }
    return AuditReport(
        len(contents.leaves),
        len(heads),
        len(contents.cosignatures),
        findings[:MAX_FINDINGS],
        tree.root().hex(),
        _verdicts(subjects, findings),
    )


def _verdicts(
    subjects: dict[str, dict[str, dict[str, Any]]], findings: list[Finding]
) -> dict[str, list[Verdict]]:
    by_where: dict[str, list[Finding]] = {}
    for finding in findings:
        by_where.setdefault(finding.where, []).append(finding)
    return {
        part: [Verdict(subject, tuple(by_where.get(where, ()))) for where, subject in named.items()]
        for part, named in subjects.items()
    }
