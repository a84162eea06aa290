"""A node's spend log that lost lines is caught before the next private job (simulation)."""

from pathlib import Path

import pytest

from kumiai.domain.training import TrainingSettings
from kumiai.node.home import NodeHome
from kumiai.node.spendlog import SpendLog
from kumiai.services.recorder import latest_attestations
from kumiai.services.training import train
from tests.services.helpers import HOSPITALS, heart_consortium

pytestmark = pytest.mark.simulation

DATASETS = [f"{h}-heart" for h in HOSPITALS]
PRIVATE = TrainingSettings(rounds=2, epsilon=1.0, learning_rate=0.05)


def test_a_truncated_spend_log_refuses_the_next_job_by_its_own_signature(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c")
    first = train(consortium, "heart", PRIVATE)
    kept = latest_attestations(consortium, DATASETS)
    assert sorted(kept) == DATASETS  # every node attested its log; the coordinator kept it

    member = HOSPITALS[0]
    log = SpendLog(NodeHome(consortium.member_home(member)), f"{member}-heart").log
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(line for line in lines if first.job_id not in line))

    second = train(consortium, "heart", PRIVATE)
    assert "lines were removed" in second.refused[f"{member}-heart"]
    assert sorted(second.sites) == DATASETS[1:]  # the others still train
