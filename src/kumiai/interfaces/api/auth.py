"""Every route's one rule: `allow(Action.X)` authenticates the caller and checks its role.

A route declares its action as a dependency, so the whole app can be walked to check that
each route has exactly one (tests/interfaces/test_api_roles.py). Public actions (the
ledger, the docs, joining with an invitation) take no signature; every other one needs a
signed request (kumiai.domain.request_auth) from a key the coordinator knows, whose role
`kumiai.domain.roles.PERMITTED` allows.
"""

from collections.abc import Callable, Coroutine
from typing import Any

import anyio.to_thread
from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from kumiai.domain.request_auth import HttpRequest
from kumiai.domain.roles import PUBLIC, Action
from kumiai.services.access import Principal, authenticate
from kumiai.services.consortium import Consortium


def http_request(request: Request, body: bytes) -> HttpRequest:
    """The signed parts of a request as it arrived: the raw path and query, not decoded."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    query = request.scope.get("query_string", b"").decode("latin-1")
    headers = {name.lower(): value for name, value in request.headers.items()}
    return HttpRequest(request.method, path, query, body, headers)


class Authorizer:
    """The dependency `allow` makes: its `action` is what the route declares."""

    def __init__(self, action: Action) -> None:
        self.action = action

    async def __call__(self, request: Request) -> Principal | None:
        if self.action in PUBLIC:
            return None
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:  # once per request: a second check would see its nonce used
            consortium: Consortium = request.app.state.consortium
            signed = http_request(request, await request.body())
            # In the routes' one worker thread: the nonce table is written like any record.
            principal = await anyio.to_thread.run_sync(authenticate, consortium, signed)
            request.state.principal = principal
        principal.require(self.action)
        return principal


class SignedBeforeBody(APIRoute):
    """A route with a body that checks the caller before FastAPI parses the body.

    FastAPI refuses a malformed body (400) before it runs any dependency, so an unsigned
    request would learn about the body before being told to sign (found by the API's
    fuzzing). Here the route's `allow` runs first; the dependency then reuses its principal.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        authorizers = [Authorizer(action) for action in declared_actions(self.dependant)]

        async def signed_first(request: Request) -> Response:
            for authorizer in authorizers:
                await authorizer(request)
            return await handler(request)

        return signed_first


def allow(action: Action) -> Any:
    """`dependencies=[allow(Action.X)]`, or a parameter `caller: Caller = allow(…)`."""
    return Depends(Authorizer(action))


def declared_actions(dependant: Any) -> list[Action]:
    """Every action a route's dependencies declare, however deep."""
    found = [d.call.action for d in dependant.dependencies if isinstance(d.call, Authorizer)]
    for sub in dependant.dependencies:
        found.extend(declared_actions(sub))
    return found


def route_actions(
    app: Any, declared: Callable[[Any], list[Any]] = declared_actions
) -> list[tuple[str, frozenset[str], list[Any]]]:
    """(path, methods, declared actions) of every API route of `app`, included routers too;
    `declared` reads a route's actions (the dashboard's pages pass `web.context.page_actions`).

    FastAPI (0.13x) keeps an included router's routes behind it and builds each route's
    effective dependencies (the router's and the route's) on demand; both are walked.
    """
    found: list[tuple[str, frozenset[str], list[Any]]] = []
    for route in app.routes:
        contexts = (
            route.effective_route_contexts()
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
        for context in contexts:
            dependant = getattr(context, "dependant", None)
            if dependant is not None:
                methods = frozenset(getattr(context, "methods", None) or ())
                found.append((context.path, methods, declared(dependant)))
    return found
