"""Spend against a project, recorded by its lead member, and its budget against actual.

Only the project's lead member (its proposer) records spend, and its own node signs the
entry: the lead answers for the project's money, and the coordinator cannot invent spend.
Overspend is recorded and shown, not refused (see domain.money.Budget).
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import MemberRow, ProjectRow, SpendRow
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput
from kumiai.domain.milestone import parse_date
from kumiai.domain.money import budget, check_spent_on, spend_category, yen
from kumiai.domain.project import require_lead
from kumiai.services.consortium import Consortium
from kumiai.services.funds import Allocation, project_allocations
from kumiai.services.ledger import Act
from kumiai.services.lookup import get
from kumiai.services.quota import QuotaInfo, quota_info
from kumiai.services.themes import project_theme


@dataclass(frozen=True)
class Spend:
    category: str
    amount_yen: int
    description: str
    spent_on: str
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class BudgetInfo:
    project: str
    theme: str | None
    lead: str
    allocated_yen: int  # the budget
    spent_yen: dict[str, int]  # actual, by category
    total_spent_yen: int
    left_yen: int  # below zero when overspent
    overspent: bool
    compute: QuotaInfo
    allocations: tuple[Allocation, ...]
    spends: tuple[Spend, ...]


def _spend(row: SpendRow) -> Spend:
    return Spend(
        row.category,
        row.amount_yen,
        row.description,
        row.spent_on,
        row.recorded_by,
        row.recorded_at,
    )


def record_spend(
    consortium: Consortium,
    *,
    project: str,
    category: str,
    amount: object,
    description: str,
    by: str,
    spent_on: str | None = None,
) -> BudgetInfo:
    """The lead member records money spent; its node signs the `spend.recorded` entry."""
    picked, amount_yen = spend_category(category), yen(amount)
    if not description.strip():
        raise InvalidInput("say what the money was spent on, e.g. --description 'GPU hours'")
    today = utc_now().date()
    day = today if spent_on is None else check_spent_on(parse_date(spent_on, "--on"), today)
    with transaction(consortium.sessions) as session:
        row = get(session, ProjectRow, project)
        get(session, MemberRow, by)
        require_lead(project, row.proposed_by, by, "record its spend")
        session.add(
            SpendRow(
                project=project,
                category=picked.value,
                amount_yen=amount_yen,
                description=description.strip(),
                spent_on=day.isoformat(),
                recorded_by=by,
                recorded_at=utc_now(),
            )
        )
        session.flush()
        payload = {
            "project": project,
            "category": picked.value,
            "amount_yen": amount_yen,
            "description": description.strip(),
            "spent_on": day.isoformat(),
        }
        consortium.ledger.append(
            session, Act(by, "spend.recorded", payload, member=by, project=project)
        )
        return _budget(session, row)


def _budget(session: Session, row: ProjectRow) -> BudgetInfo:
    allocations = project_allocations(session, row.name)
    spends = [
        _spend(s)
        for s in session.scalars(
            select(SpendRow).where(SpendRow.project == row.name).order_by(SpendRow.id)
        )
    ]
    figures = budget(
        sum(a.amount_yen for a in allocations), ((s.category, s.amount_yen) for s in spends)
    )
    return BudgetInfo(
        row.name,
        project_theme(session, row.name),
        row.proposed_by,
        figures.allocated,
        figures.spent,
        figures.total_spent,
        figures.left,
        figures.overspent,
        quota_info(session, row.name),
        tuple(allocations),
        tuple(spends),
    )


def project_budget(consortium: Consortium, project: str) -> BudgetInfo:
    with transaction(consortium.sessions) as session:
        return _budget(session, get(session, ProjectRow, project))
