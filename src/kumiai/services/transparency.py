"""Reading, proving, exporting, verifying and witnessing the transparency ledger."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from kumiai.adapters.files import write_atomic
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    CosignatureRow,
    LedgerEntryRow,
    MemberRow,
    TreeHeadRow,
)
from kumiai.domain import keys, merkle
from kumiai.domain.canonical import (
    has_lone_surrogate,
    load_json,
    require_version,
    whole_number,
)
from kumiai.domain.clock import to_iso, utc_now
from kumiai.domain.errors import InvalidInput, NotFound, UnsupportedVersion
from kumiai.domain.ledger import SignedEntry, TreeHead
from kumiai.domain.refusal import Refusal, parse_refusal_copy, unrecorded
from kumiai.domain.witness import WitnessVerdict
from kumiai.services.consortium import Consortium

if TYPE_CHECKING:  # the auditor's replay loads only to verify: `ledger show` never needs it
    from kumiai.domain.audit import AuditReport, ExportContents

EXPORT_TYPE = "kumiai.ledger-export"
EXPORT_VERSION = 2  # 2: entries, heads and cosignatures signed as RFC 8785 canonical JSON


@dataclass(frozen=True)
class EntryView:
    seq: int
    time: str
    actor: str
    kind: str
    payload: dict[str, Any]


def show_entries(
    consortium: Consortium,
    *,
    member: str | None = None,
    dataset: str | None = None,
    project: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
    after: int | None = None,
) -> list[EntryView]:
    """Entries in log order, filtered by subject or kind (a prefix such as 'agreement.').

    `after`: only entries whose seq is greater, so a reader can page through a long log.
    """
    query = select(LedgerEntryRow).order_by(LedgerEntryRow.seq)
    if after is not None:
        query = query.where(LedgerEntryRow.seq > after)
    if member:
        query = query.where((LedgerEntryRow.member == member) | (LedgerEntryRow.actor == member))
    if dataset:
        query = query.where(LedgerEntryRow.dataset == dataset)
    if project:
        query = query.where(LedgerEntryRow.project == project)
    if kind:
        query = query.where(LedgerEntryRow.kind.startswith(kind))
    with transaction(consortium.sessions) as session:
        rows = list(session.scalars(query))
    if limit is not None:
        rows = rows[-limit:]
    return [_view(row) for row in rows]


def _view(row: LedgerEntryRow) -> EntryView:
    entry = SignedEntry.from_leaf_bytes(row.leaf).entry
    return EntryView(entry.seq, to_iso(entry.time), entry.actor, entry.kind, entry.payload)


def _no_entry(seq: int, head: TreeHead | None) -> NotFound:
    size = head.size if head else 0
    return NotFound(f"no ledger entry {seq}; the log holds entries 0 to {size - 1}")


def show_entry(consortium: Consortium, seq: int) -> EntryView:
    """One entry, as `show_entries` shows it."""
    with transaction(consortium.sessions) as session:
        row = session.get(LedgerEntryRow, seq)
        if row is None:
            raise _no_entry(seq, consortium.ledger.latest_head(session))
        return _view(row)


def latest_head(consortium: Consortium) -> TreeHead:
    """The latest tree head the coordinator signed: what a witness checks and cosigns."""
    with transaction(consortium.sessions) as session:
        head = consortium.ledger.latest_head(session)
    if head is None:
        raise NotFound("the ledger has no tree head yet; it gets one with its first entry")
    return head


@dataclass(frozen=True)
class InclusionProof:
    seq: int
    leaf_hash: str
    head: TreeHead
    path: list[str]
    verified: bool

    def document(self) -> dict[str, Any]:
        """What `kumiai ledger prove` prints and the API returns."""
        return {
            "seq": self.seq,
            "leaf_hash": self.leaf_hash,
            "tree_size": self.head.size,
            "root": self.head.root,
            "head_signature": self.head.signature,
            "path": self.path,
            "verified": self.verified,
        }


def prove_inclusion(consortium: Consortium, seq: int) -> InclusionProof:
    """An inclusion proof of entry `seq` under the latest signed tree head."""
    with transaction(consortium.sessions) as session:
        head = consortium.ledger.latest_head(session)
        row = session.get(LedgerEntryRow, seq)
    if head is None or row is None or seq >= head.size:
        raise _no_entry(seq, head)
    tree = consortium.ledger.tree()
    path = tree.inclusion_proof(seq, head.size)
    verified = merkle.verify_inclusion(
        row.leaf_hash, seq, head.size, path, bytes.fromhex(head.root)
    )
    return InclusionProof(seq, row.leaf_hash.hex(), head, [p.hex() for p in path], verified)


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of `new_size` entries extends the tree of `old_size`: RFC 6962 §2.1.2."""

    old_size: int
    new_size: int
    old_root: str
    new_root: str
    path: list[str]
    verified: bool


