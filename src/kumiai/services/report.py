"""The report, from a ledger that verifies: the consortium's own, or an export alone.

The report never reads the governance tables. It reads the ledger the way an auditor does
(`ledger export`, then `domain.audit.audit` over the export) and refuses to report from
a ledger that does not verify, naming the first problems. So an investor who holds only
an export (and, better, the members' keys from another channel) computes the very same
figures offline: `kumiai report --export ledger.jsonl --keys keys.json`.
"""

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from kumiai.adapters.signatures import verify_in_parallel
from kumiai.domain import merkle
from kumiai.domain.audit import ExportContents, audit
from kumiai.domain.bookkeeping import VerifiedLedger
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import StateError
from kumiai.domain.ledger import SignedEntry
from kumiai.domain.report import build_report
from kumiai.services.consortium import Consortium
from kumiai.services.transparency import export_ledger, read_export, read_pinned_keys

_SHOWN = 3  # problems named in a refusal; `kumiai ledger verify` lists them all


def verified_ledger(
    contents: ExportContents, source: str, pinned: dict[str, str] | None = None
) -> VerifiedLedger:
    """The entries under the latest signed head, once every check of the audit has passed."""
    result = audit(contents, pinned=pinned, verify_batch=verify_in_parallel)
    if not result.ok:
        shown = "; ".join(str(f) for f in result.findings[:_SHOWN])
        more = len(result.findings) - _SHOWN
        raise StateError(
            f"{source} does not verify, so no report is made from it: {shown}"
            + (f"; and {more} more" if more > 0 else "")
            + f"; see `kumiai ledger verify{'' if source.startswith('this') else ' ' + source}`"
        )
    if not contents.heads:
        raise StateError(f"{source} holds no signed tree head; there is nothing verified to report")
    head = max(contents.heads, key=lambda h: h.size)
    leaves = contents.leaves[: head.size]
    return VerifiedLedger(
        entries=tuple(SignedEntry.from_leaf_bytes(leaf).entry for leaf in leaves),
        leaf_hashes=tuple(merkle.leaf_hash(leaf.encode()).hex() for leaf in leaves),
        root=head.root,
        size=head.size,
        head_time=head.time,
        witnesses=tuple(sorted({c.witness for c in contents.cosignatures if c.size == head.size})),
    )


def report_from_export(
    path: Path,
    audience: str,
    *,
    member: str | None = None,
    on: date | None = None,
    keys_file: Path | None = None,
) -> dict[str, Any]:
    """The report from an export file alone: no consortium home, no database."""
    ledger = verified_ledger(read_export(path), str(path), read_pinned_keys(keys_file))
    return build_report(ledger, audience, on or utc_now().date(), member)


def consortium_report(
    consortium: Consortium,
    audience: str,
    *,
    member: str | None = None,
    on: date | None = None,
    keys_file: Path | None = None,
) -> dict[str, Any]:
    """The report from this consortium's ledger, exported and verified as an auditor would."""
    with tempfile.TemporaryDirectory(prefix="kumiai-report-") as folder:
        path = Path(folder) / "ledger.jsonl"
        export_ledger(consortium, path)
        contents = read_export(path)
    ledger = verified_ledger(contents, "this consortium's ledger", read_pinned_keys(keys_file))
    return build_report(ledger, audience, on or utc_now().date(), member)
