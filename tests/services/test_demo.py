"""The main job: `kumiai demo` builds, trains privately and securely, and verifies its ledger."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kumiai.domain.errors import InvalidInput
from kumiai.services.demo import DEMO_SETTINGS, PROJECT_EPSILON_CAP, REFUSING, run_demo
from kumiai.services.demo_association import ALLOCATIONS, REVENUE_YEN, SPEND
from kumiai.services.milestones import list_milestones

pytestmark = pytest.mark.simulation


def test_the_demo_trains_on_three_hospitals_with_dp_and_verifies_its_ledger(
    tmp_path: Path,
) -> None:
    report = run_demo(tmp_path / "demo")
    outcome = report.outcome
    refusing = f"{REFUSING}-heart"
    assert refusing in outcome.refused and refusing not in outcome.sites
    assert len(outcome.sites) == 3 and outcome.rounds == DEMO_SETTINGS.rounds
    assert float(outcome.overall["accuracy"]) > 0.7  # type: ignore[arg-type]
    assert set(report.local) == {*outcome.sites, refusing}
    assert set(report.pooled) == set(outcome.sites)
    story = report.association
    charged = story.contributions.charged_epsilon
    assert set(charged) == set(outcome.sites)
    spent = {b.dataset: b for b in report.budgets}
    for dataset in outcome.sites:
        # The job's ε=1, then the contribution analysis its node charged itself.
        assert 0.9 < spent[dataset].spent - charged[dataset] <= 1.0 + 1e-9
        assert 0 < charged[dataset] < 2 and spent[dataset].committed == 0
        assert spent[dataset].spent <= PROJECT_EPSILON_CAP and spent[dataset].lifetime == 5.0
    assert spent[refusing].spent == 0
    assert report.audit.ok, report.audit.findings
    assert report.audit.cosignatures >= 6  # every member's node witnessed the final head

    shares = story.contributions.shares
    assert sum(shares.shares.values()) == pytest.approx(shares.grand - shares.empty, abs=1e-9)
    revenue = story.revenue
    assert revenue.royalty_yen == REVENUE_YEN * 500 // 10_000
    assert revenue.association_yen == revenue.royalty_yen // 5  # the default charter share
    assert sum(revenue.payouts.values()) == revenue.royalty_yen - revenue.association_yen
    assert set(revenue.payouts) == {d.removesuffix("-heart") for d in outcome.sites}
    assert story.royalties.ok and story.royalties.distributions == 1
    assert story.budget.allocated_yen == sum(amount for _, amount in ALLOCATIONS)
    assert story.budget.total_spent_yen == sum(amount for _, amount, _ in SPEND)
    assert story.budget.compute.used == DEMO_SETTINGS.rounds * len(outcome.sites)
    [milestone] = list_milestones(report.demo.consortium, report.demo.project)
    assert milestone.status == "accepted"
    # An auditor's way: the command, on the export alone, outside any home.
    verified = subprocess.run(
        [sys.executable, "-m", "kumiai", "royalties", "verify", str(story.export), "--json"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    document = json.loads(verified.stdout)
    assert document["distributions"] == 1 and document["mismatches"] == []
    with pytest.raises(InvalidInput, match="is not empty"):
        run_demo(tmp_path / "demo")