def prove_consistency(consortium: Consortium, old_size: int, new_size: int) -> ConsistencyProof:
    """A consistency proof between two sizes of the log, up to the latest signed head."""
    head = latest_head(consortium)
    if not 0 <= old_size <= new_size:
        raise InvalidInput(
            f"a consistency proof goes from an older size to a newer one: got {old_size} to "
            f"{new_size}; give 0 <= old <= new"
        )
    if new_size > head.size:
        raise NotFound(
            f"the latest signed tree head has {head.size} entries; ask for a size up to that"
        )
    tree = consortium.ledger.tree()
    path = tree.consistency_proof(old_size, new_size)
    old_root, new_root = tree.root(old_size), tree.root(new_size)
    verified = merkle.verify_consistency(old_size, new_size, old_root, new_root, path)
    return ConsistencyProof(
        old_size, new_size, old_root.hex(), new_root.hex(), [p.hex() for p in path], verified
    )


def export_ledger(consortium: Consortium, path: Path) -> int:
    """Write the whole log as JSON lines: header, entries, tree heads, cosignatures."""
    data, count = export_lines(consortium)
    write_atomic(path, data)
    return count


def export_lines(consortium: Consortium) -> tuple[bytes, int]:
    """The export's bytes (JSON lines) and its number of entries, for a file or a download."""
    with transaction(consortium.sessions) as session:
        leaves = list(session.scalars(select(LedgerEntryRow.leaf).order_by(LedgerEntryRow.seq)))
        heads = list(session.scalars(select(TreeHeadRow.document).order_by(TreeHeadRow.size)))
        cosigs = list(
            session.scalars(
                select(CosignatureRow).order_by(CosignatureRow.size, CosignatureRow.witness)
            )
        )
        lines = [
            json.dumps(
                {
                    "type": EXPORT_TYPE,
                    "version": EXPORT_VERSION,
                    "exported_at": to_iso(utc_now()),
                    "coordinator_key": consortium.coordinator_public_key(),
                    "entries": len(leaves),
                },
                sort_keys=True,
            )
        ]
        lines += [json.dumps({"record": "entry", "leaf": leaf}) for leaf in leaves]
        lines += [
            json.dumps({"record": "tree-head", **json.loads(doc)}, sort_keys=True) for doc in heads
        ]
        lines += [
            json.dumps(
                {
                    "record": "cosignature",
                    "size": c.size,
                    "witness": c.witness,
                    "signature": c.signature,
                },
                sort_keys=True,
            )
            for c in cosigs
        ]
    return ("\n".join(lines) + "\n").encode(), len(leaves)


