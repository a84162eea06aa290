"""The dashboard: server-rendered pages under `/ui` of the coordinator's app.

A sub-application, so its errors are pages (not the API's JSON) and it stays out of the
API's OpenAPI schema. Every response carries a strict Content-Security-Policy: everything
from this server only — htmx and the stylesheet are vendored under `static/` — no inline
script or style, no frames, forms posting only here.

Every page declares its action (`context.needs`) and every viewer signs in with its key
(`signin`); an anonymous viewer asking for more than the public ledger is sent to sign in.
"""

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from kumiai.domain.errors import KumiaiError
from kumiai.interfaces.api import app as api  # its error statuses; it mounts this app
from kumiai.interfaces.web import association, governance, ledger, members, signin
from kumiai.interfaces.web.context import (
    ANONYMOUS,
    PACKAGE,
    SignInNeeded,
    current_viewer,
    page,
    path_to,
)
from kumiai.interfaces.web.errors import UNEXPECTED, invalid_message, log_unexpected
from kumiai.interfaces.web.policy import HEADERS, POLICY
from kumiai.interfaces.web.sessions import SessionStore
from kumiai.services.consortium import Consortium

PREFIX = "/ui"
__all__ = ["HEADERS", "POLICY", "PREFIX", "add_dashboard", "create_dashboard"]


async def _error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, KumiaiError):
        status, message = api.status_of(exc), str(exc)
    elif isinstance(exc, RequestValidationError):
        status, message = 422, f"this address is not valid: {invalid_message(exc)}"
    else:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        message = f"no page {request.url.path}" if status == 404 else str(exc.detail)
    return await _render_error(request, status, message)


async def _render_error(
    request: Request, status: int, message: str, reference: str | None = None
) -> Response:
    try:
        viewer = await current_viewer(request)
    except Exception:  # the failure may be in the session itself: show the page anonymous
        viewer = ANONYMOUS
    response = page(
        request, "error.html", viewer, status=status, message=message, reference=reference
    )
    response.status_code = status
    return response


async def _unexpected_page(request: Request, exc: Exception) -> Response:
    """The 500 page: a reference id, logged with the traceback; no exception text shown."""
    reference = log_unexpected(request, exc)
    return await _render_error(request, 500, UNEXPECTED.format(reference=reference), reference)


async def _to_sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInNeeded)
    target = f"{path_to(request, 'sign_in_page')}?next={quote(exc.path, safe='/')}"
    if request.headers.get("hx-request") == "true":
        # A fragment htmx polls (a job's progress) after the session ended: the whole page
        # goes to sign in, rather than the sign-in page swapped into the fragment.
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def create_dashboard(consortium: Consortium, *, local_operator: bool = False) -> FastAPI:
    """The pages over `consortium`, to mount at PREFIX.

    `local_operator` (the loopback demo only) treats a viewer without a session, calling
    from this machine, as the operator.
    """
    dashboard = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    dashboard.state.consortium = consortium
    dashboard.state.sessions = SessionStore()
    dashboard.state.local_operator = local_operator

    @dashboard.middleware("http")
    async def _policy(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        try:
            response = await call_next(request)
        except Exception as exc:  # a page's handler failed in a way nobody foresaw
            response = await _unexpected_page(request, exc)
        response.headers.update(HEADERS)
        return response

    dashboard.add_exception_handler(KumiaiError, _error_page)
    dashboard.add_exception_handler(HTTPException, _error_page)
    dashboard.add_exception_handler(RequestValidationError, _error_page)
    dashboard.add_exception_handler(SignInNeeded, _to_sign_in)
    dashboard.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")
    for module in (governance, ledger, association, members, signin):
        dashboard.include_router(module.router)
    return dashboard


def add_dashboard(app: FastAPI, *, local_operator: bool = False) -> None:
    """Mount the dashboard at `/ui` of the coordinator's app, over the same consortium."""
    dashboard = create_dashboard(app.state.consortium, local_operator=local_operator)
    app.mount(PREFIX, dashboard, name="dashboard")
