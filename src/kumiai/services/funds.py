"""Funds: money received into sources, and allocated to projects by passed motions.

The coordinator (the association's secretariat, which keeps the books) records money
received, signed with its own key; nobody else holds the bank statement. Money leaves a
source only by a passed `allocate-funds` motion, and never more than the source's
unallocated balance: refused at the proposal, and the motion void at the close if another
allocation spent the balance in the meantime.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import FundAllocationRow, FundReceiptRow, MemberRow, ProjectRow
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, NotFound, StateError
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.money import balances, check_allocation, fund_kind, positive_whole, yen
from kumiai.domain.names import check_slug
from kumiai.domain.project import ProjectStatus
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get


@dataclass(frozen=True)
class Receipt:
    kind: str
    payer: str
    amount_yen: int
    note: str
    received_at: datetime


@dataclass(frozen=True)
class Allocation:
    project: str
    source: str
    amount_yen: int
    site_rounds: int | None
    motion: str
    allocated_at: datetime


@dataclass(frozen=True)
class SourceInfo:
    source: str
    kind: str
    received_yen: int
    allocated_yen: int
    unallocated_yen: int
    receipts: tuple[Receipt, ...]
    allocations: tuple[Allocation, ...]


@dataclass(frozen=True)
class FundsInfo:
    sources: tuple[SourceInfo, ...]
    received_yen: int
    allocated_yen: int
    unallocated_yen: int  # the balance: received - allocated


def _allocation(row: FundAllocationRow) -> Allocation:
    return Allocation(
        row.project, row.source, row.amount_yen, row.site_rounds, row.motion, row.allocated_at
    )


def _funds(session: Session) -> FundsInfo:
    receipts: dict[str, list[FundReceiptRow]] = defaultdict(list)
    for r in session.scalars(select(FundReceiptRow).order_by(FundReceiptRow.id)):
        receipts[r.source].append(r)
    allocations: dict[str, list[FundAllocationRow]] = defaultdict(list)
    for a in session.scalars(select(FundAllocationRow).order_by(FundAllocationRow.allocated_at)):
        allocations[a.source].append(a)
    sums = balances(
        {s: sum(r.amount_yen for r in rows) for s, rows in receipts.items()},
        {s: sum(a.amount_yen for a in rows) for s, rows in allocations.items()},
    )
    sources = tuple(
        SourceInfo(
            source,
            receipts[source][0].kind,
            figures["received"],
            figures["allocated"],
            figures["unallocated"],
            tuple(
                Receipt(r.kind, r.payer, r.amount_yen, r.note, r.received_at)
                for r in receipts[source]
            ),
            tuple(_allocation(a) for a in allocations[source]),
        )
        for source, figures in sums.items()
    )
    received = sum(s.received_yen for s in sources)
    allocated = sum(s.allocated_yen for s in sources)
    return FundsInfo(sources, received, allocated, received - allocated)


def list_funds(consortium: Consortium) -> FundsInfo:
    with transaction(consortium.sessions) as session:
        return _funds(session)


def source_info(session: Session, source: str) -> SourceInfo:
    for info in _funds(session).sources:
        if info.source == source:
            return info
    raise NotFound(
        f"unknown fund source {source!r}; see `kumiai funds`, or record money into it with "
        "`kumiai funds receive`"
    )


def receive_funds(
    consortium: Consortium, *, source: str, kind: str, payer: str, amount: object, note: str = ""
) -> SourceInfo:
    """The coordinator records money received into a source (several receipts may add up)."""
    check_slug(source, "fund source")
    picked, amount_yen = fund_kind(kind), yen(amount)
    if not payer.strip():
        raise InvalidInput("say who the money came from, e.g. --from minami-corp")
    with transaction(consortium.sessions) as session:
        earlier = session.scalars(
            select(FundReceiptRow.kind).where(FundReceiptRow.source == source).limit(1)
        ).first()
        if earlier is not None and earlier != picked.value:
            raise InvalidInput(
                f"source {source!r} holds {earlier} money, not {picked.value}; "
                "record it under another source"
            )
        session.add(
            FundReceiptRow(
                source=source,
                kind=picked.value,
                payer=payer.strip(),
                amount_yen=amount_yen,
                note=note.strip(),
                received_at=utc_now(),
            )
        )
        session.flush()
        payload = {
            "source": source,
            "kind": picked.value,
            "from": payer.strip(),
            "amount_yen": amount_yen,
            "note": note.strip(),
        }
        member = payer.strip() if session.get(MemberRow, payer.strip()) else None
        consortium.ledger.append(
            session, Act(COORDINATOR, "funds.received", payload, member=member)
        )
        return source_info(session, source)


@dataclass(frozen=True)
class AllocationAsked:
    project: str
    source: str
    amount_yen: int
    site_rounds: int | None


def check_allocation_act(session: Session, payload: dict[str, Any]) -> AllocationAsked:
    """What an allocate-funds motion may ask: a known project and source, a whole amount no
    larger than the source's unallocated balance, and optionally a compute quota."""
    if "source" not in payload:
        raise InvalidInput(
            "an allocate-funds motion must name the source; add --set source=... "
            "(see `kumiai funds`)"
        )
    amount = yen(payload["amount"], "the amount to allocate")
    raw = payload.get("site_rounds")
    quota = None if raw is None else positive_whole(raw, "site_rounds (rounds x sites)")
    project = get(session, ProjectRow, str(payload["project"]))
    if project.status == ProjectStatus.CLOSED.value:
        raise StateError(f"project {project.name!r} is closed; it takes no more funds")
    source = source_info(session, str(payload["source"]))
    check_allocation(amount, source.source, source.unallocated_yen)
    return AllocationAsked(project.name, source.source, amount, quota)


def allocate_by_motion(
    consortium: Consortium, session: Session, payload: dict[str, Any], motion: str
) -> None:
    """Carry out a passed allocate-funds motion, in the transaction that closes it."""
    asked = check_allocation_act(session, payload)
    session.add(
        FundAllocationRow(
            motion=motion,
            project=asked.project,
            source=asked.source,
            amount_yen=asked.amount_yen,
            site_rounds=asked.site_rounds,
            allocated_at=utc_now(),
        )
    )
    session.flush()
    entry = {
        "project": asked.project,
        "amount_yen": asked.amount_yen,
        "source": asked.source,
        "motion": motion,
        "site_rounds": asked.site_rounds,
    }
    consortium.ledger.append(
        session, Act(COORDINATOR, "funds.allocated", entry, project=asked.project)
    )


def project_allocations(session: Session, project: str) -> list[Allocation]:
    rows = session.scalars(
        select(FundAllocationRow)
        .where(FundAllocationRow.project == project)
        .order_by(FundAllocationRow.allocated_at, FundAllocationRow.motion)
    )
    return [_allocation(r) for r in rows]
