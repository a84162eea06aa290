"""The job and privacy pages over a job really trained (3 rounds, DP ε=1, SecAgg+): one bar
per round, the refusing site's reason, ε over time ending at the budget's figure, and the
progress fragment that polls only while its job runs."""

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kumiai.adapters.storage.database import transaction
from kumiai.domain.training import TrainingSettings
from kumiai.interfaces.api.app import create_app
from kumiai.services import jobs, privacy
from kumiai.services.agreements import refuse_request
from kumiai.services.consortium import open_consortium
from kumiai.services.privacy import set_budget
from kumiai.services.training import train
from tests.domain.report_ledger import EVIL
from tests.interfaces.privacy_charts import assert_charts_end_at_the_table
from tests.interfaces.web_sign_in import sign_in
from tests.services.helpers import HOSPITALS, heart_consortium

pytestmark = pytest.mark.simulation
RAW = "<script>alert('x')</script>"
HOSPITALS_HEART = ("cleveland-clinic-heart", "hungarian-cardiology-heart", "va-long-beach-heart")


@dataclass(frozen=True)
class Trained:
    home: Path
    job: str
    client: TestClient


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    home = tmp_path_factory.mktemp("web-jobs") / "c"
    consortium, requests = heart_consortium(home, sign=HOSPITALS[:2])
    refuse_request(consortium, requests[HOSPITALS[2]], EVIL)
    set_budget(consortium, "cleveland-clinic-heart", 3.0)
    outcome = train(consortium, "heart", TrainingSettings(rounds=3, epsilon=1.0))
    with TestClient(create_app(home, dashboard=True)) as client:
        sign_in(client, consortium.coordinator_key())
        yield Trained(home, outcome.job_id, client)


def test_the_job_page_draws_a_bar_per_round_and_gives_each_refusal_its_reason(
    trained: Trained,
) -> None:
    html = trained.client.get(f"/ui/jobs/{trained.job}").text
    job = jobs.job_detail(open_consortium(trained.home), trained.job)
    assert len(job.rounds) == 3 and job.status == "completed"
    bars = re.findall(r'data-figure="round/(\d+)/auc" data-value="([^"]+)"', html)
    assert [(int(n), float(v)) for n, v in bars] == [
        (r["round"], r["overall"]["auc"]) for r in job.rounds
    ]
    accuracy = re.findall(r'data-figure="round/(\d+)/accuracy" data-value="([^"]+)"', html)
    assert [(int(n), float(v)) for n, v in accuracy] == [
        (r["round"], r["overall"]["accuracy"]) for r in job.rounds
    ]
    assert 'data-status="completed" data-rounds="3"' in html
    assert "hx-get" not in html  # a finished job's page does not poll
    refused = [s for s in job.sites if s.status == "refused"]
    assert [s.dataset for s in refused] == ["va-long-beach-heart"]
    row = html[html.index("<td>va-long-beach-heart</td>") :]
    row = row[: row.index("</tr>")]
    assert '<td class="decision-refused">refused</td>' in row
    assert "no signed agreement for project &#39;heart&#39;" in row  # the node's own reason
    # The steward's reason, as hostile as a user can type it, is text on the project page.
    project = trained.client.get("/ui/projects/heart").text
    assert RAW not in project and RAW not in html
    request = project[project.index('<td class="decision-refused">refused</td>') :]
    assert request.startswith('<td class="decision-refused">refused</td><td>&lt;script&gt;')


def test_the_progress_fragment_polls_while_its_job_runs_and_stops_after(
    trained: Trained,
) -> None:
    consortium = open_consortium(trained.home)
    done = trained.client.get(f"/ui/jobs/{trained.job}/progress").text
    assert done.startswith('<section id="progress"') and "hx-get" not in done
    assert "<html" not in done  # a fragment, for htmx to swap in
    settings = TrainingSettings(rounds=5, epsilon=1.0)
    with transaction(consortium.sessions) as session:  # as `kumiai train` records a start
        session.add(jobs.running_job("job-live", "heart", "train", settings))
    live = trained.client.get("/ui/jobs/job-live/progress").text
    assert 'hx-get="/ui/jobs/job-live/progress" hx-trigger="every 1s" hx-swap="outerHTML"' in live
    assert 'data-status="running" data-rounds="0"' in live and "No round has completed" in live
    jobs.fail_job(consortium, "job-live", "stopped by the test")
    ended = trained.client.get("/ui/jobs/job-live/progress").text
    assert 'data-status="failed"' in ended and "hx-get" not in ended


def test_the_privacy_page_replays_epsilon_over_time_to_the_budget_figure(
    trained: Trained,
) -> None:
    html = trained.client.get("/ui/privacy").text
    lines = {b.dataset: b for b in privacy.budgets(open_consortium(trained.home))}
    for dataset in ("cleveland-clinic-heart", "hungarian-cardiology-heart"):
        values = [
            float(v)
            for v in re.findall(rf'data-figure="epsilon/{dataset}/\d+" data-value="([^"]+)"', html)
        ]
        spends = sorted({v for v in values if v})
        assert len(spends) == 3 and values == sorted(values)  # a rise per round, never lower
        assert values[-1] == pytest.approx(lines[dataset].spent, abs=1e-9)
        assert 0 < values[-1] <= 1.0
    # The refusing site was asked (its plan held from the start to its refusal), spent nothing.
    assert set(
        re.findall(r'data-figure="epsilon/va-long-beach-heart/\d+" data-value="([^"]+)"', html)
    ) == {"0.0"}
    assert_charts_end_at_the_table(html, list(lines.values()), set(HOSPITALS_HEART))
    row = html[html.index('<tr data-dataset="cleveland-clinic-heart">') :]
    assert f'<td class="n">{3.0:.4f}</td>' in row[: row.index("</tr>")]  # its lifetime budget


def test_each_epsilon_chart_ends_with_the_lifetime_budget_it_is_read_against(
    trained: Trained,
) -> None:
    html = trained.client.get("/ui/privacy").text
    lines = {b.dataset: b for b in privacy.budgets(open_consortium(trained.home))}
    assert lines["cleveland-clinic-heart"].lifetime == 3.0
    assert lines["hungarian-cardiology-heart"].lifetime is None
    bars = re.findall(
        r'<rect class="bar budget" x="[\d.]+" y="\d+" width="([\d.]+)" height="\d+" '
        r'data-figure="epsilon/([^/"]+)/lifetime" data-value="([^"]+)"',
        html,
    )
    # The longest bar, so the chart's scale is the budget; a dataset without one has none.
    assert bars == [("380.00", "cleveland-clinic-heart", "3.0")]
    # With a budget, each entry's stack (spent + committed + left) is as long as the budget.
    stacks: dict[str, float] = {}
    for seq, value in re.findall(
        r'data-figure="(?:epsilon|committed|left)/cleveland-clinic-heart/(\d+)" '
        r'data-value="([^"]+)"',
        html,
    ):
        stacks[seq] = stacks.get(seq, 0.0) + float(value)
    assert len(stacks) >= 5 and all(v == pytest.approx(3.0) for v in stacks.values())
    assert "of its lifetime budget 3.0000</figcaption>" in html
    assert "ε of hungarian-cardiology-heart, entry by entry: spent 0.99" in html
    assert "; no lifetime budget set</figcaption>" in html
