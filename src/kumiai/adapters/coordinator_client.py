"""The node's (and the CLI's) HTTPS client for the coordinator's API.

It trusts only the consortium's CA certificate it is given (pinned at joining), signs every
request with the caller's own Ed25519 key (RFC 9421, kumiai.domain.request_auth), and turns
the API's `{"error": …}` replies back into kumiai's errors, so a command prints the
coordinator's one line.
"""

import hashlib
import ssl
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.adapters.files import write_chunks_atomic
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import (
    Forbidden,
    InvalidInput,
    KumiaiError,
    NotFound,
    StateError,
    Unauthenticated,
)
from kumiai.domain.request_auth import digest_header, sign_request

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
            verify = _trusting(ca_cert)
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

    def answer(
        self, method: str, path: str, document: Any = None, **params: Any
    ) -> tuple[int, Any]:
        """One request's status and JSON reply (None when the body is not JSON), never
        raising for an HTTP error: for a caller that reports a refusal (a witness keeps a
        refused proof as evidence) rather than stopping on it."""
        body = {"json": document} if document is not None else {}
        response = self._send(method, path, params=_present(params), **body)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    def download(
        self, path: str, file: Path, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Stream `path` into `file`, which appears only when every byte arrived intact.

        The reply must say its length and its SHA-256 (RFC 9530 `Content-Digest`); a stream
        that ends early, runs long or hashes otherwise is refused and leaves no file.
        `progress(received, total)` is called after each chunk. Returns the bytes written.
        """
        received = 0

        def chunks(response: httpx.Response) -> Iterator[bytes]:
            nonlocal received
            total, digest = _declared(response, self.url)
            hashed = hashlib.sha256()
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > total:
                    break
                hashed.update(chunk)
                if progress is not None:
                    progress(received, total)
                yield chunk
            if received != total:
                raise StateError(
                    f"the coordinator at {self.url} sent {received} bytes of {path} where it "
                    f"announced {total}; the transfer was cut or altered: nothing written, "
                    "run the command again"
                )
            if digest_header(hashed.digest()) != digest:
                raise StateError(
                    f"{path} from {self.url} does not match the SHA-256 the coordinator "
                    "announced (Content-Digest); it was altered on the way: nothing written"
                )

        try:
            with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    self._reply(response)
                write_chunks_atomic(file, chunks(response))
        except httpx.ConnectError as exc:
            raise self._unreachable(exc) from None
        except httpx.HTTPError as exc:
            raise StateError(
                f"the download of {path} from {self.url} failed after {received} bytes ({exc}); "
                "nothing written, run the command again"
            ) from None
        return received

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One request; a network or TLS failure becomes one line naming the coordinator."""
        try:
            return self._http.request(method, path, **options)
        except httpx.ConnectError as exc:
            raise self._unreachable(exc) from None
        except httpx.HTTPError as exc:
            raise InvalidInput(f"the coordinator at {self.url} did not answer: {exc}") from None

    def _unreachable(self, exc: httpx.ConnectError) -> KumiaiError:
        """A connection that failed, in one line: a server the CA does not vouch for is
        refused (StateError); one that cannot be reached is a mistake to check (InvalidInput)."""
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return StateError(
                f"the server at {self.url} did not present a certificate signed by the "
                "consortium's CA this node trusts (pinned at joining, or given with --ca); "
                "refusing to talk to it"
            )
        return InvalidInput(
            f"cannot reach the coordinator at {self.url}: {exc}; check the address and that it "
            "serves"
        )

    def _reply(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                message = str(response.json()["error"])
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {response.status_code} from {self.url}"
            raise _ERRORS.get(response.status_code, KumiaiError)(f"coordinator: {message}")
        return response.json()


def _trusting(ca_cert: Path | bytes) -> ssl.SSLContext:
    """A TLS context trusting the consortium's CA alone; one line when it is not a CA."""
    where = str(ca_cert) if isinstance(ca_cert, Path) else "the CA certificate given"
    try:
        data = ca_cert.read_bytes() if isinstance(ca_cert, Path) else ca_cert
        return ssl.create_default_context(cadata=data.decode("ascii"))
    except (ssl.SSLError, ValueError) as exc:  # before OSError: an SSLError is one
        raise InvalidInput(f"{where} is not a PEM CA certificate ({exc})") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read the CA certificate {where}: {exc.strerror}") from None


def _declared(response: httpx.Response, url: str) -> tuple[int, str]:
    """The length and digest a download must match; refused when the reply gives neither."""
    try:
        total = int(response.headers["content-length"])
        digest = response.headers["content-digest"]
    except (KeyError, ValueError):
        raise StateError(
            f"the coordinator at {url} did not announce the length and SHA-256 "
            "(Content-Length, Content-Digest) of what it sends; refusing an unchecked "
            "download: nothing written"
        ) from None
    return total, digest


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
