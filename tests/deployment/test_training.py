"""Training on the deployment engine with real processes on 127.0.0.1: a SuperLink with TLS
and node authentication, and each hospital's node as `kumiai node serve`."""

from pathlib import Path

import numpy as np
import pytest

from kumiai.adapters.flower.supervised import descendants, stop_pids
from kumiai.domain.training import TrainingSettings
from kumiai.services.coordinator_tls import init_tls
from kumiai.services.deployment import free_port, start_local_nodes, start_superlink
from kumiai.services.jobs import job_detail
from kumiai.services.models import load_model
from kumiai.services.recorder import RoundReport
from kumiai.services.training import train
from kumiai.services.transparency import verify_ledger
from tests.deployment.conftest import alive
from tests.services.helpers import heart_consortium

pytestmark = pytest.mark.deployment

TWO = ("cleveland-clinic", "hungarian-cardiology")
SETTINGS = TrainingSettings(rounds=3, secure_aggregation=False, seed=7)


def test_two_nodes_train_over_tls_and_match_simulation(home: Path, stopped_at_end: list) -> None:  # type: ignore[type-arg]
    consortium, _ = heart_consortium(home, hospitals=TWO, sign=TWO, plain_aggregation=True)
    init_tls(home, ["127.0.0.1"])
    link = start_superlink(consortium, free_port())
    stopped_at_end.append(link)
    stopped_at_end.extend(start_local_nodes(consortium, link, list(TWO)))
    deployed = train(consortium, "heart", SETTINGS, superlink=link.address, round_timeout=60)
    simulated = train(consortium, "heart", SETTINGS)
    assert deployed.rounds == simulated.rounds == 3
    assert sorted(deployed.sites) == sorted(simulated.sites) == sorted(f"{m}-heart" for m in TWO)
    _, ours = load_model(consortium, deployed.model_id)
    _, theirs = load_model(consortium, simulated.model_id)
    for a, b in zip(ours.arrays, theirs.arrays, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    assert deployed.overall["accuracy"] == pytest.approx(simulated.overall["accuracy"], abs=1e-9)


class KillAfter:
    """Progress that kills a node's process and its SuperNode with SIGKILL after a round."""

    def __init__(self, pids: list[int], after: int) -> None:
        self.pids, self.after, self.killed_at = pids, after, 0

    def admitted(self, job_id: str, sites: list[str], refused: dict[str, str]) -> None:
        pass

    def refused(self, dataset: str, reason: str, server_round: int) -> None:
        pass

    def round_done(self, report: RoundReport) -> None:
        if report.round == self.after and not self.killed_at:
            import os
            import signal

            for pid in self.pids:
                os.kill(pid, signal.SIGKILL)
            self.killed_at = report.round


def test_a_node_killed_mid_job_is_dropped_and_the_job_finishes(
    home: Path,
    stopped_at_end: list,  # type: ignore[type-arg]
) -> None:
    consortium, _ = heart_consortium(
        home, hospitals=TWO, sign=TWO, plain_aggregation=True, epsilon_cap=3.0
    )
    init_tls(home, ["127.0.0.1"])
    link = start_superlink(consortium, free_port())
    stopped_at_end.append(link)
    nodes = start_local_nodes(consortium, link, list(TWO))
    stopped_at_end.extend(nodes)
    victim = nodes[1]
    assert victim.pid is not None
    pids = [victim.pid, *descendants(victim.pid)]  # the node and its SuperNode: a dead machine
    assert len(pids) >= 2
    progress = KillAfter(pids, after=1)
    settings = TrainingSettings(rounds=3, secure_aggregation=False, epsilon=2.0, seed=3)
    try:
        outcome = train(
            consortium, "heart", settings, progress=progress, superlink=link.address,
            round_timeout=10,
        )  # fmt: skip
    finally:
        stop_pids(pids, wait=1)
    assert progress.killed_at == 1 and not any(alive(p) for p in pids)
    dead = f"{TWO[1]}-heart"
    assert outcome.rounds == 3 and sorted(outcome.sites) == [f"{TWO[0]}-heart"]
    assert "no reply within 10 s" in outcome.refused[dead], outcome.refused
    detail = job_detail(consortium, outcome.job_id)
    assert detail.status == "completed" and detail.completed_rounds == 3
    # the ledger verifies, and no ε stays reserved at either node (the dead one's released)
    assert verify_ledger(consortium).ok
    views = [consortium.node(m).budget(f"{m}-heart") for m in TWO]
    assert [v.committed for v in views] == [0.0, 0.0]
    assert 0 < views[1].spent < views[0].spent  # the dead node paid only for what it trained


def test_secure_aggregation_runs_on_the_deployment_engine(
    home: Path,
    stopped_at_end: list,  # type: ignore[type-arg]
) -> None:
    """SecAgg+ (the default) over the SuperLink: the coordinator sees only masked updates."""
    consortium, _ = heart_consortium(home, hospitals=TWO, sign=TWO)
    init_tls(home, ["127.0.0.1"])
    link = start_superlink(consortium, free_port())
    stopped_at_end.append(link)
    stopped_at_end.extend(start_local_nodes(consortium, link, list(TWO)))
    seen: list[str] = []
    outcome = train(
        consortium, "heart", TrainingSettings(rounds=2, seed=7), superlink=link.address,
        reply_hook=lambda reply: seen.extend(reply.content.array_records),
    )  # fmt: skip
    assert outcome.rounds == 2 and sorted(outcome.sites) == sorted(f"{m}-heart" for m in TWO)
    assert "arrays" not in seen  # no plain update ever reached the coordinator
