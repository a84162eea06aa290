"""An association for the report's tests, built by the real services: themes, a ranking,
funds received and allocated, spend, milestones accepted and rejected (A), and a licensed
model with contribution shares, a spin-out, revenue and royalties (B)."""

from datetime import date
from pathlib import Path
from typing import Any

from kumiai.services import funds, milestones, royalties, spend, themes
from kumiai.services.consortium import Consortium
from kumiai.services.licences import propose_licence
from kumiai.services.motions import propose_motion
from kumiai.services.spinouts import propose_spinout
from tests.services.licensing import MODEL, association, pass_motion

DAY = date(2027, 2, 1)  # after "paper" is due (2027-01-15), before "trial" (2027-06-30)
TITLE = "Heart <script>alert('x')</script>"


def _pass(consortium: Consortium, decision: str, payload: dict[str, Any]) -> None:
    motion = propose_motion(consortium, decision=decision, payload=payload, proposer="lab")
    pass_motion(consortium, motion.id)


def build_association(home: Path, tmp: Path) -> Consortium:
    """B's small association (a released model with contribution shares), then A's records."""
    consortium = association(home)
    themes.add_theme(consortium, name="medical", title="Medical AI", by="lab")
    themes.add_theme(consortium, name="agents", title=TITLE, description=TITLE, by="lab")
    themes.set_project_theme(consortium, "heart", "medical", "lab")
    _pass(consortium, "set-priorities", {"ranking": ["agents", "medical"]})
    funds.receive_funds(consortium, source="nedo", kind="grant", payer="NEDO", amount=10_000_000)
    funds.receive_funds(
        consortium, source="dues-2026", kind="dues", payer="kokoro-corp", amount=3_000_000
    )
    funds.receive_funds(consortium, source="vc", kind="investor", payer="VC", amount=2_000_001)
    _pass(
        consortium,
        "allocate-funds",
        {"project": "heart", "amount": 4_000_000, "source": "nedo", "site_rounds": 90},
    )
    _pass(consortium, "allocate-funds", {"project": "heart", "amount": 500_000, "source": "vc"})
    for category, amount, description in (
        ("personnel", 1_500_000, "research assistant"),
        ("compute", 333_333, f"GPU hours {TITLE}"),
        ("personnel", 66_667, "travel"),
    ):
        spend.record_spend(
            consortium,
            project="heart",
            category=category,
            amount=amount,
            description=description,
            by="lab",
            spent_on="2026-11-01",
        )
    for name, due in (
        ("first-model", "2026-12-31"),
        ("paper", "2027-01-15"),
        ("trial", "2027-06-30"),
    ):
        milestones.add_milestone(
            consortium, project="heart", name=name, title=name.title(), due=due, by="lab"
        )
    milestones.add_evidence(consortium, project="heart", name="first-model", models=(MODEL,))
    _pass(consortium, "accept-milestone", {"project": "heart", "milestone": "first-model"})
    document = tmp / "draft.pdf"
    document.write_bytes(b"draft")
    milestones.add_evidence(consortium, project="heart", name="paper", documents=(document,))
    _pass(
        consortium, "accept-milestone", {"project": "heart", "milestone": "paper", "reject": "true"}
    )
    spin = propose_spinout(
        consortium,
        name="kokoro-ai",
        founders=("lab", "cleveland-clinic"),
        theme=None,
        project="heart",
        proposer="kokoro-corp",
    )
    pass_motion(consortium, spin.id)
    grant = propose_licence(
        consortium,
        model=MODEL,
        licensee="kokoro-ai",
        field_of_use="cardiology triage",
        territory="JP",
        starts="2027-01-01",
        ends="2028-12-31",
        royalty_bp=500,
        restrictions=("no clinical decision without regulatory approval",),
        proposer="lab",
    )
    pass_motion(consortium, grant.id)
    for period, revenue in (("2027-Q1", 12_345_678), ("2027-Q2", 1_000_001)):
        royalties.report_revenue(
            consortium, "licence-1", period=period, revenue_yen=revenue, by="kokoro-ai"
        )
    return consortium
