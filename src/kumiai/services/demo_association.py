"""The demo's second half: what the association does with the model once it is released.

Each member's contribution is computed (its extra ε charged at each hospital's node first),
the board spins out a company from the project and licenses the model to it, the spin-out
reports revenue, and the royalties are split and then recomputed offline from an export
alone. Every step goes through the same services as the CLI.
"""

from dataclasses import dataclass
from pathlib import Path

from kumiai.services.consortium import Consortium
from kumiai.services.contribution import (
    Contributions,
    compute_contributions,
    plan_model_contributions,
)
from kumiai.services.licences import RevenueLine, propose_licence
from kumiai.services.motions import cast_vote, close_motion, show_motion
from kumiai.services.royalties import RoyaltyVerification, report_revenue, verify_royalties
from kumiai.services.spinouts import propose_spinout
from kumiai.services.transparency import export_ledger

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


def run_association(
    consortium: Consortium,
    model: str,
    *,
    project: str,
    founder: str,
    proposer: str,
    abstaining: tuple[str, ...],
) -> AssociationReport:
    """Contributions, a spin-out, a licence, revenue, and royalties verified offline."""
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
        contributions, SPINOUT, licence, revenue, verify_royalties(export), export
    )
