"""The node's client: what it signs, and failures as one line naming the coordinator."""

from pathlib import Path

import httpx
import pytest

from kumiai.adapters.coordinator_client import CoordinatorClient
from kumiai.domain import keys
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import Forbidden, InvalidInput, NotFound
from kumiai.domain.request_auth import HttpRequest, read_claim, verify_request
from tests.interfaces.test_api import free_port


def test_only_https_urls_are_accepted() -> None:
    with pytest.raises(InvalidInput, match=r"must start with https:// \(got 'http://x:1'\)"):
        CoordinatorClient("http://x:1")


def test_an_unreachable_coordinator_is_one_line() -> None:
    client = CoordinatorClient(f"https://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(InvalidInput, match=r"cannot reach the coordinator at https://127.0.0.1:"):
        client.get("/ledger/head")


def test_requests_are_signed_as_sent_and_errors_come_back_as_kumiais() -> None:
    key = keys.new_private_key()
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = {"/missing": 404, "/forbidden": 403}.get(request.url.path, 200)
        return httpx.Response(status, json={"error": "as the server said"} if status > 200 else {})

    client = CoordinatorClient("https://c.example", key=key, transport=httpx.MockTransport(answer))
    assert client.post("/requests/req-1/refuse?x=1", {"reason": "no"}) == {}
    request = seen[-1]
    path, _, query = request.url.raw_path.decode().partition("?")
    received = HttpRequest(
        "POST", path, query, request.content, {k.lower(): v for k, v in request.headers.items()}
    )
    verify_request(received, read_claim(received.headers), keys.public_key_b64(key), utc_now())
    with pytest.raises(NotFound, match=r"^coordinator: as the server said$"):
        client.get("/missing")
    with pytest.raises(Forbidden, match=r"^coordinator: as the server said$"):
        client.get("/forbidden")


def test_a_download_from_an_unreachable_coordinator_is_one_line_and_writes_nothing(
    tmp_path: Path,
) -> None:
    client = CoordinatorClient(f"https://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(InvalidInput, match=r"cannot reach the coordinator at https://127.0.0.1:"):
        client.download("/ledger/export", tmp_path / "export.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_a_download_refused_by_the_coordinator_is_its_error_and_writes_nothing(
    tmp_path: Path,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": "kpmg (auditor) may not ledger.read"})

    client = CoordinatorClient("https://c.example", transport=httpx.MockTransport(answer))
    with pytest.raises(Forbidden, match=r"^coordinator: kpmg \(auditor\) may not ledger.read$"):
        client.download("/ledger/export", tmp_path / "export.jsonl")
    assert list(tmp_path.iterdir()) == []
