"""An association for the report's tests, built by the real services: a licensed model
with contribution shares, a spin-out, revenue and royalties paid."""

from datetime import date
from pathlib import Path

from kumiai.services import royalties
from kumiai.services.consortium import Consortium
from kumiai.services.licences import propose_licence
from kumiai.services.spinouts import propose_spinout
from tests.services.licensing import MODEL, association, pass_motion

DAY = date(2027, 2, 1)


def build_association(home: Path) -> Consortium:
    """B's small association (a released model with contribution shares), licensed."""
    consortium = association(home)
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
