"""What every route shares: the consortium the server was started on, and the JSON reply.

Replies go through the CLI's `plain`, and are dumped the way `--json` prints them (sorted
keys, UTC times as `2026-11-27T12:00:00Z`), so a script reads the API and the CLI alike.
"""

import json
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from kumiai.interfaces.cli.output import plain
from kumiai.services.consortium import Consortium


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
