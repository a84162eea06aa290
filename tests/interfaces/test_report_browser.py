"""The HTML report in a real browser: Debian's Chromium, driven by Playwright.

The page's figures are read back as a reader sees them and held to the JSON report; every
citation must lead to its appendix row; the page must ask for nothing beyond itself. The
screenshot lands in the test's tmp_path and in test-artifacts/report.png (git-ignored).

Chromium is not downloaded by Playwright here (`playwright install` needs the network): the
test drives /usr/bin/chromium and FAILS, saying how to install it, when it is missing.
"""

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from kumiai.domain.figures import cited, figures
from kumiai.domain.report import build_report
from kumiai.interfaces.reports.format import PRECISION, parse_value_text
from kumiai.interfaces.reports.html import render_html
from kumiai.services.projects import propose_project
from kumiai.services.report import report_from_export
from kumiai.services.transparency import export_ledger
from tests.domain.report_ledger import DAY, EVIL, full_ledger
from tests.services.reported import build_association

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = (
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
    "--no-install-recommends chromium"
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]

READ_FIGURES = """els => els.map(e => ({
    id: e.dataset.figure,
    value: e.dataset.value,
    cites: e.dataset.cites === undefined ? null : e.dataset.cites,
    shown: e.matches('span.figure') ? e.querySelector('.v').textContent : null,
    bar: e.matches('rect'),
    width: e.matches('rect') ? e.getBoundingClientRect().width : null,
    visible: e.getClientRects().length > 0,
}))"""
CITATIONS = """els => els.map(a => ({
    href: a.getAttribute('href'),
    target: document.getElementById(a.getAttribute('href').slice(1)) !== null,
}))"""


def real_consortium_report(root: Path) -> dict[str, Any]:
    """An association built through the services (themes, funds, spend, milestones, a
    licensed model, its contribution shares, royalties paid), with a project whose title is
    hostile; reported from its export."""
    consortium = build_association(root / "c", root)
    propose_project(
        consortium, name="hostile", title=EVIL, purpose=EVIL, proposed_by="lab", members=()
    )
    export = root / "ledger.jsonl"
    export_ledger(consortium, export)
    return report_from_export(export, "board", on=DAY)


def require_chromium(path: Path = CHROMIUM) -> Path:
    """Debian's Chromium, or a failure (never a skip) that says how to install it."""
    if not path.exists():
        pytest.fail(
            f"Chromium is missing at {path}; the report's browser test needs Debian's "
            f"package (CI's .ci/run installs it): {INSTALL}"
        )
    return path


def test_a_missing_chromium_fails_and_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install .*chromium"):
        require_chromium(tmp_path / "chromium")


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    chromium = require_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed; run `make install-dev` (requirements-dev.lock)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=ARGS)
        yield browser
        browser.close()


@pytest.mark.parametrize(
    ("source", "audience"),
    [("hand-built ledger", "board"), ("hand-built ledger", "member"), ("services", "board")],
)
def test_the_report_reads_the_same_in_chromium(
    browser: Any, source: str, audience: str, tmp_path: Path
) -> None:
    doc = (
        build_report(full_ledger(), audience, DAY, "kita" if audience == "member" else None)
        if source == "hand-built ledger"
        else real_consortium_report(tmp_path)
    )
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(doc), encoding="utf-8")
    url = page_file.as_uri()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    assert page.title().startswith(f"kumiai report for {audience}")

    # Every figure on the page, as shown, is the JSON report's, with the same citations.
    expected = figures(doc)
    on_page = page.eval_on_selector_all("[data-figure]", READ_FIGURES)
    spans = [f for f in on_page if not f["bar"]]
    assert sorted(f["id"] for f in spans) == sorted(expected)
    for shown in on_page:
        fig = expected[shown["id"]]
        assert json.loads(shown["value"]) == fig["value"], shown
        if shown["bar"]:
            continue
        assert shown["visible"], shown
        assert shown["cites"].split() == [str(s) for s in fig["cites"]], shown
        number = parse_value_text(shown["shown"], fig["unit"])
        assert abs(number - fig["value"]) <= PRECISION[fig["unit"]], shown

    # The charts: one bar per figure drawn, its length proportional to its value.
    bars = [f for f in on_page if f["bar"]]
    epsilon_bars = [b for b in bars if b["id"].startswith("epsilon/")]
    assert len(epsilon_bars) == len(doc["epsilon"])
    scales = [b["width"] / expected[b["id"]]["value"] for b in epsilon_bars]
    assert not scales or max(scales) - min(scales) <= 0.001 * max(scales), scales
    drawn = {b["id"] for b in bars}
    if source == "hand-built ledger":
        assert "themes/medical/projects/heart/budget/allocated" in drawn
        assert "themes/medical/projects/heart/budget/by_category/personnel" in drawn
        assert "themes/medical/projects/heart/models/heart-v1/contributions/shares/minami" in drawn
    else:  # the shares drawn from model.contributions, one bar per member
        heart = "themes/medical/projects/heart"
        shares = f"{heart}/models/heart-v1/contributions/shares/"
        assert {f"{shares}{m}" for m in ("cleveland-clinic", "va-long-beach")} <= drawn
        assert {f"{heart}/budget/allocated", f"{heart}/budget/by_category/compute"} <= drawn
        assert f"{heart}/licences/licence-1/royalty_yen" in expected

    # Every citation leads to its row in the appendix; the appendix lists exactly those.
    links = page.eval_on_selector_all('a[href^="#"]', CITATIONS)
    assert links and all(link["target"] for link in links)
    rows = page.eval_on_selector_all(
        "#cited-entries tr[data-seq]", "rs => rs.map(r => r.dataset.seq)"
    )
    assert sorted(int(s) for s in rows) == sorted(cited(doc))
    last = doc["appendix"][-1]
    row_text = page.inner_text(f"#entry-{last['seq']}")
    assert last["kind"] in row_text and last["leaf_hash"] in row_text
    page.click(f'a[href="#entry-{last["seq"]}"]')
    assert page.evaluate("location.hash") == f"#entry-{last['seq']}"

    # User strings are text: no script ran or exists, the title reads as typed.
    assert page.locator("script").count() == 0
    assert page.get_by_text("<script>alert('x')</script>", exact=False).count() >= 1
    root = page.get_attribute("#ledger", "data-root")
    assert root == doc["ledger"]["root"]

    assert requests == [url]  # nothing fetched but the file itself
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    artifact = source == "hand-built ledger" and audience == "board"
    if artifact and "test-artifacts/" in (ROOT / ".gitignore").read_text():
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        shutil.copy(tmp_path / "report.png", ROOT / "test-artifacts" / "report.png")
    page.close()
