"""Many jobs on one simulation engine: Ray starts once, every job still runs and records."""

from dataclasses import replace
from pathlib import Path

import pytest
import ray

from kumiai.domain.training import TrainingSettings
from kumiai.services.jobs import list_jobs
from kumiai.services.training import many_jobs, train
from tests.services.helpers import heart_consortium

pytestmark = pytest.mark.simulation


def test_two_jobs_share_one_ray_which_ends_with_the_block(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c")
    settings = TrainingSettings(rounds=2, epsilon=8.0)
    with many_jobs():
        first = train(consortium, "heart", settings)
        assert ray.is_initialized()  # kept for the next job
        second = train(consortium, "heart", replace(settings, seed=1))
    assert not ray.is_initialized()
    assert first.rounds == second.rounds == 2 and first.model_id != second.model_id
    assert {job.status for job in list_jobs(consortium)} == {"completed"}
