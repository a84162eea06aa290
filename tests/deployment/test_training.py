"""Training on the deployment engine with real processes on 127.0.0.1: a SuperLink with TLS
and node authentication, and each hospital's node as `kumiai serve-node`."""

from pathlib import Path

import numpy as np
import pytest

from kumiai.domain.training import TrainingSettings
from kumiai.services.coordinator_tls import init_tls
from kumiai.services.deployment import start_superlink
from kumiai.services.models import load_model
from kumiai.services.training import train
from tests.deployment.conftest import NodeProcess, free_port
from tests.services.helpers import heart_consortium

pytestmark = pytest.mark.deployment

TWO = ("cleveland-clinic", "hungarian-cardiology")
SETTINGS = TrainingSettings(rounds=3, secure_aggregation=False, seed=7)


def test_two_nodes_train_over_tls_and_match_simulation(home: Path, stopped_at_end: list) -> None:  # type: ignore[type-arg]
    consortium, _ = heart_consortium(home, hospitals=TWO, sign=TWO, plain_aggregation=True)
    init_tls(home, ["127.0.0.1"])
    link = start_superlink(consortium, free_port())
    stopped_at_end.append(link)
    nodes = []
    for member in TWO:
        node = NodeProcess(
            consortium.member_home(member),
            link.address.address,
            link.tls.ca_cert,
            home / f"{member}.log",
        )
        stopped_at_end.append(node)
        nodes.append(node)
    for member, node in zip(TWO, nodes, strict=True):
        node.wait_connected(consortium.member_home(member))
    deployed = train(consortium, "heart", SETTINGS, superlink=link.address, round_timeout=60)
    simulated = train(consortium, "heart", SETTINGS)
    assert deployed.rounds == simulated.rounds == 3
    assert sorted(deployed.sites) == sorted(simulated.sites) == sorted(f"{m}-heart" for m in TWO)
    _, ours = load_model(consortium, deployed.model_id)
    _, theirs = load_model(consortium, simulated.model_id)
    for a, b in zip(ours.arrays, theirs.arrays, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    assert deployed.overall["accuracy"] == pytest.approx(simulated.overall["accuracy"], abs=1e-9)
