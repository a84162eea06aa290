"""The coordinator's FastAPI application over one consortium home (read routes only).

Errors are kumiai's: NotFound → 404, InvalidInput → 400, StateError → 409, each as
`{"error": message}`, and never a traceback. The services were written for one caller at a
time (the ledger keeps its Merkle tree in memory), so the routes run one at a time.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from kumiai.domain.errors import (
    Forbidden,
    InvalidInput,
    KumiaiError,
    NotFound,
    StateError,
    Unauthenticated,
)
from kumiai.interfaces.api import (
    access,
    acts,
    association,
    governance,
    jobs,
    ledger,
    reports,
    witness,
)
from kumiai.interfaces.api.context import PlainJSON
from kumiai.interfaces.api.docs import add_docs
from kumiai.interfaces.api.openapi import document_errors, error_responses
from kumiai.interfaces.web.app import add_dashboard
from kumiai.services.consortium import open_consortium

STATUS: dict[type[KumiaiError], int] = {
    NotFound: 404,
    InvalidInput: 400,
    StateError: 409,
    Unauthenticated: 401,
    Forbidden: 403,
}


def status_of(error: KumiaiError) -> int:
    """The HTTP status of a kumiai error, by its class (a subclass takes its parent's)."""
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def _error(status: int, message: str) -> PlainJSON:
    return PlainJSON({"error": message}, status_code=status)


async def _kumiai_error(request: Request, exc: Exception) -> PlainJSON:
    assert isinstance(exc, KumiaiError)
    return _error(status_of(exc), str(exc))


async def _invalid_request(request: Request, exc: Exception) -> PlainJSON:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
        for e in exc.errors()
    )
    return _error(400, f"{problems}; see /docs for this route's parameters")


async def _http_error(request: Request, exc: Exception) -> PlainJSON:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _error(404, f"no route {request.url.path}; see /docs for the routes")
    return _error(exc.status_code, str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> PlainJSON:
    return _error(500, f"internal error ({type(exc).__name__}); the server's log has details")


@asynccontextmanager
async def _one_at_a_time(app: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = 1
    yield


def create_app(home: Path, *, dashboard: bool = True, local_operator: bool = False) -> FastAPI:
    """The API over the consortium at `home`; refused at once if there is none.

    `dashboard` mounts the pages at `/ui`, behind sign-in with the member's key and the
    API's own role table. `local_operator` signs a viewer calling from loopback in as the
    operator without a key: only `kumiai demo --serve`, bound to 127.0.0.1, sets it.
    """
    app = FastAPI(
        title="kumiai coordinator",
        summary="A research consortium's governance records, members' signed acts, and its "
        "transparency ledger.",
        version="1",
        docs_url=None,
        redoc_url=None,
        default_response_class=PlainJSON,
        lifespan=_one_at_a_time,
        responses=error_responses(400, 404, 409),
    )
    app.state.consortium = open_consortium(home)
    app.state.consortium.served = True  # members' nodes sign their own acts, never the server
    app.state.superlink = None  # `coordinator serve --superlink-port` sets it: jobs run there
    app.state.job_runner = None  # services.training.train (tests put a stand-in here)
    app.add_exception_handler(KumiaiError, _kumiai_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.include_router(governance.router)
    app.include_router(association.router)
    app.include_router(ledger.router)
    app.include_router(reports.router)
    app.include_router(witness.router)
    app.include_router(access.router)
    app.include_router(acts.router)
    app.include_router(jobs.router)
    add_docs(app)
    document_errors(app)
    if dashboard:
        add_dashboard(app, local_operator=local_operator)
    return app
