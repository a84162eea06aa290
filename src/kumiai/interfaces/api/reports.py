"""The investor, member or board report (`kumiai report --json`), from the verified ledger.

The coordinator exports and verifies its own ledger and builds the report with the service
the CLI calls; a client renders it (Markdown, HTML) itself. A reader who trusts no server
downloads `/ledger/export` and runs `kumiai report --export FILE --keys KEYS` instead.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from kumiai.domain.bookkeeping import day_of
from kumiai.domain.report import audience_of
from kumiai.domain.roles import Action
from kumiai.interfaces.api.auth import allow
from kumiai.interfaces.api.context import Home, PlainJSON, reply
from kumiai.interfaces.api.openapi import ok
from kumiai.services.report import consortium_report

router = APIRouter(tags=["report"])


@router.get(
    "/report",
    summary="`kumiai report --for AUDIENCE --json`",
    dependencies=[allow(Action.REPORT_READ)],
    responses=ok(dict[str, Any]),
)
def report(
    home: Home,
    audience: Annotated[str, Query(description="investor, member or board (`--for`).")],
    member: Annotated[str | None, Query(description="With audience=member: whose.")] = None,
    date: Annotated[str | None, Query(description="YYYY-MM-DD; default: today, UTC.")] = None,
) -> PlainJSON:
    on = day_of(date) if date is not None else None
    return reply(consortium_report(home, audience_of(audience), member=member, on=on))
