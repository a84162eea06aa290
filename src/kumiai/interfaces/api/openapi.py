"""The OpenAPI schema says what the API really answers, errors included (tests fuzz it).

Every error is `{"error": message}` (app.py). A route may answer 400 (a bad parameter or
body: FastAPI's 422 is never sent), 404 or 409 from the services; a protected route also
401 (unsigned, expired, replayed or unknown key) and 403 (a role that may not). The auth
errors are added from each route's declared action, so a public route does not list them.
"""

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from kumiai.domain.roles import PUBLIC
from kumiai.interfaces.api.auth import route_actions


class ErrorReply(BaseModel):
    """Every refusal's body."""

    error: str = Field(description="What was wrong, and how to fix it, in one line.")


WHY: dict[int, str] = {
    400: "A parameter or body is invalid; the message names it.",
    401: "The request is not signed by a key the coordinator knows, or its signature is "
    "expired, replayed or does not match (docs/operations.md).",
    403: "The signing key's role may not do this.",
    404: "No such record, or no such route.",
    409: "The record is not in a state that allows this.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for FastAPI: each code's `ErrorReply`, with why it is sent."""
    return {code: {"model": ErrorReply, "description": WHY[code]} for code in codes}


def document_errors(app: FastAPI) -> None:
    """Replace FastAPI's unused 422 with the 400 sent instead; add 401/403 where signed.

    Call after every route is included: the schema is built once, on the first request.
    """
    build = app.openapi
    protected = {
        (path, method.lower())
        for path, methods, actions in route_actions(app)
        if actions and actions[0] not in PUBLIC
        for method in methods
    }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path, item in schema.get("paths", {}).items():
                for method, operation in item.items():
                    responses = operation["responses"]
                    responses.pop("422", None)
                    if (path, method) in protected:
                        for code in (401, 403):
                            responses[str(code)] = {
                                **responses["400"],
                                "description": WHY[code],
                            }
            components = schema.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def ok(model: Any, description: str = "Successful Response") -> dict[int | str, dict[str, Any]]:
    """`responses=` documenting a 200 whose body is `model` (routes reply `PlainJSON`)."""
    return {200: {"model": model, "description": description}}
