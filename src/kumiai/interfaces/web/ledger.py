"""The ledger's pages: the entry browser (`ledger show`), one entry with its inclusion
proof (`ledger prove`), a consistency check between two sizes, and the export."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from kumiai.domain.proof_path import inclusion_steps
from kumiai.interfaces.web.context import Home, Seen, page
from kumiai.services import transparency

router = APIRouter(prefix="/ledger")
SHOWN = 200  # the browser shows the last SHOWN matching entries; filters narrow it


def _blank(value: str | None) -> str | None:
    """An empty filter field means no filter."""
    return (value.strip() or None) if value is not None else None


@router.get("", response_class=HTMLResponse)
def entries(
    request: Request,
    home: Home,
    viewer: Seen,
    kind: str | None = None,
    member: str | None = None,
    project: str | None = None,
) -> HTMLResponse:
    filters = {"kind": _blank(kind), "member": _blank(member), "project": _blank(project)}
    found = transparency.show_entries(home, limit=SHOWN, **filters)
    head = transparency.latest_head(home)
    return page(
        request,
        "ledger.html",
        viewer,
        entries=list(reversed(found)),
        filters=filters,
        head=head,
        shown=SHOWN,
    )


@router.get("/entries/{seq}", response_class=HTMLResponse)
def entry(request: Request, home: Home, viewer: Seen, seq: int) -> HTMLResponse:
    """One entry and its inclusion proof under the latest signed head, as the path: each
    step's sibling, its side and the hash they make, the last one the signed root."""
    proof = transparency.prove_inclusion(home, seq)
    steps = inclusion_steps(
        bytes.fromhex(proof.leaf_hash), seq, proof.head.size, [bytes.fromhex(p) for p in proof.path]
    )
    return page(
        request,
        "entry.html",
        viewer,
        entry=transparency.show_entry(home, seq),
        proof=proof,
        steps=[(s.sibling.hex(), s.side, s.result.hex()) for s in steps or ()],
    )


@router.get("/consistency", response_class=HTMLResponse)
def consistency(
    request: Request,
    home: Home,
    viewer: Seen,
    old: Annotated[int | None, Query()] = None,
    new: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    """The form, and with both sizes the proof that the newer tree extends the older."""
    head = transparency.latest_head(home)
    proof = None
    if old is not None and new is not None:
        proof = transparency.prove_consistency(home, old, new)
    return page(
        request,
        "consistency.html",
        viewer,
        head=head,
        proof=proof,
        old=old if old is not None else max(head.size - 1, 0),
        new=new if new is not None else head.size,
    )


@router.get("/export")
def export(home: Home) -> Response:
    """`kumiai ledger export`: the whole log as JSON lines, to verify offline."""
    data, _ = transparency.export_lines(home)
    return Response(
        data,
        media_type="application/jsonl",
        headers={"Content-Disposition": 'attachment; filename="ledger-export.jsonl"'},
    )
