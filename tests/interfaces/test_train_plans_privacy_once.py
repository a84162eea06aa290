"""`kumiai train` plans a job's privacy once: the plan it shows is the plan it runs with."""

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kumiai.domain.errors import InvalidInput
from kumiai.domain.training import TrainingSettings
from kumiai.interfaces.cli.main import app
from kumiai.services import privacy
from kumiai.services.training import train
from tests.services.helpers import HOSPITALS, heart_consortium

SITES = HOSPITALS[:2]


def count_planning(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count whole-job plans and per-dataset estimates, wherever they are called from."""
    calls: Counter[str] = Counter()
    plan_job, estimate = privacy.plan_job_privacy, privacy.estimate_plan

    def counted_plan_job(*args: Any, **kwargs: Any) -> privacy.JobPrivacy:
        calls["job"] += 1
        return plan_job(*args, **kwargs)

    def counted_estimate(*args: Any, **kwargs: Any) -> Any:
        calls["dataset"] += 1
        return estimate(*args, **kwargs)

    monkeypatch.setattr(privacy, "estimate_plan", counted_estimate)
    # `kumiai train` imports it from the service when it runs, so this patch reaches it too.
    monkeypatch.setattr(privacy, "plan_job_privacy", counted_plan_job)
    monkeypatch.setattr("kumiai.services.training.plan_job_privacy", counted_plan_job)
    return calls


def test_kumiai_train_plans_privacy_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=SITES)
    calls = count_planning(monkeypatch)
    result = CliRunner().invoke(
        app,
        ["train", "heart", "--rounds", "1", "--epsilon", "1"],
        env={"KUMIAI_HOME": str(consortium.home), "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "Planned privacy spend" in result.output
    # One plan for the job; one estimate per dataset (record level calibrates nothing jointly).
    assert calls == Counter({"job": 1, "dataset": len(SITES)})


def test_a_plan_made_for_other_settings_is_refused_before_any_node(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=SITES[:1])
    planned = privacy.plan_job_privacy(consortium, "heart", TrainingSettings(rounds=1, epsilon=1))
    with pytest.raises(InvalidInput, match="other settings"):
        train(consortium, "heart", TrainingSettings(rounds=1, epsilon=2), privacy=planned)


@pytest.mark.parametrize("seconds", ["0", "-5", "nan"])
def test_a_round_timeout_that_is_not_positive_is_refused_before_any_job(
    tmp_path: Path, seconds: str
) -> None:
    from kumiai.services.jobs import list_jobs
    from kumiai.services.transparency import verify_ledger

    consortium, _ = heart_consortium(tmp_path / "c", hospitals=SITES[:1])
    before = verify_ledger(consortium).entries
    result = CliRunner().invoke(
        app,
        ["train", "heart", "--rounds", "1", "--round-timeout", seconds],
        env={"KUMIAI_HOME": str(consortium.home), "COLUMNS": "200"},
    )
    assert result.exit_code != 0 and isinstance(result.exception, InvalidInput)
    assert str(result.exception) == (
        f"the round timeout must be a positive number of seconds, not {seconds} (--round-timeout)"
    )
    assert list_jobs(consortium) == [] and verify_ledger(consortium).entries == before
