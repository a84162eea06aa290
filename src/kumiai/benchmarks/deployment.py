"""The same heart job on Flower's simulation engine and on its deployment engine.

Four hospitals, 20 rounds, plain aggregation, no DP, one seed. On the deployment engine the
coordinator's SuperLink runs with TLS and node authentication, and each hospital's node is a
process of its own (`kumiai node serve`) with its own SuperNode. Targets: the same model
(within 1e-6, so the same accuracy) and at most 5 s per round. `startup_seconds` is from
starting the SuperLink until every node is connected.
"""

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from kumiai.domain.training import TrainingSettings
from kumiai.services.coordinator_tls import init_tls
from kumiai.services.demo import HOSPITALS, build_demo_consortium
from kumiai.services.deployment import free_port, start_local_nodes, start_superlink
from kumiai.services.jobs import job_detail
from kumiai.services.models import load_model
from kumiai.services.training import train

ROUNDS = 20
SETTINGS = TrainingSettings(
    strategy="fedavg",
    rounds=ROUNDS,
    local_epochs=1,
    learning_rate=0.05,
    batch_size=32,
    secure_aggregation=False,
)


def _figures(consortium: Any, outcome: Any) -> dict[str, Any]:
    seconds = [float(r["seconds"]) for r in job_detail(consortium, outcome.job_id).rounds]
    return {
        "seconds_per_round": statistics.fmean(seconds),
        "median_seconds_per_round": statistics.median(seconds),
        "accuracy": outcome.overall["accuracy"],
        "rounds": outcome.rounds,
    }


def run(*, rounds: int = ROUNDS, log: Any = lambda _: None, **_: Any) -> dict[str, Any]:
    settings = replace(SETTINGS, rounds=rounds)
    with tempfile.TemporaryDirectory(prefix="kumiai-deployment-") as tmp:
        demo = build_demo_consortium(
            Path(tmp) / "consortium",
            refusing=None,
            epsilon_cap=None,
            lifetime_epsilon=None,
            plain_aggregation=True,
        )
        consortium = demo.consortium
        log(f"simulation: {rounds} rounds on {len(HOSPITALS)} hospitals")
        simulated = train(consortium, demo.project, settings)
        results: dict[str, Any] = {"simulation": _figures(consortium, simulated)}
        init_tls(consortium.home, ["127.0.0.1"])
        began = time.perf_counter()
        link = start_superlink(consortium, free_port())
        nodes = []
        try:
            nodes = start_local_nodes(consortium, link, list(HOSPITALS))
            startup = time.perf_counter() - began
            log(f"deployment: SuperLink and {len(nodes)} nodes up in {startup:.1f} s")
            deployed = train(consortium, demo.project, settings, superlink=link.address)
        finally:
            for node in nodes:
                node.stop()
            link.stop()
        results["deployment"] = {**_figures(consortium, deployed), "startup_seconds": startup}
        _, a = load_model(consortium, simulated.model_id)
        _, b = load_model(consortium, deployed.model_id)
        results["max_parameter_difference"] = max(
            float(np.max(np.abs(x - y))) for x, y in zip(a.arrays, b.arrays, strict=True)
        )
    for engine in ("simulation", "deployment"):
        log(f"{engine}: {results[engine]['seconds_per_round']:.2f} s per round")
    results["targets"] = {"deployment_seconds_per_round": 5.0, "max_parameter_difference": 1e-6}
    return results
