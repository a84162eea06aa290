"""`kumiai demo industrial`: the factories' whole story, in its quick (3-round) setting."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kumiai.domain.errors import InvalidInput
from kumiai.interfaces.cli.main import app
from kumiai.services.demo_industrial import (
    ANALYSIS_EPSILON,
    DEMO_SETTINGS,
    EPSILON_CAP,
    MIN_COHORT,
    QUICK_ROUNDS,
    run_industrial_demo,
)
from kumiai.services.industrial import FACTORIES
from kumiai.services.odrl import IDENTICAL
from kumiai.services.privacy import budgets
from kumiai.services.transparency import show_entries

pytestmark = pytest.mark.simulation
QUICK = replace(DEMO_SETTINGS, rounds=QUICK_ROUNDS)


def test_the_industrial_demo_analyses_trains_compares_audits_and_verifies(
    tmp_path: Path,
) -> None:
    home = tmp_path / "factories"
    report = run_industrial_demo(home, QUICK)
    datasets = sorted(f"{m}-log" for m in FACTORIES)
    consortium = report.demo.consortium

    # The ODRL round trip: the policy file read back is the agreement held, signature valid.
    assert report.odrl.stored == IDENTICAL and report.odrl.signature == "valid"
    assert report.odrl.terms["min_cohort"] == MIN_COHORT
    assert report.odrl.terms["epsilon_cap"] == EPSILON_CAP
    assert json.loads(report.policy.read_text())["@type"] == "Agreement"

    # DP analytics: every factory took part, each figure has an interval, and it is recorded.
    analysis = report.analysis
    assert analysis.sites == datasets and analysis.refused == {}
    assert analysis.min_cohort == MIN_COHORT and analysis.epsilon == ANALYSIS_EPSILON
    names = [r.query.name for r in analysis.results]
    assert names == [
        "count",
        "mean(Torque [Nm])",
        "histogram(Tool wear [min])",
        "crosstab(Type,target)",
    ]
    figures = [f for r in analysis.results for f in r.figures]
    # Each figure has its interval, unless it is a count suppressed below the minimum cohort
    # (the 21 failures of the H factory's machines may fall there, noise and all).
    shown = [f for f in figures if f.value is not None]
    assert all(f.low <= f.value <= f.high for f in shown)  # type: ignore[operator]
    assert all("minimum cohort" in f.note for f in figures if f.value is None)
    assert len(shown) >= len(figures) - 1
    assert abs(analysis.results[0].figures[0].value - 10_000) < 200  # type: ignore[operator]
    crosstab = {f.label for f in analysis.results[3].figures}
    assert crosstab == {f"Type={t}, target={y}" for t in "LMH" for y in "01"}
    [released] = show_entries(consortium, kind="analysis.released")
    assert released.payload["job"] == analysis.job_id
    recorded = [f for r in released.payload["results"] for f in r["figures"]]
    assert [f["low"] for f in recorded] == [f.low for f in figures]

    # The per-site table has every factory, each scored alone and federated on its own rows.
    assert [g.dataset for g in report.gains] == datasets
    assert {g.test_rows for g in report.gains} == {728, 251, 750, 773}
    assert all(g.local is not None and g.federated is not None for g in report.gains)
    assert report.sites_gaining == sum(g.gains for g in report.gains)
    assert report.outcome.rounds == QUICK_ROUNDS and sorted(report.outcome.sites) == datasets
    # Personalised at each node, or refused by the coordinator with its reason (a DP model).
    personalised = [g for g in report.gains if g.personalised is not None]
    assert personalised or "differential privacy" in report.personalise_refused

    # The card carries the nodes' audit: every factory's membership-inference figures.
    audit = report.card["audit"]
    assert audit is not None and audit["entry"] == report.audit.entry
    assert sorted(audit["membership"]) == datasets
    for site in audit["membership"].values():
        assert site["epsilon_lower_bound"] <= site["accounted_epsilon"]
    markdown = report.card_path.read_text()
    assert "## Privacy audit: membership inference" in markdown
    assert report.outcome.model_id in markdown

    # Each factory paid the analysis and the job, within its agreement's cap.
    spent = {b.dataset: b.spent for b in budgets(consortium)}
    for dataset in datasets:
        assert ANALYSIS_EPSILON + 0.9 < spent[dataset] <= EPSILON_CAP

    assert report.ledger.ok, report.ledger.findings
    assert report.ledger.cosignatures >= len(FACTORIES) + 1  # every member's node witnessed
    assert report.export.exists()
    with pytest.raises(InvalidInput, match="is not empty"):
        run_industrial_demo(home, QUICK)


def test_kumiai_demo_industrial_refuses_a_used_directory_in_one_line(tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("")
    result = CliRunner().invoke(app, ["demo", "industrial", "--dir", str(used), "--quick"])
    assert result.exit_code != 0
    assert isinstance(result.exception, InvalidInput)
    assert "is not empty" in str(result.exception)
    assert not (used / "outputs").exists()
