"""Fed-Heart-Disease: pooled, each hospital alone, and federated strategies on one split.

All four hospitals sign. Every model is scored on the union of the four hospitals' test
rows of the same seeded split. Anchor (FLamby, its own split): pooled 0.735, FedAvg 0.685,
FedYogi 0.731. Target: best federated accuracy >= 0.99 x pooled, mean over seeds, within
50 rounds.
"""

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from kumiai.domain.metrics import combine
from kumiai.domain.training import TrainingSettings
from kumiai.services.baselines import pooled, single_site
from kumiai.services.demo import build_demo_consortium
from kumiai.services.training import many_jobs, train

# Local optimiser settings shared by every strategy; only the aggregation differs.
BASE = TrainingSettings(local_epochs=1, learning_rate=0.05, batch_size=32, l2=1e-3)
STRATEGIES = {
    "fedavg": replace(BASE, strategy="fedavg"),
    "fedprox": replace(BASE, strategy="fedprox", proximal_mu=0.01),
    "fedadam": replace(BASE, strategy="fedadam", server_learning_rate=0.05),
    "fedyogi": replace(BASE, strategy="fedyogi", server_learning_rate=0.05),
}


def _summary(
    accuracies: list[float], aucs: list[float], rounds: int | None, seconds: list[float] | None
) -> dict[str, Any]:
    return {
        "accuracy_mean": statistics.fmean(accuracies),
        "accuracy_std": statistics.pstdev(accuracies),
        "auc_mean": statistics.fmean(aucs),
        "rounds": rounds,
        "seconds_per_round": statistics.fmean(seconds) if seconds else None,
    }


def run(*, seeds: int, rounds: int = 50, log: Any, **_: Any) -> dict[str, Any]:
    results: dict[str, tuple[list[float], list[float], list[float]]] = {}

    def record(key: str, accuracy: Any, auc: Any, seconds: float | None = None) -> None:
        accs, aucs, secs = results.setdefault(key, ([], [], []))
        accs.append(float(accuracy))
        aucs.append(float("nan") if auc is None else float(auc))
        if seconds is not None:
            secs.append(seconds)

    with tempfile.TemporaryDirectory(prefix="kumiai-bench-") as tmp, many_jobs():
        demo = build_demo_consortium(
            Path(tmp) / "consortium", refusing=None, epsilon_cap=None, lifetime_epsilon=None
        )
        sites = list(demo.sites.values())
        for seed in range(seeds):
            base = replace(BASE, seed=seed, rounds=rounds)
            score = combine(list(pooled(sites, base).values()))
            record("pooled", score.accuracy, score.auc)
            for site in sites:
                score = combine(list(single_site(site, sites, base).values()))
                record(f"local:{site.dataset.removesuffix('-heart')}", score.accuracy, score.auc)
            for name, settings in STRATEGIES.items():
                started = time.perf_counter()
                outcome = train(
                    demo.consortium, demo.project, replace(settings, seed=seed, rounds=rounds)
                )
                overall = outcome.overall
                record(name, overall["accuracy"], overall["auc"], outcome.seconds_per_round)
                log(
                    f"seed {seed} {name}: accuracy {overall['accuracy']:.3f} "
                    f"({time.perf_counter() - started:.0f} s)"
                )
            log(f"seed {seed} pooled: accuracy {results['pooled'][0][-1]:.3f}")
    summary = {
        key: _summary(
            acc, auc, None if key == "pooled" or key.startswith("local:") else rounds, secs or None
        )
        for key, (acc, auc, secs) in results.items()
    }
    federated = {k: v["accuracy_mean"] for k, v in summary.items() if k in STRATEGIES}
    best = max(federated, key=federated.__getitem__)
    ratio = federated[best] / summary["pooled"]["accuracy_mean"]
    log(
        f"best federated: {best} {federated[best]:.4f} = {ratio:.4f} x pooled "
        f"(target >= 0.99: {'met' if ratio >= 0.99 else 'NOT met'})"
    )
    return summary
