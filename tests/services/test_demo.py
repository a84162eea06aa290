"""The main job: `kumiai demo` builds, trains privately and securely, and verifies its ledger."""

from pathlib import Path

import pytest

from kumiai.domain.errors import InvalidInput
from kumiai.services.demo import DEMO_SETTINGS, REFUSING, run_demo

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
    spent = {b.dataset: b for b in report.budgets}
    for dataset in outcome.sites:
        assert 0.9 < spent[dataset].spent <= 1.0 + 1e-9 and spent[dataset].committed == 0
        assert spent[dataset].lifetime == 5.0
    assert spent[refusing].spent == 0
    assert report.audit.ok, report.audit.findings
    assert report.audit.cosignatures >= 6  # every member's node witnessed the final head
    with pytest.raises(InvalidInput, match="is not empty"):
        run_demo(tmp_path / "demo")
