"""The steward's own pages in a real browser (Debian's Chromium): the printed link's token
becomes an HttpOnly, SameSite=Strict cookie, the waiting request is shown, and signing it
under the strict policy moves it to the agreements the node holds. The node's calls reach
the coordinator app in-process (test_api_acts' transport)."""

from collections.abc import Iterator
from typing import Any

import pytest

from kumiai.domain.training import TrainingSettings
from kumiai.interfaces.web.node_pages import NODE_COOKIE, create_node_app
from kumiai.node.remote import set_budget, sign_request
from kumiai.node.spendlog import SpendLog
from kumiai.services import jobs
from kumiai.services.consortium import open_consortium
from kumiai.services.training import train
from tests.interfaces.axe import assert_accessible
from tests.interfaces.test_api_acts import A, B, World, node_of, through_test_transport, world
from tests.interfaces.test_report_browser import browser, require_chromium
from tests.interfaces.test_web_browser import _shoot, _watch
from tests.interfaces.uvicorn_thread import served_on_loopback
from tests.services.helpers import log_records

pytestmark = [pytest.mark.browser, pytest.mark.simulation]
__all__ = ["browser", "require_chromium", "through_test_transport", "world"]  # shared fixtures
TOKEN = "the-start-token-printed-once"


@pytest.fixture
def served(world: World, through_test_transport: None) -> Iterator[str]:
    app = create_node_app(world.consortium.member_home(A), TOKEN)
    with served_on_loopback(app, "the node's pages") as port:
        yield f"http://127.0.0.1:{port}/"


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
    assert_accessible(page, "the node's requests")
    page.locator(f"#sign-{request}").click()
    page.wait_for_url(url + "agreements")
    agreement = node_of(world, A).home.agreements()[0].terms.agreement_id
    assert request in page.inner_text(f"#agreement-{agreement}")
    assert_accessible(page, "the node's agreements")
    page.goto(url)
    assert page.locator(f"#request-{request}").count() == 0
    assert "No request waits" in page.inner_text("main")
    # A real job under the agreement (2 rounds, ε 1.0, on the simulation engine) spends ε
    # at this node: Budgets drops by exactly what the node's own spend log records.
    held = node_of(world, A).home
    dataset = held.agreements()[0].terms.dataset
    set_budget(world.consortium.member_home(A), dataset, 3.0)  # `kumiai node budget`
    sign_request(world.consortium.member_home(B), world.requests[B])  # the other site
    page.get_by_role("link", name="Budgets").click()
    page.wait_for_url(url + "budgets")
    assert page.inner_text(f"#budget-{dataset} .spent") == "0.0000"
    assert page.inner_text(f"#budget-{dataset} .left") == "3.0000"
    outcome = train(
        open_consortium(world.consortium.home), "heart", TrainingSettings(rounds=2, epsilon=1.0)
    )
    assert jobs.job_detail(world.consortium, outcome.job_id).status == "completed"
    log = SpendLog(held, dataset)
    rounds = [r for r in log_records(log) if r["kind"] == "spend" and r["job"] == outcome.job_id]
    assert [r["round"] for r in rounds] == [1, 2]  # one line per round, cumulative
    spent = rounds[-1]["epsilon"]
    assert 0 < spent <= 1.0 and log.view().committed == 0
    page.reload()
    assert page.inner_text(f"#budget-{dataset} .spent") == f"{spent:.4f}"
    assert page.inner_text(f"#budget-{dataset} .left") == f"{3.0 - spent:.4f}"
    _shoot(page, tmp_path, "node-budgets")
    assert_accessible(page, "the node's budgets")
    page.get_by_role("link", name="Witness").click()
    page.wait_for_url(url + "witness")
    assert_accessible(page, "the node's witness page")
    assert problems == [], problems
    page.goto(url + "?token=not-this-one")  # the error page, 401
    assert "not this start's token" in page.inner_text("main")
    assert_accessible(page, "the node's error page")
    page.close()
