"""One member's own page, `/ui/members/NAME`: its datasets' ε, its agreements and their
terms, the requests on its data and its decisions, the requests it made, its contribution
shares and royalties, and its witness status.

Read by that member's steward, the board and the operator (`domain.roles.
require_member_record`): another member's steward gets the 403 page. Each part calls the
service its CLI command calls (`budget`, `request list`, `agreement list`, `royalties
statement`, `ledger show --kind model.contributions`, `ledger witnesses`).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kumiai.domain.roles import Action, require_member_record
from kumiai.interfaces.web.context import Home, Viewer, needs, page
from kumiai.services import agreements, head_status, privacy, royalties, transparency
from kumiai.services.consortium import Consortium

router = APIRouter()


def contribution_shares(home: Consortium, datasets: set[str]) -> list[dict[str, Any]]:
    """Each model's newest `model.contributions` entry, the shares of `datasets` in it."""
    newest = {
        str(e.payload.get("model")): e
        for e in transparency.show_entries(home, kind="model.contributions")
    }
    found = []
    for model, entry in sorted(newest.items()):
        shares = entry.payload.get("shares")
        for dataset, share in sorted(shares.items() if isinstance(shares, dict) else ()):
            if dataset in datasets:
                found.append(
                    {
                        "model": model,
                        "dataset": dataset,
                        "share": share,
                        "metric": entry.payload.get("metric", ""),
                        "seq": entry.seq,
                    }
                )
    return found


@router.get("/members/{member}", response_class=HTMLResponse)
def member_show(
    request: Request,
    home: Home,
    viewer: Annotated[Viewer, needs(Action.MEMBER_RECORD_READ)],
    member: str,
) -> HTMLResponse:
    require_member_record(viewer.name, viewer.member, viewer.roles, member)
    statement = royalties.statements(home, member)  # NotFound for an unknown member
    budgets = [b for b in privacy.budgets(home) if b.member == member]
    requests = agreements.list_requests(home)
    terms = {r.id: r for r in requests}
    return page(
        request,
        "member.html",
        viewer,
        member=member,
        budgets=budgets,
        agreements=[
            (a, terms.get(a.request_id))
            for a in agreements.list_agreements(home)
            if a.steward == member
        ],
        decisions=[r for r in requests if r.steward == member],
        asked=[r for r in requests if r.requested_by == member],
        shares=contribution_shares(home, {b.dataset for b in budgets}),
        statement=statement.statements[0] if statement.statements else None,
        witness=next(
            (w for w in head_status.head_status(home).witnesses if w.member == member), None
        ),
    )
