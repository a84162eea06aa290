"""What a page shows when it fails, on the coordinator's dashboard and the node's pages.

A mistake the viewer can fix (404, 403, 422, a refused act) is a page saying what was wrong,
with a link back. An unexpected error is a page that shows no traceback and no exception
text — they can hold paths, SQL or a record the viewer may not read — only a reference id;
the same id is logged with the traceback, so the operator finds it from what the viewer
reports.
"""

import logging
import secrets

from fastapi import Request
from fastapi.exceptions import RequestValidationError

log = logging.getLogger("kumiai.web")
UNEXPECTED = (
    "Something went wrong on the server. Give the operator the reference {reference}: the "
    "server's log holds the details under it."
)


def log_unexpected(request: Request, exc: BaseException) -> str:
    """Log `exc` with its traceback under a new reference id, and return the id."""
    reference = f"err-{secrets.token_hex(6)}"
    log.error(
        "unexpected error %s on %s %s", reference, request.method, request.url.path, exc_info=exc
    )
    return reference


def invalid_message(exc: RequestValidationError) -> str:
    """Which part of the address was wrong, and how (e.g. `path seq: Input should be a valid
    integer, unable to parse string as an integer`)."""
    return "; ".join(
        f"{' '.join(str(part) for part in e['loc'])}: {e['msg']}" for e in exc.errors()
    )
