"""The dashboard in a real browser (Debian's Chromium through Playwright), served by uvicorn
over a consortium built once for the module.

Two paths a person takes: Overview → Project → Job while `kumiai train` runs in another
process (the progress part of the page updates itself round by round, its chart growing
a bar at a time, without reloading the page), and Investor → a figure's citation → its
ledger entry → the inclusion proof, which the test checks again from the page's numbers.
Screenshots land in the test's tmp_path and in test-artifacts/ (git-ignored). Without
Chromium these tests fail, saying how to install it (as the report's browser test does).
"""

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kumiai.domain import merkle
from kumiai.interfaces.api.app import create_app
from kumiai.services import jobs, transparency
from kumiai.services.consortium import open_consortium
from tests.interfaces.test_report_browser import ROOT, browser, require_chromium
from tests.interfaces.uvicorn_thread import served_on_loopback
from tests.services.helpers import HOSPITALS, heart_consortium

pytestmark = [pytest.mark.browser, pytest.mark.simulation]
__all__ = ["browser", "require_chromium"]  # the report test's fixture, shared
ROUNDS = 8
PROGRESS = """() => {
    const p = document.querySelector('#progress');
    return [Number(p.dataset.rounds), p.querySelectorAll('rect[data-figure$="/auc"]').length,
            p.dataset.status];
}"""


@dataclass(frozen=True)
class Served:
    home: Path
    url: str  # the dashboard's root, ending in /ui/


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Three hospitals, two signed; the API and dashboard under uvicorn in a thread."""
    home = tmp_path_factory.mktemp("web-browser") / "c"
    heart_consortium(home, sign=HOSPITALS[:2])
    with served_on_loopback(create_app(home, dashboard=True, local_operator=True)) as port:
        yield Served(home, f"http://127.0.0.1:{port}/ui/")


def _artifact(path: Path) -> None:
    if "test-artifacts/" in (ROOT / ".gitignore").read_text():
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        shutil.copy(path, ROOT / "test-artifacts" / path.name)


def _shoot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000
    _artifact(path)


def _watch(page: Any, problems: list[str], origin: str) -> None:
    """Record console errors (a CSP violation is one) and any request off this server."""
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on(
        "request",
        lambda r: None if r.url.startswith(origin) else problems.append(f"fetched {r.url}"),
    )
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} for {r.url}") if r.status >= 400 else None,
    )


def _start_training(home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
    command = [sys.executable, "-m", "kumiai", "--home", str(home), "train", "heart"]
    command += ["--rounds", str(ROUNDS), "--epsilon", "1"]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _job_started(home: Path, training: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        listed = jobs.list_jobs(open_consortium(home), "heart")
        if listed:
            return listed[-1].id
        assert training.poll() is None, training.communicate()[0]
        time.sleep(0.2)
    raise AssertionError("kumiai train recorded no job within 180 s")


def test_a_running_job_updates_round_by_round_without_a_reload(
    browser: Any, served: Served, tmp_path: Path
) -> None:
    training = _start_training(served.home)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        _watch(page, problems, served.url.removesuffix("/ui/"))
        page.goto(served.url)
        assert page.title() == "Overview · kumiai"
        assert page.locator("#head.verified").count() == 1
        _shoot(page, tmp_path, "overview")

        page.get_by_role("link", name="heart", exact=True).first.click()
        page.wait_for_url("**/ui/projects/heart")
        assert page.locator("#purpose").inner_text() == "diagnosis support"
        job = _job_started(served.home, training)
        page.reload()
        page.get_by_role("link", name=job).click()
        page.wait_for_url(f"**/ui/jobs/{job}")
        page.evaluate("window.kumiaiMarker = 'the same page'")

        seen: list[tuple[int, int]] = []  # (data-rounds, bars drawn), as they change
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            rounds, bars, status = page.evaluate(PROGRESS)  # one read: never across a swap
            if not seen or seen[-1] != (rounds, bars):
                seen.append((rounds, bars))
                if 0 < rounds < ROUNDS and status == "running":
                    _shoot(page, tmp_path, "job-running")  # mid-job, whichever round it caught
            if status != "running" and rounds == ROUNDS:
                break
            time.sleep(0.1)
        assert training.wait(120) == 0, training.communicate()[0]

        assert page.evaluate("window.kumiaiMarker") == "the same page"  # never reloaded
        assert page.locator("#job-status").inner_text() == "completed"
        assert seen[-1] == (ROUNDS, ROUNDS)
        assert all(rounds == bars for rounds, bars in seen), seen
        assert len({rounds for rounds, _ in seen}) >= 3, seen  # it grew while we watched
        assert [r for r, _ in seen] == sorted(r for r, _ in seen), seen
        refusal = page.locator("#sites tr", has_text="va-long-beach-heart").inner_text()
        assert "refused" in refusal and "no signed agreement" in refusal
        _shoot(page, tmp_path, "job-done")
        assert problems == []
        page.close()
    finally:
        if training.poll() is None:
            training.kill()
            training.wait()


def test_an_investor_follows_a_figure_to_its_entry_and_its_proof(
    browser: Any, served: Served, tmp_path: Path
) -> None:
    consortium = open_consortium(served.home)
    if not jobs.list_jobs(consortium, "heart"):  # run alone: train first, for the figures
        assert _start_training(served.home).wait(600) == 0
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    _watch(page, problems, served.url.removesuffix("/ui/"))
    page.goto(served.url)
    # By keyboard: the first Tab reaches the skip link, then the menu, in order.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for name in ("Overview", "Projects", "Models", "Privacy", "Ledger", "Board", "Investor"):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == name
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/investor")
    assert page.locator("#ledger.verified").count() == 1
    _shoot(page, tmp_path, "investor")

    figure = page.locator("span.figure[data-cites]:not([data-cites=''])").first
    cited = figure.get_attribute("data-cites").split()
    link = figure.locator("sup.cites a").first
    assert link.get_attribute("href") == f"/ui/ledger/entries/{cited[0]}"
    link.click()
    page.wait_for_url(f"**/ui/ledger/entries/{cited[0]}")
    assert page.locator("h1").inner_text() == f"Ledger entry {cited[0]}"

    proof = page.locator("#proof")
    assert proof.get_attribute("data-verified") == "true"
    seq, size = int(proof.get_attribute("data-seq")), int(proof.get_attribute("data-size"))
    leaf = bytes.fromhex(proof.get_attribute("data-leaf"))
    root = bytes.fromhex(proof.get_attribute("data-root"))
    path = [bytes.fromhex(t) for t in page.locator("#path li code.sibling").all_inner_texts()]
    # The reader's own check, from what the page shows, against the signed head's root.
    assert merkle.verify_inclusion(leaf, seq, size, path, root)
    head = transparency.latest_head(consortium)
    assert (size, root.hex()) == (head.size, head.root)
    _shoot(page, tmp_path, "entry-proof")

    page.get_by_role("link", name="Ledger", exact=True).click()
    page.get_by_label("Kind or prefix").fill("round.")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/ui/ledger?kind=round.*")
    kinds = page.locator("#entries tbody tr td:nth-child(4)").all_inner_texts()
    assert kinds and set(kinds) == {"round.completed"}
    _shoot(page, tmp_path, "ledger")
    assert problems == []
    page.close()
