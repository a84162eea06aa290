"""The steward's own pages in a real browser (Debian's Chromium): the printed link's token
becomes an HttpOnly, SameSite=Strict cookie, the waiting request is shown, and signing it
under the strict policy moves it to the agreements the node holds. The node's calls reach
the coordinator app in-process (test_api_acts' transport)."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from kumiai.interfaces.web.node_pages import NODE_COOKIE, create_node_app
from kumiai.node.spendlog import SpendLog
from tests.interfaces.test_api_acts import A, World, node_of, through_test_transport, world
from tests.interfaces.test_report_browser import browser, require_chromium
from tests.interfaces.test_web_browser import _free_port, _shoot, _watch

pytestmark = [pytest.mark.browser]
__all__ = ["browser", "require_chromium", "through_test_transport", "world"]  # shared fixtures
TOKEN = "the-start-token-printed-once"


@pytest.fixture
def served(world: World, through_test_transport: None) -> Iterator[str]:
    port = _free_port()
    app = create_node_app(world.consortium.member_home(A), TOKEN)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the node's pages did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


def test_a_steward_signs_a_request_and_it_moves_to_agreements(
    browser: Any, served: str, world: World, tmp_path: Any
) -> None:
    url, request = served, world.requests[A]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    _watch(page, problems, url.removesuffix("/"))
    page.goto(f"{url}?token={TOKEN}")
    assert page.url == url  # the token left the address bar for the cookie
    cookie = next(c for c in page.context.cookies() if c["name"] == NODE_COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""
    row = page.locator(f"#request-{request}")
    assert row.count() == 1 and "Sign" in row.inner_text()
    _shoot(page, tmp_path, "node-requests")
    page.locator(f"#sign-{request}").click()
    page.wait_for_url(url + "agreements")
    agreement = node_of(world, A).home.agreements()[0].terms.agreement_id
    assert request in page.inner_text(f"#agreement-{agreement}")
    page.goto(url)
    assert page.locator(f"#request-{request}").count() == 0
    assert "No request waits" in page.inner_text("main")
    # A job under the agreement spends ε at this node: the Budgets page shows it drop.
    held = node_of(world, A).home
    dataset = held.agreements()[0].terms.dataset
    log = SpendLog(held, dataset)
    log.set_lifetime(2.0)
    page.get_by_role("link", name="Budgets").click()
    page.wait_for_url(url + "budgets")
    assert page.inner_text(f"#budget-{dataset} .left") == "2.0000"
    project = held.agreements()[0].terms.project
    assert log.reserve(
        job="job-1", project=project, planned=1.0, delta=1e-5, agreement_cap=None, details={}
    ).allowed
    log.spend(job="job-1", round_=1, epsilon=0.5)
    log.release("job-1")
    page.reload()
    assert page.inner_text(f"#budget-{dataset} .spent") == "0.5000"
    assert page.inner_text(f"#budget-{dataset} .left") == "1.5000"
    _shoot(page, tmp_path, "node-budgets")
    assert problems == [], problems
    page.close()
