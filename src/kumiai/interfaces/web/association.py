"""The board (`charter show`, `motion list`, each open motion's tally so far) and the
investor's view (`kumiai report --for investor`), read-only."""

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kumiai.interfaces.reports.html import STYLE, render_body
from kumiai.interfaces.web.context import Home, Seen, html, page, path_to
from kumiai.services import charter, motions, report

router = APIRouter()
# The report cites entries as in-page anchors; here each goes to its entry's page. User text
# is escaped (a quote becomes &quot;), so only the report's own links can match.
CITATION = re.compile(r'href="#entry-(\d+)"')


@router.get("/board", response_class=HTMLResponse)
def board(request: Request, home: Home, viewer: Seen) -> HTMLResponse:
    """Charters, and every motion: an open one's tally if it closed now, a closed one's."""
    listing = motions.list_motions(home)
    previews = {m.id: motions.preview(home, m.id).document() for m in listing if m.status == "open"}
    return page(
        request,
        "board.html",
        viewer,
        charters=charter.list_charters(home),
        open_motions=[m for m in listing if m.status == "open"],
        closed_motions=[m for m in listing if m.status != "open"],
        previews=previews,
    )


@router.get("/investor", response_class=HTMLResponse)
def investor(request: Request, home: Home, viewer: Seen) -> HTMLResponse:
    """The investor report from the verified ledger; each figure's citations link to the
    entries' pages (and from there to their inclusion proofs)."""
    doc = report.consortium_report(home, "investor")
    body = CITATION.sub(
        lambda m: f'href="{path_to(request, "entry", seq=m.group(1))}"', render_body(doc)
    )
    return page(request, "investor.html", viewer, report=html(body), doc=doc)


@router.get("/report.css")
def report_style() -> Response:
    """The report's own stylesheet, served rather than inline (the policy forbids inline)."""
    return Response(STYLE, media_type="text/css")
