"""The steward's own pages (`kumiai node ui`): each page, each form reaching a real
coordinator app in-process through the node's own functions, and the refusals — no start
token, a wrong one, another machine, a form without its CSRF token — with nothing written.
"""

import logging
import re
import socket
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kumiai.adapters.coordinator_client import CoordinatorClient
from kumiai.domain.clock import utc_now
from kumiai.domain.ledger import TreeHead
from kumiai.interfaces.web.context import LOOPBACK
from kumiai.interfaces.web.node_pages import NODE_COOKIE, create_node_app
from kumiai.node import remote, witnessing
from kumiai.node.remote import LocalNode
from kumiai.node.spendlog import SpendLog
from kumiai.node.witnessing import remember
from tests.interfaces.test_api_acts import (
    A,
    World,
    counts,
    node_of,
    through_test_transport,
    world,
)

__all__ = ["through_test_transport", "world"]  # test_api_acts' fixtures, shared
TOKEN = "start-token-for-the-test"


def pages(world: World, **options: Any) -> TestClient:
    root = world.consortium.member_home(A)
    options.setdefault("clients", LOOPBACK | {"testclient"})
    return TestClient(create_node_app(root, TOKEN, **options), follow_redirects=False)


@pytest.fixture
def steward(world: World, through_test_transport: None) -> TestClient:
    """The steward's browser after opening the printed link: it holds the cookie."""
    client = pages(world)
    entered = client.get(f"/?token={TOKEN}")
    assert entered.status_code == 303 and entered.headers["location"] == "/"
    cookie = entered.headers["set-cookie"]
    assert f"{NODE_COOKIE}={TOKEN}" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    return client


def csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def test_the_waiting_request_is_shown_and_signing_it_moves_it_to_agreements(
    world: World, steward: TestClient
) -> None:
    request = world.requests[A]
    shown = steward.get("/")
    assert shown.status_code == 200 and f'id="request-{request}"' in shown.text
    assert "Content-Security-Policy" in shown.headers
    assert "script-src &#39;self&#39;" not in shown.text  # the policy is a header, not inline
    signed = steward.post(f"/requests/{request}/sign", data={"csrf": csrf_of(shown.text)})
    assert signed.status_code == 303 and signed.headers["location"] == "/agreements"
    held = node_of(world, A).home.agreements()
    assert [a.terms.request_id for a in held] == [request]
    agreements = steward.get("/agreements")
    assert f'id="agreement-{held[0].terms.agreement_id}"' in agreements.text
    assert '<span class="state">in force</span>' in agreements.text  # its state, then Revoke
    assert f'id="request-{request}"' not in steward.get("/").text


def test_refusing_needs_a_reason_and_reaches_the_coordinator(
    world: World, steward: TestClient
) -> None:
    request = world.requests[A]
    csrf = csrf_of(steward.get("/").text)
    before = counts(world)
    empty = steward.post(f"/requests/{request}/refuse", data={"csrf": csrf, "reason": " "})
    assert empty.status_code == 400 and "give a reason for refusing" in empty.text
    assert counts(world) == before
    refused = steward.post(
        f"/requests/{request}/refuse", data={"csrf": csrf, "reason": "no ethics approval"}
    )
    assert refused.status_code == 303
    assert counts(world)[0] == before[0] + 1 and counts(world)[-1] == before[-1] + 1
    assert "No request waits" in steward.get("/").text


def test_revoking_an_agreement_is_written_at_the_node_then_recorded(
    world: World, steward: TestClient
) -> None:
    request = world.requests[A]
    csrf = csrf_of(steward.get("/").text)
    steward.post(f"/requests/{request}/sign", data={"csrf": csrf})
    agreement = node_of(world, A).home.agreements()[0].terms.agreement_id
    revoked = steward.post(
        f"/agreements/{agreement}/revoke", data={"csrf": csrf, "reason": "consent withdrawn"}
    )
    assert revoked.status_code == 303
    assert agreement in node_of(world, A).revoked()
    shown = steward.get("/agreements").text
    assert f'id="revoke-{agreement}"' not in shown
    assert '<span class="state">revoked</span>' in shown and "in force" not in shown


def test_a_form_without_its_csrf_token_is_refused_and_nothing_is_written(
    world: World, steward: TestClient
) -> None:
    request = world.requests[A]
    before = counts(world)
    for data in ({}, {"csrf": "forged"}):
        refused = steward.post(f"/requests/{request}/sign", data=data)
        assert (
            refused.status_code == 403
            and "the node page form&#39;s CSRF token is missing or wrong" in refused.text
        )
        refused = steward.post(f"/requests/{request}/refuse", data={**data, "reason": "x"})
        assert refused.status_code == 403
    assert counts(world) == before and node_of(world, A).home.agreements() == []


def test_without_the_start_token_nothing_is_shown_or_done(
    world: World, through_test_transport: None
) -> None:
    stranger = pages(world)
    request = world.requests[A]
    before = counts(world)
    for path in ("/", "/agreements", "/budgets", "/witness"):
        refused = stranger.get(path)
        assert refused.status_code == 401 and "open the link `kumiai node ui` printed" in (
            refused.text
        )
    wrong = stranger.get("/?token=guessed")
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    stranger.cookies.set(NODE_COOKIE, "guessed")
    assert stranger.post(f"/requests/{request}/sign", data={"csrf": "x"}).status_code == 401
    assert counts(world) == before


def test_another_machine_is_refused_even_with_the_token(world: World) -> None:
    remote_browser = pages(world, clients=LOOPBACK)  # the test client is not 127.0.0.1
    entered = remote_browser.get(f"/?token={TOKEN}")
    assert entered.status_code == 403 and "answer this machine only, not testclient" in (
        entered.text
    )
    assert "set-cookie" not in entered.headers  # the token is not traded for a cookie
    remote_browser.cookies.set(NODE_COOKIE, TOKEN)
    assert remote_browser.get("/").status_code == 403


