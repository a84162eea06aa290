"""Schemathesis fuzzes the coordinator's API from its own OpenAPI schema, in-process.

Every operation gets a bounded number of generated requests (valid and invalid paths, query
strings and bodies) on the small consortium of test_api.py, twice: unsigned, where every
protected route must answer 401 with the JSON error, and signed as the operator. Each reply
must be no 5xx, and its status code, content type and body must be the ones the schema
documents. Run it alone with `pytest -m fuzz`.
"""

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from kumiai.adapters.coordinator_client import RequestSigner
from kumiai.domain.roles import PUBLIC
from kumiai.interfaces.api.app import create_app
from kumiai.interfaces.api.auth import route_actions
from kumiai.services.consortium import open_consortium
from tests.interfaces.test_api import Small, small  # noqa: F401  (the fixture, reused)

pytestmark = pytest.mark.fuzz

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = settings(
    max_examples=8,
    deadline=None,
    database=None,
    derandomize=True,  # the same requests on every run: a failure here is reproducible
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


class SignedAsOperator(requests.auth.AuthBase):
    """Schemathesis sends through `requests`: hand each request to kumiai's own httpx signer."""

    def __init__(self, small: Small) -> None:  # noqa: F811
        self.signer = RequestSigner(open_consortium(small.home).coordinator_key())

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        import httpx

        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        signed = next(
            self.signer.auth_flow(httpx.Request(request.method, request.url, content=body))
        )
        for name in ("Content-Digest", "Signature-Input", "Signature"):
            request.headers[name] = signed.headers[name]
        return request


@pytest.fixture(scope="module")
def app(small: Small) -> Any:  # noqa: F811
    return create_app(small.home)


@pytest.fixture(scope="module")
def api(app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32 reads `node._nodeid`, which pytest 9 no longer has (it is `nodeid`)."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def is_public(app: Any, path: str, method: str) -> bool:
    for route, methods, actions in route_actions(app):
        if route == path and method.upper() in methods:
            return actions[0] in PUBLIC
    raise AssertionError(f"no route {method} {path}")


@schema.parametrize()
@EXAMPLES
def test_unsigned_requests_get_401_or_a_documented_reply(case: Any, app: Any) -> None:
    response = case.call_and_validate(checks=CHECKS)
    same_method = case.method.upper() == case.operation.method.upper()
    if same_method and not is_public(app, case.operation.path, case.operation.method):
        assert response.status_code == 401, (case.method, case.path, response.text)
        assert "signed" in response.json()["error"], response.text


@schema.parametrize()
@EXAMPLES
def test_operator_requests_get_a_documented_reply(case: Any, small: Small) -> None:  # noqa: F811
    case.call_and_validate(checks=CHECKS, auth=SignedAsOperator(small))
