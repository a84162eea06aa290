"""`kumiai node ui`: the steward's own pages, served by its node on 127.0.0.1 only.

The steward decides here what `kumiai node sign/refuse/revoke` decide on the command line,
and each form calls exactly those functions (`kumiai.node.remote`): the node's key never
leaves its home and the node checks what it signs against what its steward meant.

Who may drive it: only this machine (the server binds 127.0.0.1 and refuses any other
client), and of this machine only the browser that opened the link `kumiai node ui` printed.
That link carries a random start token; the first visit trades it for an HttpOnly,
SameSite=Strict cookie, so another local user's tab, or a page elsewhere posting here,
carries neither. Every form also posts back a CSRF token. A restart makes new tokens.
"""

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from kumiai.domain.errors import Forbidden, KumiaiError, Unauthenticated
from kumiai.interfaces.web.context import LOOPBACK, PACKAGE, Viewer, templates
from kumiai.interfaces.web.errors import UNEXPECTED, invalid_message, log_unexpected
from kumiai.interfaces.web.policy import HEADERS
from kumiai.interfaces.web.sessions import same_token
from kumiai.interfaces.web.signin import check_csrf, read_form

NODE_COOKIE = "kumiai_node"


def _status(exc: Exception) -> int:
    from kumiai.interfaces.api.app import status_of  # the API's own statuses

    assert isinstance(exc, KumiaiError)
    return status_of(exc)


