"""Revenue reports, the royalties they distribute, members' statements, offline recomputation.

A licensee's node signs its `revenue.reported`; in the same transaction the coordinator
computes the royalty with the pure rule (`domain.royalties.distribute`) from the licence's
terms, the charter's association share and the model's newest `model.contributions`
entry, and writes `royalties.distributed`. `verify_royalties` recomputes every one of them
from a ledger export alone (`domain.royalty_audit`).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.signatures import verify_in_parallel
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    DatasetRow,
    LedgerEntryRow,
    LicenceRow,
    MemberRow,
    ModelVersionRow,
    RevenueReportRow,
)
from kumiai.domain.audit import audit
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, StateError
from kumiai.domain.ledger import COORDINATOR, SignedEntry
from kumiai.domain.licence import LicenceTerms, check_revenue_report
from kumiai.domain.royalties import association_share, distribute
from kumiai.domain.royalty_audit import Mismatch, RoyaltyReplay
from kumiai.services.charter import adopted_charter
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.licences import RevenueLine, get_licence
from kumiai.services.lookup import get
from kumiai.services.transparency import read_export, read_pinned_keys


def latest_contributions(session: Session, model: ModelVersionRow) -> tuple[int, dict[str, Any]]:
    """The newest `model.contributions` entry of the model: its seq and payload."""
    leaves = session.execute(
        select(LedgerEntryRow.seq, LedgerEntryRow.leaf)
        .where(
            LedgerEntryRow.kind == "model.contributions",
            LedgerEntryRow.project == model.project,
        )
        .order_by(LedgerEntryRow.seq.desc())
    )
    for seq, leaf in leaves:
        payload = SignedEntry.from_leaf_bytes(leaf).entry.payload
        if payload.get("model") == model.id:
            return seq, payload
    raise StateError(
        f"model {model.id!r} has no contributions recorded, so its royalties cannot be split; "
        f"compute them first with `kumiai contributions {model.id}`"
    )


def report_revenue(
    consortium: Consortium, licence: str, *, period: str, revenue_yen: int, by: str
) -> RevenueLine:
    """The licensee reports a period's revenue; the royalties are distributed with it."""
    with transaction(consortium.sessions) as session:
        row = get_licence(session, licence)
        get(session, MemberRow, by)
        terms = LicenceTerms.from_document(json.loads(row.terms_json))
        done = set(
            session.scalars(
                select(RevenueReportRow.period).where(RevenueReportRow.licence == row.id)
            )
        )
        check_revenue_report(
            terms,
            licensee=row.licensee,
            reporter=by,
            period=period,
            revenue_yen=revenue_yen,
            reported_periods=done,
        )
        model = get(session, ModelVersionRow, row.model)
        seq, contributions = latest_contributions(session, model)
        shares = dict(contributions.get("shares") or {})
        owners = {
            d.name: d.member
            for d in session.scalars(select(DatasetRow).where(DatasetRow.name.in_(shares)))
        }
        result = distribute(
            revenue_yen,
            terms.royalty_rate_bp,
            association_share(adopted_charter(session)),
            shares,
            owners,
        )
        now = utc_now()
        report = RevenueReportRow(
            licence=row.id,
            period=period,
            revenue_yen=result.revenue_yen,
            royalty_yen=result.royalty_yen,
            association_yen=result.association_yen,
            payouts_json=json.dumps(result.payouts, sort_keys=True),
            contributions_seq=seq,
            reported_at=now,
        )
        session.add(report)
        session.flush()
        reported = {"licence": row.id, "period": period, "revenue_yen": revenue_yen}
        distributed = {
            "licence": row.id,
            "period": period,
            **result.document(),
            "contributions_seq": seq,
        }
        consortium.ledger.append_many(
            session,
            [
                Act(by, "revenue.reported", reported, member=by, project=model.project),
                Act(COORDINATOR, "royalties.distributed", distributed, project=model.project),
            ],
        )
        return RevenueLine(
            period,
            result.revenue_yen,
            result.royalty_yen,
            result.association_yen,
            result.payouts,
            seq,
            now,
        )


@dataclass(frozen=True)
class StatementLine:
    licence: str
    model: str
    period: str
    revenue_yen: int
    royalty_yen: int
    association_yen: int
    payout_yen: int


@dataclass(frozen=True)
class Statement:
    member: str
    lines: list[StatementLine]
    total_yen: int


@dataclass(frozen=True)
class Statements:
    statements: list[Statement]
    revenue_yen: int  # over every licence and period
    royalty_yen: int
    association_yen: int


def statements(consortium: Consortium, member: str | None = None) -> Statements:
    """Each member's payout per licence and period, with the royalty it came from."""
    with transaction(consortium.sessions) as session:
        if member is not None:
            get(session, MemberRow, member)
        rows = session.execute(
            select(RevenueReportRow, LicenceRow)
            .join(LicenceRow, LicenceRow.id == RevenueReportRow.licence)
            .order_by(RevenueReportRow.licence, RevenueReportRow.period)
        ).all()
    lines: dict[str, list[StatementLine]] = {member: []} if member else {}
    for report, licence in rows:
        for name, yen in sorted(json.loads(report.payouts_json).items()):
            if member is None or name == member:
                lines.setdefault(name, []).append(
                    StatementLine(
                        licence.id,
                        licence.model,
                        report.period,
                        report.revenue_yen,
                        report.royalty_yen,
                        report.association_yen,
                        yen,
                    )
                )
    return Statements(
        [Statement(m, ls, sum(x.payout_yen for x in ls)) for m, ls in sorted(lines.items())],
        sum(r.revenue_yen for r, _ in rows),
        sum(r.royalty_yen for r, _ in rows),
        sum(r.association_yen for r, _ in rows),
    )


@dataclass(frozen=True)
class RoyaltyVerification:
    export: str
    ledger_ok: bool  # signatures, tree, heads, cosignatures and minutes (kumiai ledger verify)
    ledger_findings: list[str]
    distributions: int  # royalties.distributed entries recomputed
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.ledger_ok and not self.mismatches


def _mismatch(m: Mismatch) -> dict[str, Any]:
    return {
        "seq": m.seq,
        "what": m.what,
        "member": m.member,
        "recorded": m.recorded,
        "recomputed": m.recomputed,
        "problem": str(m),
    }


def verify_royalties(path: Path, keys_file: Path | None = None) -> RoyaltyVerification:
    """Offline, from an export alone: the ledger audit (with the auditor's pinned keys, if
    given), then every royalty recomputed."""
    contents = read_export(path)
    report = audit(
        contents,
        pinned=read_pinned_keys(keys_file),
        verify_batch=verify_in_parallel,
        royalties=False,  # recomputed below, to report each mismatch field by field
    )
    replay = RoyaltyReplay()
    for leaf in contents.leaves:
        try:
            replay.read(SignedEntry.from_leaf_bytes(leaf).entry)
        except InvalidInput:
            continue  # malformed: the audit above names it
    return RoyaltyVerification(
        str(path),
        report.ok,
        [str(f) for f in report.findings],
        replay.checked,
        [_mismatch(m) for m in replay.finish()],
    )
