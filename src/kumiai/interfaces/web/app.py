"""The dashboard: server-rendered pages under `/ui` of the coordinator's app.

A sub-application, so its errors are pages (not the API's JSON) and it stays out of the
API's OpenAPI schema. Every response carries a strict Content-Security-Policy: everything
from this server only — htmx and the stylesheet are vendored under `static/` — no inline
script or style, no frames, forms posting only here.
"""

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from kumiai.domain.errors import KumiaiError
from kumiai.interfaces.api import app as api  # its error statuses; it mounts this app
from kumiai.interfaces.web import association, governance, ledger
from kumiai.interfaces.web.context import LOCAL_READER, PACKAGE, page
from kumiai.services.consortium import Consortium

PREFIX = "/ui"
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def _error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, KumiaiError):
        status, message = api.status_of(exc), str(exc)
    else:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        message = f"no page {request.url.path}" if status == 404 else str(exc.detail)
    response = page(request, "error.html", LOCAL_READER, status=status, message=message)
    response.status_code = status
    return response


def create_dashboard(consortium: Consortium) -> FastAPI:
    """The pages over `consortium`, to mount at PREFIX."""
    dashboard = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    dashboard.state.consortium = consortium

    @dashboard.middleware("http")
    async def _policy(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(HEADERS)
        return response

    dashboard.add_exception_handler(KumiaiError, _error_page)
    dashboard.add_exception_handler(HTTPException, _error_page)
    dashboard.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")
    for module in (governance, ledger, association):
        dashboard.include_router(module.router)
    return dashboard


def add_dashboard(app: FastAPI) -> None:
    """Mount the dashboard at `/ui` of the coordinator's app, over the same consortium."""
    app.mount(PREFIX, create_dashboard(app.state.consortium), name="dashboard")