def test_budgets_show_lifetime_spent_left_and_the_log(world: World, steward: TestClient) -> None:
    home = node_of(world, A).home
    dataset = home.dataset_names()[0]
    log = SpendLog(home, dataset)
    log.set_lifetime(3.0)
    decision = log.reserve(
        job="job-1", project="p", planned=1.0, delta=1e-5, agreement_cap=None, details={}
    )
    assert decision.allowed
    log.spend(job="job-1", round_=1, epsilon=0.25)
    shown = steward.get("/budgets").text
    assert f'id="budget-{dataset}"' in shown
    assert '<dd class="lifetime">3.0000</dd>' in shown
    assert '<dd class="spent">0.2500</dd>' in shown
    assert '<dd class="left">2.0000</dd>' in shown  # 3 − 0.25 spent − 0.75 still held
    assert shown.count("<td>job-1</td>") == 2  # the reserve and the spend lines
    assert shown.count('<td class="n delta">1e-05</td>') == 1  # the reserve's δ, short
    assert '<dl class="facts">' in shown


def test_the_witness_page_shows_the_cosigned_head(world: World, steward: TestClient) -> None:
    assert "has cosigned no head yet" in steward.get("/witness").text
    remember(node_of(world, A).home, TreeHead(7, "ab" * 32, utc_now()))
    shown = steward.get("/witness").text
    assert '<dd id="head-size">7</dd>' in shown and "ab" * 32 in shown
    assert '<dl id="witness" class="facts">' in shown
    assert re.search(r'<dd id="head-time">\d{4}-\d\d-\d\d \d\d:\d\d UTC</dd>', shown)


def test_the_command_serves_on_loopback_with_a_fresh_token_each_start(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from kumiai.interfaces.cli.main import app as cli

    served: list[dict[str, Any]] = []
    monkeypatch.setattr(
        uvicorn, "run", lambda app, **options: served.append(options | {"app": app})
    )
    home = str(world.consortium.member_home(A))
    printed = [
        CliRunner().invoke(cli, ["node", "ui", "--home", home, "--port", "8611"]).stdout
        for _ in range(2)
    ]
    assert [(s["host"], s["port"]) for s in served] == [("127.0.0.1", 8611)] * 2
    tokens = [s["app"].state.token for s in served]
    assert tokens[0] != tokens[1] and len(tokens[0]) >= 40
    for token, line in zip(tokens, printed, strict=True):
        assert f"http://127.0.0.1:8611/?token={token}" in line
    assert served[0]["app"].state.clients == LOOPBACK


def test_a_decision_the_coordinator_refuses_shows_its_reason_and_writes_nothing(
    world: World, steward: TestClient
) -> None:
    request = world.requests[A]
    csrf = csrf_of(steward.get("/").text)
    steward.post(f"/requests/{request}/refuse", data={"csrf": csrf, "reason": "no approval"})
    before = counts(world)
    again = steward.post(f"/requests/{request}/sign", data={"csrf": csrf})
    assert again.status_code == 409
    assert (
        f"coordinator: request {request} is already refused; a steward decides once" in again.text
    )
    assert counts(world) == before and node_of(world, A).home.agreements() == []


def test_an_unexpected_error_is_a_page_with_a_reference_the_log_also_holds(
    steward: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "boom reading /home/steward/node/key.pem"

    def broken(*args: object) -> None:
        raise OSError(secret)

    monkeypatch.setattr(witnessing, "last_witnessed", broken)  # what the page calls
    with caplog.at_level(logging.ERROR, logger="kumiai.web"):
        failed = steward.get("/witness")
    assert failed.status_code == 500 and "Content-Security-Policy" in failed.headers
    reference = re.search(r'<code id="reference">(err-[0-9a-f]{12})</code>', failed.text)
    assert reference, failed.text
    for leaked in ("boom", "key.pem", "OSError", "Traceback"):
        assert leaked not in failed.text
    assert 'id="back" href="/"' in failed.text
    [record] = [r for r in caplog.records if reference.group(1) in r.getMessage()]
    assert record.exc_info and str(record.exc_info[1]) == secret


def test_a_missing_page_and_a_wrong_method_are_pages_with_a_link_back(
    steward: TestClient,
) -> None:
    missing = steward.get("/no-such-page")
    assert missing.status_code == 404 and "no page /no-such-page" in missing.text
    assert 'id="back" href="/"' in missing.text
    wrong = steward.get("/requests/req-1/sign")  # a form's address, opened as a page
    assert wrong.status_code == 405 and "Method Not Allowed" in wrong.text
    assert wrong.headers["content-type"].startswith("text/html")


def test_an_unreachable_coordinator_is_a_502_page_and_the_nodes_own_pages_still_work(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once released
        probe.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{probe.getsockname()[1]}"

    def client_for(root):  # type: ignore[no-untyped-def]
        node = LocalNode(root)
        return CoordinatorClient(url, key=node.home.private_key(), timeout=5), node

    monkeypatch.setattr(remote, "client_for", client_for)
    client = pages(world)
    assert client.get(f"/?token={TOKEN}").status_code == 303
    down = client.get("/")
    assert down.status_code == 502
    assert "<h1>Error 502</h1>" in down.text
    assert f"the coordinator could not be reached (cannot reach the coordinator at {url}" in (
        down.text
    )
    for path in ("/agreements", "/budgets", "/witness"):
        assert client.get(path).status_code == 200, path
