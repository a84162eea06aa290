"""axe-core on every main page of the dashboard, in Debian's Chromium, signed in as the
operator through the sign-in page (every role may read every coordinator page; the node's
pages are checked in test_node_pages_browser): no violation of impact serious or critical.
And the keyboard alone: sign in, reach the overview, open a project, without a mouse."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kumiai.domain.sign_in import respond
from kumiai.interfaces.api.app import create_app
from kumiai.services import projects
from kumiai.services.consortium import open_consortium
from kumiai.services.privacy import set_budget
from tests.interfaces.axe import assert_accessible, axe_source, describe, violations
from tests.interfaces.test_report_browser import browser, require_chromium
from tests.interfaces.test_web import dashboard_association
from tests.interfaces.test_web_browser import _shoot, _watch
from tests.interfaces.uvicorn_thread import served_on_loopback

pytestmark = [pytest.mark.browser]
__all__ = ["browser", "require_chromium"]  # the report test's fixture, shared
PAGES = (  # path, the heading it opens with
    ("", "Overview"),
    ("projects", "Projects"),
    ("projects/heart", "heart"),
    ("jobs/job-heart-v1", "job-heart-v1"),
    ("models", "Models"),
    ("models/heart-v1", "heart-v1"),
    ("privacy", "Privacy"),
    ("ledger", "Ledger"),
    ("ledger/entries/3", "Ledger entry 3"),
    ("ledger/consistency?old=3&new=9", "Consistency"),
    ("board", "board"),
    ("investor", ""),
    ("members/cleveland-clinic", "Member cleveland-clinic"),
)


@dataclass(frozen=True)
class Served:
    home: Path
    url: str  # ends in /ui/


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """test_web's association, served by uvicorn as `coordinator serve` would (no demo
    operator: every viewer signs in), with one lifetime budget set so Privacy draws a chart."""
    root = tmp_path_factory.mktemp("web-axe")
    consortium, _ = dashboard_association(root)
    set_budget(consortium, "cleveland-clinic-heart", 2.5)
    with served_on_loopback(create_app(root / "c")) as port:
        yield Served(root / "c", f"http://127.0.0.1:{port}/ui/")


def _answer(page: Any, served: Served) -> str:
    """The operator's signed response to the challenge the sign-in page shows."""
    challenge = re.search(r"sign-in (\S+) --home", page.inner_text("#command"))
    assert challenge is not None
    return respond(open_consortium(served.home).coordinator_key(), challenge.group(1))


def test_the_vendored_axe_is_the_one_the_readme_names() -> None:
    assert axe_source().startswith("/*! axe v4.14.1")


def test_axe_finds_what_it_must(browser: Any) -> None:
    """The check can fail: an unlabelled field and grey-on-grey text are reported."""
    page = browser.new_page()
    page.set_content(
        '<html lang="en"><title>t</title><main><h1>t</h1><input type="text">'
        '<p style="color:#aaa;background:#bbb">faint</p></main></html>'
    )
    found = {v["id"] for v in violations(page)}
    assert {"label", "color-contrast"} <= found, found
    with pytest.raises(AssertionError, match=r"label \(critical\)"):
        assert_accessible(page, "a bad page")
    page.close()


def test_every_main_page_has_no_serious_or_critical_axe_violation(
    browser: Any, served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    _watch(page, problems, served.url.removesuffix("/ui/"))
    page.goto(served.url + "signin")
    assert_accessible(page, "sign-in")
    page.get_by_label("Signed response").fill(_answer(page, served))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(served.url)
    for path, heading in PAGES:
        page.goto(served.url + path)
        if heading:
            assert heading in page.locator("h1").first.inner_text(), path
        assert_accessible(page, f"/ui/{path}")
        if path.startswith("members/"):
            _shoot(page, tmp_path, "member")
        if path == "privacy":  # the one chart, of the dataset with a budget, was checked too
            assert page.locator("figure.chart svg[role=img]").count() == 1
            _shoot(page, tmp_path, "privacy")
    assert problems == [], problems
    page.goto(served.url + "projects/nope")  # the error page, 404
    assert "unknown project" in page.inner_text("#error")
    assert_accessible(page, "the error page")

    def broken(*args: object) -> None:
        raise RuntimeError("boom in SELECT * FROM projects")

    monkeypatch.setattr(projects, "list_projects", broken)  # the server runs in this process
    page.goto(served.url + "projects")
    assert page.locator("h1").inner_text() == "Error 500"
    assert page.locator("#reference").inner_text().startswith("err-")
    assert "boom" not in page.content()
    assert_accessible(page, "the 500 page")
    _shoot(page, tmp_path, "error-500")
    page.close()


def test_a_viewer_signs_in_and_opens_a_project_with_the_keyboard_alone(
    browser: Any, served: Served
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(served.url + "signin?next=/ui/")
    answer = _answer(page, served)

    def focused() -> str:
        return str(page.evaluate("document.activeElement.id || document.activeElement.textContent"))

    for _ in range(20):  # past the skip link and the menu, to the response field
        page.keyboard.press("Tab")
        if focused() == "response":
            break
    assert focused() == "response"
    page.keyboard.type(answer)
    page.keyboard.press("Tab")
    assert focused() == "Sign in"
    page.keyboard.press("Enter")
    page.wait_for_url(served.url)
    assert page.locator("h1").first.inner_text() == "Overview"
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == "/ui/projects/heart":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(served.url + "projects/heart")
    assert page.locator("#purpose").inner_text() == "diagnosis"
    page.close()


def test_the_investor_report_has_no_axe_violation_of_any_impact(
    browser: Any, served: Served
) -> None:
    """Even the minor ones: the report's tables once had an empty header cell
    (`empty-table-header`) over their row names."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(served.url + "signin")
    page.get_by_label("Signed response").fill(_answer(page, served))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(served.url)
    page.goto(served.url + "investor")
    found = violations(page, ("minor", "moderate", "serious", "critical"))
    assert found == [], describe(found)
    page.close()
