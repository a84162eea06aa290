"""The node's (and the CLI's) HTTPS client for the coordinator's API.

It trusts only the consortium's CA certificate it is given (pinned at joining), signs every
request with the caller's own Ed25519 key (RFC 9421, kumiai.domain.request_auth), and turns
the API's `{"error": …}` replies back into kumiai's errors, so a command prints the
coordinator's one line.
"""

import ssl
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.domain.clock import utc_now
from kumiai.domain.errors import (
    Forbidden,
    InvalidInput,
    KumiaiError,
    NotFound,
    StateError,
    Unauthenticated,
)
from kumiai.domain.request_auth import sign_request

_ERRORS: dict[int, type[KumiaiError]] = {
    400: InvalidInput,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: StateError,
}


class RequestSigner(httpx.Auth):
    """Signs each request as sent: method, raw path and query, body, a fresh nonce."""

    requires_request_body = True

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path, _, query = request.url.raw_path.decode("ascii").partition("?")
        request.headers.update(
            sign_request(
                self.key,
                method=request.method,
                path=path,
                query=query,
                body=request.content,
                now=utc_now(),
            )
        )
        yield request


class CoordinatorClient:
    """One coordinator, reached over TLS with one CA; requests signed when a key is given."""

    def __init__(
        self,
        url: str,
        *,
        ca_cert: Path | bytes | None = None,
        key: Ed25519PrivateKey | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith("https://") and transport is None:
            raise InvalidInput(f"the coordinator's URL must start with https:// (got {url!r})")
        verify: ssl.SSLContext | bool = True
        if ca_cert is not None:
            data = ca_cert.read_bytes() if isinstance(ca_cert, Path) else ca_cert
            verify = ssl.create_default_context(cadata=data.decode("ascii"))
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            verify=verify,
            auth=RequestSigner(key) if key is not None else None,
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "CoordinatorClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, path: str, **params: Any) -> Any:
        return self._reply(self._send("GET", path, params=_present(params)))

    def post(self, path: str, document: Any) -> Any:
        return self._reply(self._send("POST", path, json=document))

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One request; a network or TLS failure becomes one line naming the coordinator."""
        try:
            return self._http.request(method, path, **options)
        except httpx.ConnectError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise StateError(
                    f"the server at {self.url} did not present a certificate signed by the "
                    "pinned consortium CA; refusing to talk to it"
                ) from None
            raise InvalidInput(f"cannot reach the coordinator at {self.url}: {exc}") from None
        except httpx.HTTPError as exc:
            raise InvalidInput(f"the coordinator at {self.url} did not answer: {exc}") from None

    def _reply(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                message = str(response.json()["error"])
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {response.status_code} from {self.url}"
            raise _ERRORS.get(response.status_code, KumiaiError)(f"coordinator: {message}")
        return response.json()


def _present(params: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


def fetch_unverified(url: str, path: str, timeout: float = 30.0) -> bytes:
    """GET one document without trusting the server's certificate yet.

    Only for what a joining node checks against its invitation's fingerprints before it
    trusts anything (the CA certificate itself): nothing read here is believed unchecked.
    """
    try:
        response = httpx.get(url.rstrip("/") + path, verify=False, timeout=timeout)
    except httpx.HTTPError as exc:
        raise InvalidInput(f"cannot reach the coordinator at {url}: {exc}") from None
    if response.status_code != 200:
        raise InvalidInput(f"{url}{path} answered HTTP {response.status_code}")
    return response.content