def _render(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
    state = request.app.state
    viewer = Viewer(state.member, csrf=state.csrf)
    response = templates.TemplateResponse(
        request, template, {"viewer": viewer, "member": state.member, **context}
    )
    response.status_code = code
    return response


async def _error(request: Request, exc: Exception) -> Response:
    """A refusal, a missing page or a malformed address: what was wrong, and a link back."""
    if isinstance(exc, KumiaiError):
        code, message = _status(exc), str(exc)
    elif isinstance(exc, RequestValidationError):
        code, message = 422, f"this address is not valid: {invalid_message(exc)}"
    else:
        assert isinstance(exc, HTTPException)
        code = exc.status_code
        message = f"no page {request.url.path}" if code == 404 else str(exc.detail)
    return _render(request, "node_error.html", code, status=code, message=message)


def _unexpected(request: Request, exc: Exception) -> Response:
    """The 500 page: a reference id, logged with the traceback; no exception text shown."""
    reference = log_unexpected(request, exc)
    message = UNEXPECTED.format(reference=reference)
    return _render(
        request, "node_error.html", 500, status=500, message=message, reference=reference
    )


async def _checked_form(request: Request) -> dict[str, str]:
    """The form's fields, once its CSRF token is this start's; else refused, nothing done."""
    fields = await read_form(request)
    check_csrf(fields.get("csrf"), request.app.state.csrf, "node page")
    return fields


def _client(request: Request) -> Any:
    from kumiai.node import remote

    client, _ = remote.client_for(request.app.state.root)
    return client


def waiting_requests(request: Request) -> list[dict[str, Any]]:
    """The coordinator's requests for this member's datasets still waiting for a decision."""
    member = request.app.state.member
    with _client(request) as client:
        listed = client.get("/requests")
    return [r for r in listed if r["steward"] == member and r["status"] == "pending"]


def held_agreements(request: Request) -> list[dict[str, Any]]:
    from kumiai.node.home import NodeHome

    home = NodeHome(request.app.state.root)
    revoked = home.revoked()
    return [
        {**a.terms.payload(), "revoked": a.terms.agreement_id in revoked} for a in home.agreements()
    ]


def budgets(request: Request) -> list[dict[str, Any]]:
    """Each dataset's lifetime ε, spent and left, and its log, from this node's spend log."""
    from kumiai.node.home import NodeHome
    from kumiai.node.spendlog import SpendLog

    home = NodeHome(request.app.state.root)
    found = []
    for name in home.dataset_names():
        log = SpendLog(home, name)
        view = log.view()
        found.append(
            {
                "dataset": name,
                "lifetime": view.lifetime,
                "spent": view.spent,
                "committed": view.committed,
                "left": view.left,
                "records": log.records(),
            }
        )
    return found


def _outsider(request: Request) -> Forbidden | None:
    """A client that is not this machine (the server binds 127.0.0.1; checked again here)."""
    host = request.client.host if request.client else ""
    if host in request.app.state.clients:
        return None
    return Forbidden(f"the node's pages answer this machine only, not {host or 'unknown'}")


def _guard(request: Request) -> None:
    """Only this machine, and only the browser holding this start's cookie."""
    if (refused := _outsider(request)) is not None:
        raise refused
    if not same_token(request.cookies.get(NODE_COOKIE), request.app.state.token):
        raise Unauthenticated(
            "open the link `kumiai node ui` printed (it carries this start's token)"
        )


Guarded = Annotated[None, Depends(_guard)]


def create_node_app(
    root: Path, token: str, *, clients: frozenset[str] = LOOPBACK, secure: bool = False
) -> FastAPI:
    """The steward's pages over the node home `root`; `token` is what the printed link holds."""
    from kumiai.node.home import NodeHome

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.root, app.state.token, app.state.clients = root, token, clients
    app.state.member = NodeHome(root).member_name
    app.state.csrf = secrets.token_urlsafe(32)

    @app.middleware("http")
    async def _enter(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.query_params.get("token")
        if (refused := _outsider(request)) is not None:  # not even the token is traded
            response: Response = await _error(request, refused)
        elif request.method == "GET" and given is not None:
            if not same_token(given, token):
                response = _render(
                    request, "node_error.html", 401, status=401, message="not this start's token"
                )
            else:  # trade the token for the cookie, and drop it from the address bar
                response = RedirectResponse(request.url.path, status_code=303)
                response.set_cookie(
                    NODE_COOKIE, token, httponly=True, samesite="strict", secure=secure
                )
        else:
            try:
                response = await call_next(request)
            except Exception as exc:  # a page's handler failed in a way nobody foresaw
                response = _unexpected(request, exc)
        response.headers.update(HEADERS)
        return response

    for handled in (KumiaiError, HTTPException, RequestValidationError):
        app.add_exception_handler(handled, _error)
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")

    @app.get("/", name="node_requests")
    def requests_page(request: Request, _: Guarded) -> HTMLResponse:
        return _render(request, "node_requests.html", requests=waiting_requests(request))

    @app.get("/agreements", name="node_agreements")
    def agreements_page(request: Request, _: Guarded) -> HTMLResponse:
        return _render(request, "node_agreements.html", agreements=held_agreements(request))

    @app.get("/budgets", name="node_budgets")
    def budgets_page(request: Request, _: Guarded) -> HTMLResponse:
        return _render(request, "node_budgets.html", budgets=budgets(request))

    @app.get("/witness", name="node_witness")
    def witness_page(request: Request, _: Guarded) -> HTMLResponse:
        from kumiai.node.witnessing import last_witnessed

        head = last_witnessed(NodeHome(root))
        return _render(request, "node_witness.html", head=head)

    @app.post("/requests/{request_id}/sign", name="node_sign")
    async def sign(request: Request, request_id: str, _: Guarded) -> Response:
        from kumiai.node.remote import sign_request

        await _checked_form(request)
        await run_in_threadpool(sign_request, root, request_id)
        return RedirectResponse(request.app.url_path_for("node_agreements"), status_code=303)

    @app.post("/requests/{request_id}/refuse", name="node_refuse")
    async def refuse(request: Request, request_id: str, _: Guarded) -> Response:
        from kumiai.domain.errors import InvalidInput
        from kumiai.node.remote import refuse_request

        reason = (await _checked_form(request)).get("reason", "")
        if not reason.strip():
            raise InvalidInput("give a reason for refusing: the researcher reads it")
        await run_in_threadpool(refuse_request, root, request_id, reason)
        return RedirectResponse(request.app.url_path_for("node_requests"), status_code=303)

    @app.post("/agreements/{agreement_id}/revoke", name="node_revoke")
    async def revoke(request: Request, agreement_id: str, _: Guarded) -> Response:
        from kumiai.node.remote import revoke_agreement

        reason = (await _checked_form(request)).get("reason", "")
        await run_in_threadpool(revoke_agreement, root, agreement_id, reason)
        return RedirectResponse(request.app.url_path_for("node_agreements"), status_code=303)

    return app
