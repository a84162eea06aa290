"""Sign-in in a real browser (Debian's Chromium): the form posts under the strict policy,
the session cookie is kept and sent back, the page declared for the role opens, and
sign-out ends it. Served by uvicorn on loopback WITHOUT the demo's automatic operator, as
`coordinator serve` would serve it (without TLS here, so the cookie is not Secure)."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kumiai.domain.sign_in import respond
from kumiai.interfaces.api.app import create_app
from kumiai.node.home import NodeHome
from tests.interfaces.test_report_browser import browser, require_chromium
from tests.interfaces.test_web_browser import _shoot, _watch
from tests.interfaces.uvicorn_thread import served_on_loopback
from tests.services.helpers import HOSPITALS, heart_consortium

pytestmark = [pytest.mark.browser]
__all__ = ["browser", "require_chromium"]  # the report test's fixture, shared


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    home = tmp_path_factory.mktemp("signin-browser") / "c"
    heart_consortium(home, sign=HOSPITALS[:1])
    with served_on_loopback(create_app(home)) as port:
        yield home, f"http://127.0.0.1:{port}/ui/"


def test_a_steward_signs_in_with_the_nodes_key_sees_its_pages_and_signs_out(
    browser: Any, served: tuple[Path, str], tmp_path: Path
) -> None:
    home, url = served
    member = HOSPITALS[0]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    _watch(page, problems, url.removesuffix("/ui/"))
    page.goto(url + "privacy")  # not public: off to sign in, and back after
    assert page.url == url + "signin?next=/ui/privacy"
    challenge = re.search(r"sign-in (\S+) --home", page.inner_text("#command"))
    assert challenge is not None
    key = NodeHome(home / "members" / member).private_key()
    page.get_by_label("Signed response").fill(respond(key, challenge.group(1)))
    _shoot(page, tmp_path, "sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url + "privacy")
    assert f"Signed in as {member} (board, researcher, steward)" in page.inner_text("#viewer")
    cookie = next(c for c in page.context.cookies() if c["name"] == "kumiai_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script sees it
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(url + "signin")
    page.goto(url + "privacy")
    assert page.url == url + "signin?next=/ui/privacy"
    assert problems == [], problems
    page.close()
