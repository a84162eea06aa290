"""The demo's association: money and milestones around the project, and what the board
does with the model once it is released.

Before training, a grant and a member's dues come in and the board allocates funds (with a
compute quota) to the project, whose lead sets a milestone. After it, the lead records
spend and offers the released model as the milestone's evidence, which the board accepts;
each member's contribution is computed (its extra ε charged at each hospital's node first);
the board spins out a company and licenses the model to it; the spin-out reports revenue,
and the royalties are split and then recomputed offline from an export alone. Every step
goes through the same services as the CLI.
"""

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from kumiai.domain.clock import utc_now
from kumiai.services.consortium import Consortium
from kumiai.services.contribution import (
    Contributions,
    compute_contributions,
    plan_model_contributions,
)
from kumiai.services.funds import receive_funds
from kumiai.services.licences import RevenueLine, propose_licence
from kumiai.services.milestones import add_evidence, add_milestone
from kumiai.services.motions import cast_vote, close_motion, propose_motion, show_motion
from kumiai.services.royalties import RoyaltyVerification, report_revenue, verify_royalties
from kumiai.services.spend import BudgetInfo, project_budget, record_spend
from kumiai.services.spinouts import propose_spinout
from kumiai.services.transparency import export_ledger

THEME = "medical"
GRANT, DUES = "national-ai-grant-2026", "member-dues-2026"
ALLOCATIONS = ((GRANT, 20_000_000), (DUES, 5_000_000))  # to the project, by board motion
SITE_ROUNDS = 120  # the compute quota: the 30-round job at 3 sites, and room for another
MILESTONE = "first-model"
SPEND = (  # (category, yen, what) the project's lead records once the model is out
    ("personnel", 6_500_000, "two research engineers, one quarter"),
    ("compute", 420_000, "coordinator server and the hospitals' node machines"),
)
SPINOUT = "kokoro-cardio"
REVENUE_YEN = 48_000_000  # the spin-out's first quarter
PERIOD = "2027-Q1"
LICENCE_TERMS = {
    "field_of_use": "decision support for coronary artery disease screening",
    "territory": "JP",
    "starts": "2027-01-01",
    "ends": "2029-12-31",
    "royalty_bp": 500,
    "restrictions": ("no clinical decision without regulatory approval",),
}


@dataclass
class AssociationReport:
    budget: BudgetInfo  # allocated against spent, by category
    milestone: str  # the milestone the released model met, accepted by the board
    contributions: Contributions
    spinout: str
    licence: str
    revenue: RevenueLine
    royalties: RoyaltyVerification  # recomputed offline from `export`
    export: Path


def pass_by_board(consortium: Consortium, motion: str, abstaining: tuple[str, ...]) -> None:
    """Every eligible seat votes yes (or abstains), then the motion is closed at once."""
    for seat in show_motion(consortium, motion).eligible:
        cast_vote(consortium, motion, seat, "abstain" if seat in abstaining else "yes")
    closed = close_motion(consortium, motion)  # every seat has voted: no need to wait
    if closed.status != "passed":
        raise RuntimeError(f"the demo's motion {motion} failed: {closed.tally}")


def fund_the_project(
    consortium: Consortium,
    project: str,
    *,
    lead: str,
    payer: str,
    proposer: str,
    abstaining: tuple[str, ...],
) -> None:
    """Money in, allocated by the board with a compute quota; the lead sets a milestone."""
    receive_funds(
        consortium, source=GRANT, kind="grant", payer="national research funding agency",
        amount=25_000_000, note="AI for healthcare, 2026 call",
    )  # fmt: skip
    receive_funds(consortium, source=DUES, kind="dues", payer=payer, amount=10_000_000)
    for source, amount in ALLOCATIONS:
        quota = {"site_rounds": SITE_ROUNDS} if source == GRANT else {}
        allocation = propose_motion(
            consortium,
            decision="allocate-funds",
            payload={"project": project, "amount": amount, "source": source, **quota},
            proposer=proposer,
        )
        pass_by_board(consortium, allocation.id, abstaining)
    due = (utc_now() + timedelta(days=90)).date().isoformat()
    add_milestone(
        consortium, project=project, name=MILESTONE, by=lead, due=due,
        title="A federated model validated at every participating hospital",
    )  # fmt: skip


def run_association(
    consortium: Consortium,
    model: str,
    *,
    project: str,
    lead: str,
    founder: str,
    proposer: str,
    abstaining: tuple[str, ...],
) -> AssociationReport:
    """Spend, the milestone met, contributions, a spin-out, a licence, royalties verified."""
    for category, amount, what in SPEND:
        record_spend(
            consortium, project=project, category=category, amount=amount, description=what,
            by=lead,
        )  # fmt: skip
    add_evidence(consortium, project=project, name=MILESTONE, by=lead, models=(model,))
    accept = propose_motion(
        consortium,
        decision="accept-milestone",
        payload={"project": project, "milestone": MILESTONE},
        proposer=proposer,
    )
    pass_by_board(consortium, accept.id, abstaining)
    contributions = compute_contributions(consortium, plan_model_contributions(consortium, model))
    spinout = propose_spinout(
        consortium, name=SPINOUT, founders=(founder,), theme=None, project=project,
        proposer=proposer,
    )  # fmt: skip
    pass_by_board(consortium, spinout.id, abstaining)
    grant = propose_licence(
        consortium, model=model, licensee=SPINOUT, proposer=proposer, **LICENCE_TERMS
    )
    pass_by_board(consortium, grant.id, abstaining)
    licence = str(grant.payload["licence"])
    revenue = report_revenue(
        consortium, licence, period=PERIOD, revenue_yen=REVENUE_YEN, by=SPINOUT
    )
    export = consortium.home / "ledger-export.jsonl"
    export_ledger(consortium, export)
    return AssociationReport(
        project_budget(consortium, project),
        MILESTONE,
        contributions,
        SPINOUT,
        licence,
        revenue,
        verify_royalties(export),
        export,
    )
