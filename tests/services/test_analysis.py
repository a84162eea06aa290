"""`kumiai analyse`: a signed statistics job across sites, paid at each node, recorded once."""

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRow, LedgerEntryRow
from kumiai.domain.analysis import Query, make_analysis
from kumiai.domain.analysis_results import noise_halfwidth
from kumiai.domain.errors import InvalidInput, JobFailed
from kumiai.interfaces.cli.main import app
from kumiai.services.analysis import analyse
from kumiai.services.consortium import Consortium
from kumiai.services.jobs import list_jobs
from kumiai.services.privacy import budgets
from kumiai.services.report import consortium_report
from kumiai.services.transparency import show_entries
from tests.services.helpers import HOSPITALS, heart_consortium, spend_records

ANALYSIS = make_analysis(
    [
        Query("count"),
        Query("mean", "age", low=0.0, high=120.0),
        Query("crosstab", "sex", "target", levels=(("Female", "Male"), ("0", "1"))),
    ],
    0.9,
)


def _entries(consortium: Consortium) -> int:
    with transaction(consortium.sessions) as session:
        return session.scalar(select(func.count()).select_from(LedgerEntryRow)) or 0


def _kept(consortium: Consortium, hospital: str, job: str) -> list[int]:
    path = consortium.member_home(hospital) / "analyses" / f"{job}.{hospital}-heart.json"
    return list(json.loads(path.read_text())["noisy"])