def read_export(path: Path) -> "ExportContents":
    """Parse an export; a malformed line is named by its number.

    verifiers/js/verify.mjs refuses exactly what this refuses (its exit code 2).
    """
    from kumiai.domain.audit import Cosignature, ExportContents

    if not path.is_file():
        raise InvalidInput(
            f"ledger export {path} does not exist; create one with `kumiai ledger export FILE`"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not UTF-8 text ({exc}); the export is malformed") from None
    contents = ExportContents("", [], [], [])
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip(" \t"):
            continue
        try:
            record = load_json(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            if ("\\ud" in line or "\\uD" in line) and has_lone_surrogate(record):
                raise ValueError("a string holds a lone surrogate, which is not Unicode text")
            if number == 1:
                require_version(
                    record,
                    EXPORT_TYPE,
                    EXPORT_VERSION,
                    what=f"{path}",
                    fix="Export it again with this kumiai, or verify it with the release "
                    "that wrote it.",
                )
                contents.coordinator_key = _text(record, "coordinator_key")
            elif record["record"] == "entry":
                contents.leaves.append(_text(record, "leaf"))
            elif record["record"] == "tree-head":
                signature = _text(record, "signature")
                contents.heads.append(
                    TreeHead.from_document({"head": record["head"], "signature": signature})
                )
            elif record["record"] == "cosignature":
                contents.cosignatures.append(
                    Cosignature(
                        whole_number(record["size"], "size"),
                        _text(record, "witness"),
                        _text(record, "signature"),
                    )
                )
            else:
                raise ValueError(f"unknown record {record['record']!r}")
        except UnsupportedVersion:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, InvalidInput) as exc:
            raise InvalidInput(f"{path}, line {number}: {exc}; the export is malformed") from None
    if not contents.coordinator_key:
        raise InvalidInput(f"{path} is empty; it is not a ledger export")
    return contents


def _text(record: dict[str, Any], name: str) -> str:
    value = record[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a string")
    return value


def read_pinned_keys(path: Path | None) -> dict[str, str]:
    """A JSON object {member: public key base64, "coordinator": ...} the auditor trusts."""
    if path is None:
        return {}
    try:
        keys = load_json(path.read_bytes().decode("utf-8"))
        if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
            raise ValueError("expected a JSON object of member -> public key (base64)")
        if has_lone_surrogate(keys):
            raise ValueError("a string holds a lone surrogate, which is not Unicode text")
        return dict(keys)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"keys file {path} cannot be used: {exc}") from None


def verify_export(
    path: Path, keys_file: Path | None = None, pinned: dict[str, str] | None = None
) -> "AuditReport":
    """Verify an export offline; `pinned` adds keys known otherwise (a node's pinned
    coordinator key) where the keys file names none."""
    from kumiai.adapters.signatures import verify_in_parallel
    from kumiai.domain.audit import audit

    keys = {**(pinned or {}), **read_pinned_keys(keys_file)}
    return audit(read_export(path), pinned=keys, verify_batch=verify_in_parallel)


def verify_ledger(consortium: Consortium, keys_file: Path | None = None) -> "AuditReport":
    """Export to a temporary file inside the home and verify that, exactly as an auditor would."""
    path = consortium.home / "ledger-verify.jsonl"
    export_ledger(consortium, path)
    try:
        return verify_export(path, keys_file)
    finally:
        path.unlink(missing_ok=True)


def member_keys(consortium: Consortium) -> dict[str, str]:
    """The keys to hand an auditor as a keys file: each member's key at joining.

    The verifier pins the key a `member.joined` entry names and follows `member.key-rotated`
    through the log itself, so a member's current key would fail its own join after a rotation.
    """
    with transaction(consortium.sessions) as session:
        keys = {m.name: m.public_key for m in session.scalars(select(MemberRow))}
        joins = session.scalars(
            select(LedgerEntryRow.leaf)
            .where(LedgerEntryRow.kind == "member.joined")
            .order_by(LedgerEntryRow.seq)
        )
        for leaf in joins:
            payload = SignedEntry.from_leaf_bytes(leaf).entry.payload
            keys[payload["member"]] = payload["public_key"]
    return {**keys, "coordinator": consortium.coordinator_public_key()}


def consistency_proofs(
    consortium: Consortium, head: TreeHead
) -> dict[str, tuple[int, list[bytes]]]:
    """Per witness: a proof from the last head it cosigned to `head`."""
    tree = consortium.ledger.tree()
    with transaction(consortium.sessions) as session:
        query = select(CosignatureRow.witness, func.max(CosignatureRow.size)).group_by(
            CosignatureRow.witness
        )
        last = {str(witness): int(size) for witness, size in session.execute(query)}
    return {
        w: (size, tree.consistency_proof(size, head.size))
        for w, size in last.items()
        if size <= head.size
    }


def record_cosignature(
    consortium: Consortium, witness: str, head: TreeHead, signature: str
) -> None:
    with transaction(consortium.sessions) as session:
        session.merge(
            CosignatureRow(size=head.size, witness=witness, signature=signature, time=utc_now())
        )


def witness_all(
    consortium: Consortium, members: Iterable[str] | None = None
) -> dict[str, WitnessVerdict]:
    """Every member's node on this machine (or only `members`') checks the latest head
    against its own and cosigns."""
    with transaction(consortium.sessions) as session:
        head = consortium.ledger.latest_head(session)
        names = list(session.scalars(select(MemberRow.name).order_by(MemberRow.name)))
    if members is not None:
        wanted = set(members)
        names = [n for n in names if n in wanted]
    if head is None:
        raise NotFound("the ledger has no tree head yet")
    tree = consortium.ledger.tree()
    verdicts: dict[str, WitnessVerdict] = {}
    for name in names:
        problems, found = unrecorded_refusals(consortium, name, head)
        if problems:  # a node does not vouch for a log that lacks what it said
            verdicts[name] = WitnessVerdict(False, "; ".join(problems))
            continue
        node = consortium.node(name)
        last = node.last_witnessed()
        proof = (
            tree.consistency_proof(last.size, head.size)
            if last and last.size <= head.size <= tree.size
            else []
        )
        result = node.witness(head, proof)
        verdicts[name] = result.verdict
        if result.cosignature:
            record_cosignature(consortium, name, head, result.cosignature)
            for refusal in found:  # cosigned with them in: erasing them now is a fork
                node.refusal_witnessed(refusal.job, refusal.dataset)
    return verdicts


def unrecorded_refusals(
    consortium: Consortium, member: str, head: TreeHead
) -> tuple[list[str], list[Refusal]]:
    """(problems, refusals found): this member's refusal copies against the log under `head`.

    Each refusal must be a `job.refused` entry signed by the member and included under the
    head; the node checks the inclusion proof itself before it cosigns.
    """
    node = consortium.node(member)
    public = node.steward_keys()
    copies = []
    for text in node.refusal_copies():
        try:
            refusal, signature = parse_refusal_copy(text)
        except InvalidInput:
            continue  # not a copy this node can stand behind
        if any(keys.verify(k, refusal.signed_bytes(), signature) for k in public):
            copies.append(refusal)
    if not copies:
        return [], []
    tree = consortium.ledger.tree()
    recorded: set[tuple[str, str]] = set()
    with transaction(consortium.sessions) as session:
        rows = session.execute(
            select(LedgerEntryRow.seq, LedgerEntryRow.dataset, LedgerEntryRow.leaf).where(
                LedgerEntryRow.kind == "job.refused",
                LedgerEntryRow.actor == member,
                LedgerEntryRow.seq < head.size,
            )
        )
        for seq, dataset, leaf in rows:
            proof = tree.inclusion_proof(seq, head.size)
            leaf_hash = merkle.leaf_hash(leaf.encode())
            if merkle.verify_inclusion(leaf_hash, seq, head.size, proof, bytes.fromhex(head.root)):
                job = str(json.loads(leaf)["entry"]["payload"].get("job", ""))
                recorded.add((job, str(dataset)))
    problems = unrecorded(copies, recorded)
    return problems, [c for c in copies if (c.job, c.dataset) in recorded]
