"""What every route shares: the consortium the server was started on, and the JSON reply.

Replies go through the CLI's `plain`, and are dumped the way `--json` prints them (sorted
keys, UTC times as `2026-11-27T12:00:00Z`), so a script reads the API and the CLI alike.
"""

import json
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from kumiai.interfaces.cli.output import plain
from kumiai.services.consortium import Consortium

# The largest integer SQLite and PostgreSQL (BIGINT) store: a bigger one is refused with a
# 400 before it reaches a query, where it overflowed into a 500 (found by the API's fuzzing).
STORED_INT_MAX = 2**63 - 1

Seq = Annotated[int, Path(ge=0, le=STORED_INT_MAX, description="An entry's seq, from 0.")]


def stored_int(description: str) -> Any:
    """A query integer within what the database stores, ≥ 0."""
    return Query(ge=0, le=STORED_INT_MAX, description=description)


class PlainJSON(JSONResponse):
    """`--json`'s bytes: `plain` values, sorted keys, UTF-8, no NaN."""

    def render(self, content: object) -> bytes:
        return json.dumps(
            plain(content), sort_keys=True, ensure_ascii=False, allow_nan=False
        ).encode()


def reply(document: object) -> PlainJSON:
    return PlainJSON(document)


async def _consortium(request: Request) -> Consortium:  # async: no thread for a lookup
    consortium: Consortium = request.app.state.consortium
    return consortium


Home = Annotated[Consortium, Depends(_consortium)]