def test_a_secure_analysis_is_paid_at_each_node_and_recorded_once(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(
        tmp_path / "c", kinds="train,evaluate,statistics", epsilon_cap=3.0, min_cohort=20
    )
    entries = _entries(consortium)
    outcome = analyse(consortium, "heart", ANALYSIS)

    assert outcome.secure  # an agreement forbids plain aggregation: on by default
    assert outcome.sites == [f"{h}-heart" for h in HOSPITALS] and outcome.refused == {}
    assert outcome.min_cohort == 20 and outcome.confidence == 0.95
    # the figures are the sums of what each node drew and kept (the coordinator saw them masked)
    kept = [_kept(consortium, h, outcome.job_id) for h in HOSPITALS]
    total = [sum(column) for column in zip(*kept, strict=True)]
    count, mean, crosstab = outcome.results
    assert count.figures[0].value == max(total[0], 0)
    w = noise_halfwidth(1 / 0.3, 1)  # the sum holds one discrete Laplace draw
    assert (count.figures[0].low, count.figures[0].high) == (total[0] - w, total[0] + w)
    assert abs(count.figures[0].value - 797) < 20 * w  # 304 + 293 + 200 heart rows
    assert [r.epsilon for r in outcome.results] == pytest.approx([0.3, 0.3, 0.3])
    assert [f.label for f in crosstab.figures] == [
        "sex=Female, target=0",
        "sex=Female, target=1",
        "sex=Male, target=0",
        "sex=Male, target=1",
    ]
    assert 0 <= mean.figures[0].low <= mean.figures[0].value <= mean.figures[0].high <= 120

    for hospital in HOSPITALS:
        kinds = [(r["kind"], r["epsilon"]) for r in spend_records(consortium, hospital)]
        assert kinds == [("reserve", 0.9), ("spend", 0.9), ("release", 0.9)]
    lines = {line.dataset: line for line in budgets(consortium)}
    assert all(lines[f"{h}-heart"].spent == pytest.approx(0.9) for h in HOSPITALS)
    assert all(lines[f"{h}-heart"].committed == 0 for h in HOSPITALS)

    assert _entries(consortium) == entries + 2  # job.started and analysis.released
    [entry] = show_entries(consortium, kind="analysis.released")
    assert entry.payload["job"] == outcome.job_id and entry.payload["epsilon"] == 0.9
    assert entry.payload["results"][0]["figures"][0]["value"] == count.figures[0].value
    assert entry.payload["spent"] == {f"{h}-heart": 0.9 for h in HOSPITALS}
    [started] = show_entries(consortium, kind="job.started")
    assert started.payload["document"]["job"]["kind"] == "statistics"
    # the report, computed from the verified ledger alone, counts the analysis's ε
    report = consortium_report(consortium, "investor")
    figures = {line["dataset"]: line["epsilon"] for line in report["epsilon"]}
    assert sorted(figures) == [f"{h}-heart" for h in HOSPITALS]
    assert all(f["value"] == 0.9 and f["cites"] == [entry.seq] for f in figures.values())
    with transaction(consortium.sessions) as session:
        assert session.get(JobRow, outcome.job_id).status == "completed"


def test_a_site_below_the_minimum_cohort_is_refused_and_the_others_answer(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(
        tmp_path / "c", kinds="statistics", plain_aggregation=True, min_cohort=250
    )
    outcome = analyse(consortium, "heart", ANALYSIS)
    assert not outcome.secure  # every agreement allows plain aggregation
    assert outcome.sites == ["cleveland-clinic-heart", "hungarian-cardiology-heart"]
    [reason] = outcome.refused.values()
    assert "site 'va-long-beach-heart' holds 200 rows, below the minimum cohort of 250" in reason
    assert spend_records(consortium, "va-long-beach") == []
    assert not (consortium.member_home("va-long-beach") / "analyses").exists()
    # in plain aggregation each site is noised in full: two draws in the sum
    w = noise_halfwidth(1 / 0.3, 2)
    figure = outcome.results[0].figures[0]
    assert figure.high - figure.low == 2 * w


def test_when_every_site_refuses_nothing_is_charged_and_no_result_is_recorded(
    tmp_path: Path,
) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", kinds="statistics", min_cohort=1000)
    with pytest.raises(JobFailed, match=r"every node refused the analysis: .*below the minimum"):
        analyse(consortium, "heart", ANALYSIS)
    assert all(spend_records(consortium, h) == [] for h in HOSPITALS)
    assert show_entries(consortium, kind="analysis.released") == []
    [failed] = show_entries(consortium, kind="job.failed")
    assert "every node refused" in failed.payload["error"]
    [job] = list_jobs(consortium)
    assert job.status == "failed" and job.kind == "statistics"
    assert {s.status for s in job.sites} == {"refused"}
    assert all("below the minimum cohort of 1000" in (s.reason or "") for s in job.sites)


def test_a_secure_analysis_with_one_site_left_releases_nothing_and_frees_the_epsilon(
    tmp_path: Path,
) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", kinds="statistics", min_cohort=295)
    with pytest.raises(JobFailed, match="secure aggregation needs at least 2 sites"):
        analyse(consortium, "heart", ANALYSIS)
    records = spend_records(consortium, "cleveland-clinic")
    assert [r["kind"] for r in records] == ["reserve", "release"]
    assert records[-1]["epsilon"] == 0.0  # nothing was spent
    assert all(line.spent == 0 for line in budgets(consortium))


def test_kumiai_analyse_prints_json_and_refuses_a_query_without_bounds(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", kinds="statistics", plain_aggregation=True)
    domain = tmp_path / "domain.json"
    domain.write_text(json.dumps({"bounds": {"age": [0, 120]}, "levels": {"sex": ["F", "M"]}}))
    env = {"KUMIAI_HOME": str(consortium.home)}
    args = ["analyse", "heart", "--epsilon", "1", "--count", "--mean", "age"]
    result = CliRunner().invoke(app, [*args, "--public-domain", str(domain), "--json"], env=env)
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["epsilon"] == 1.0 and document["secure_aggregation"] is False
    assert [r["query"] for r in document["results"]] == ["count", "mean(age)"]
    assert [r["epsilon"] for r in document["results"]] == [0.5, 0.5]
    refused = CliRunner().invoke(app, args, env=env)
    assert isinstance(refused.exception, InvalidInput)
    assert "--mean age: no public bounds; write --mean age:LOW:HIGH" in str(refused.exception)
    table = CliRunner().invoke(app, ["analyse", "heart", "--epsilon", "1", "--count"], env=env)
    assert table.exit_code == 0 and "95% interval" in table.output
    queries = tmp_path / "queries.json"
    queries.write_text(
        json.dumps(
            {"queries": [{"kind": "histogram", "column": "age", "low": 0, "high": 120, "bins": 4}]}
        )
    )
    from_file = CliRunner().invoke(
        app, ["analyse", "heart", "--epsilon", "0.5", "--queries", str(queries), "--json"], env=env
    )
    assert from_file.exit_code == 0, from_file.output
    [histogram] = json.loads(from_file.output)["results"]
    assert histogram["query"] == "histogram(age)" and len(histogram["figures"]) == 4


def test_a_stopped_analysis_is_failed_and_frees_what_no_node_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kumiai.node.port import LocalNode

    consortium, _ = heart_consortium(tmp_path / "c", kinds="statistics")

    def interrupted(self, dataset, job, peers, evidence=()):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalNode, "release_analysis", interrupted)
    with pytest.raises(KeyboardInterrupt):
        analyse(consortium, "heart", ANALYSIS)
    for hospital in HOSPITALS:
        records = spend_records(consortium, hospital)
        assert [(r["kind"], r["epsilon"]) for r in records] == [("reserve", 0.9), ("release", 0.0)]
    [failed] = show_entries(consortium, kind="job.failed")
    assert failed.payload["error"] == "stopped: KeyboardInterrupt"
    assert all(line.committed == 0 and line.spent == 0 for line in budgets(consortium))


def test_an_analysis_may_name_some_of_the_projects_datasets(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", kinds="statistics", plain_aggregation=True)
    entries = _entries(consortium)
    with pytest.raises(InvalidInput, match="project 'heart' has no data-use request for x-heart"):
        analyse(consortium, "heart", ANALYSIS, datasets=("x-heart",))
    assert _entries(consortium) == entries  # refused before anything was written
    with transaction(consortium.sessions) as session:
        assert session.scalar(select(func.count()).select_from(JobRow)) == 0
    two = ("cleveland-clinic-heart", "va-long-beach-heart")
    outcome = analyse(consortium, "heart", ANALYSIS, datasets=two)
    assert outcome.sites == list(two) and outcome.refused == {}
    assert spend_records(consortium, "hungarian-cardiology") == []
    [started] = show_entries(consortium, kind="job.started")
    assert started.payload["document"]["job"]["datasets"] == list(two)


def test_a_secure_analysis_is_re_issued_for_the_sites_that_admitted_it(tmp_path: Path) -> None:
    """Each node masks only for exactly the job document's sites (kumiai.domain.peer_trust),
    so when a site refuses, the coordinator signs a new job for the others."""
    consortium, _ = heart_consortium(tmp_path / "c", kinds="statistics", min_cohort=250)
    outcome = analyse(consortium, "heart", ANALYSIS)
    two = ["cleveland-clinic-heart", "hungarian-cardiology-heart"]
    assert outcome.secure and outcome.sites == two
    [reason] = outcome.refused.values()
    assert "site 'va-long-beach-heart' holds 200 rows, below the minimum cohort of 250" in reason
    jobs = {job.id: job for job in list_jobs(consortium)}
    second = jobs.pop(outcome.job_id)
    [first] = jobs.values()
    assert second.status == "completed" and first.status == "failed"
    assert {s.dataset: s.status for s in first.sites}["va-long-beach-heart"] == "refused"
    [failed] = show_entries(consortium, kind="job.failed")
    assert failed.payload["job"] == first.id
    assert failed.payload["error"] == (
        f"re-issued as {outcome.job_id} for cleveland-clinic-heart, hungarian-cardiology-heart: "
        "under secure aggregation a node masks only for exactly the sites the signed job "
        "names, and va-long-beach-heart refused"
    )
    started = show_entries(consortium, kind="job.started")
    assert [e.payload["job"] for e in started] == [first.id, second.id]
    assert started[1].payload["document"]["job"]["datasets"] == two
    records = [(r["kind"], r["job"]) for r in spend_records(consortium, "cleveland-clinic")]
    assert records == [
        ("reserve", first.id),
        ("release", first.id),
        ("reserve", second.id),
        ("spend", second.id),
        ("release", second.id),
    ]
    assert spend_records(consortium, "va-long-beach") == []
    # the participants witnessed the head their peers' keys were proven against
    assert consortium.node("cleveland-clinic").last_witnessed() is not None


def test_a_re_issued_job_that_a_site_refuses_again_releases_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kumiai.node.port import LocalNode

    consortium, _ = heart_consortium(tmp_path / "c", kinds="statistics", min_cohort=250)
    admit, calls = LocalNode.admit_analysis, []

    def fickle(self, dataset, job):  # type: ignore[no-untyped-def]
        calls.append(dataset)
        if calls.count(dataset) == 2 and dataset == "hungarian-cardiology-heart":
            return False, "hungarian-cardiology refused: changed its mind", ""
        return admit(self, dataset, job)

    monkeypatch.setattr(LocalNode, "admit_analysis", fickle)
    with pytest.raises(JobFailed) as failed:
        analyse(consortium, "heart", ANALYSIS)
    assert str(failed.value) == (
        "secure aggregation masks for every site the signed job names, and "
        "hungarian-cardiology-heart refused (hungarian-cardiology refused: changed its mind); "
        "nothing was released; run it again for the others: kumiai analyse heart "
        "--dataset cleveland-clinic-heart"
    )
    assert show_entries(consortium, kind="analysis.released") == []
    assert [r["kind"] for r in spend_records(consortium, "cleveland-clinic")] == [
        "reserve",
        "release",
        "reserve",
        "release",
    ]
    assert all(line.committed == 0 and line.spent == 0 for line in budgets(consortium))


def test_a_coordinator_that_proves_nothing_gets_no_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kumiai.services.analysis as service

    consortium, _ = heart_consortium(tmp_path / "c", kinds="statistics")
    monkeypatch.setattr(service, "evidence_for_nodes", lambda consortium, sites: {})
    with pytest.raises(JobFailed, match="this node has witnessed no tree head"):
        analyse(consortium, "heart", ANALYSIS)
    for hospital in HOSPITALS:
        records = spend_records(consortium, hospital)
        assert [(r["kind"], r["epsilon"]) for r in records] == [("reserve", 0.9), ("release", 0.0)]
        assert not list((consortium.member_home(hospital) / "analyses").glob("*.json"))
