"""What kumiai costs over bare Flower: the same heart job four ways, in one process.

- bare: Flower's FedAvg and a numpy ClientApp with the same model, data split, seed and
  local optimiser, but no guard, ledger, witnesses, spend log or recording;
- kumiai_plain: `kumiai train` with plain aggregation;
- kumiai_secagg: with SecAgg+;
- kumiai_secagg_dp: with SecAgg+ and record-level DP at ε=1.

A round is timed the same way in each: from the end of one round's evaluation to the end
of the next one's, so Ray's start and the admission are outside it. Targets (DESIGN.md):
overhead_ratio = kumiai_plain / bare ≤ 1.05 and secagg_ratio = kumiai_secagg /
kumiai_plain ≤ 1.5. The runs follow one another, so the ratios share the machine's mood.
"""

import statistics
import tempfile
import time
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from kumiai.domain.metrics import score_site
from kumiai.domain.preprocessing import FeaturePlan, merge_summaries, summarise
from kumiai.domain.split import SiteSplit, site_seed
from kumiai.domain.training import TrainingSettings
from kumiai.services.baselines import Site
from kumiai.services.demo import build_demo_consortium
from kumiai.services.jobs import job_detail
from kumiai.services.training import train

ROUNDS = 30
SETTINGS = TrainingSettings(
    strategy="fedavg", rounds=ROUNDS, local_epochs=1, learning_rate=0.05, batch_size=32
)


def _bare_flower(sites: list[Site], settings: TrainingSettings, home: Path) -> list[float]:
    """The heart job on bare Flower; returns each round's seconds."""
    from flwr.app import (
        ArrayRecord,
        ConfigRecord,
        Context,
        Message,
        MessageType,
        MetricRecord,
        RecordDict,
    )
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg

    from kumiai.adapters.flower.simulation import run_simulation
    from kumiai.adapters.flower.stopping import REPLY_POLL_SECONDS
    from kumiai.adapters.models.logistic import LogisticRegression

    parts: list[SiteSplit] = [s.node.split(s.dataset, settings) for s in sites]
    plan: FeaturePlan = merge_summaries(
        {p.dataset: summarise(p.train, p.schema, p.train_labels) for p in parts}
    )
    client = ClientApp()

    def rows(context: Context) -> SiteSplit:
        return parts[int(context.node_config["partition-id"])]

    @client.train()
    def fit(message: Message, context: Context) -> Message:
        part = rows(context)
        X, y = plan.transform(part.train), plan.encode_labels(part.train_labels, part.dataset)
        model = LogisticRegression(X.shape[1], len(plan.classes), l2=settings.l2)
        model.arrays = message.content["arrays"].to_numpy_ndarrays()
        server_round = int(message.content["config"]["server-round"])  # type: ignore[arg-type]
        rng = np.random.default_rng([site_seed(settings.seed, part.dataset), server_round])
        model.sgd(
            X,
            y,
            epochs=settings.local_epochs,
            lr=settings.learning_rate,
            batch_size=settings.batch_size,
            rng=rng,
            prox_mu=0.0,
            anchor=model.arrays,
        )
        metrics = MetricRecord({"num-examples": len(y), "train-loss": model.loss(X, y)})
        return Message(
            RecordDict({"arrays": ArrayRecord(model.arrays), "metrics": metrics}),
            reply_to=message,
        )

    @client.evaluate()
    def evaluate(message: Message, context: Context) -> Message:
        part = rows(context)
        model = LogisticRegression(len(plan.feature_names), len(plan.classes))
        model.arrays = message.content["arrays"].to_numpy_ndarrays()
        labels = plan.encode_labels(part.test_labels, part.dataset)
        score = score_site(model.predict_proba(plan.transform(part.test)), labels)
        metrics = MetricRecord({"num-examples": score.examples, "correct": score.correct})
        return Message(RecordDict({"metrics": metrics}), reply_to=message)

    @client.query()
    def hello(message: Message, context: Context) -> Message:
        rows_here = len(rows(context).train_labels)
        return Message(RecordDict({"metrics": MetricRecord({"rows": rows_here})}), reply_to=message)

    marks: list[float] = []
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        # As kumiai's admission does: every node answers once before round one, so Ray's
        # actors are warm when the rounds are timed.
        grid.pull_interval = REPLY_POLL_SECONDS  # type: ignore[attr-defined]  # as kumiai polls
        while len(nodes := list(grid.get_node_ids())) < len(sites):
            time.sleep(0.1)
        grid.send_and_receive(
            [Message(RecordDict({}), dst_node_id=n, message_type=MessageType.QUERY) for n in nodes],
            timeout=120,
        )
        strategy = FedAvg(min_train_nodes=1, min_evaluate_nodes=1, min_available_nodes=1)
        initial = LogisticRegression(len(plan.feature_names), len(plan.classes)).arrays

        def mark(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            marks.append(time.perf_counter())  # round 0, then after each round's evaluation
            return None

        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(initial),
            num_rounds=settings.rounds,
            train_config=ConfigRecord({}),
            evaluate_config=ConfigRecord({}),
            evaluate_fn=mark,
        )

    run_simulation(server, client, len(sites), home)
    return [later - earlier for earlier, later in pairwise(marks)]


def _per_round(seconds: list[float]) -> dict[str, Any]:
    return {
        "seconds_per_round": statistics.fmean(seconds),
        "median_seconds_per_round": statistics.median(seconds),
        "rounds": len(seconds),
    }


def run(*, rounds: int = ROUNDS, log: Any = lambda _: None, **_: Any) -> dict[str, Any]:
    settings = replace(SETTINGS, rounds=rounds)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="kumiai-overhead-") as tmp:
        demo = build_demo_consortium(
            Path(tmp) / "consortium",
            refusing=None,
            epsilon_cap=None,
            lifetime_epsilon=None,
            plain_aggregation=True,
        )
        sites = list(demo.sites.values())
        log(f"bare Flower: {rounds} rounds on {len(sites)} sites")
        results["bare"] = _per_round(_bare_flower(sites, settings, Path(tmp) / "bare"))
        for name, variant in (
            ("kumiai_plain", replace(settings, secure_aggregation=False)),
            ("kumiai_secagg", settings),
            ("kumiai_secagg_dp", replace(settings, epsilon=1.0)),
        ):
            log(f"{name}: {rounds} rounds")
            outcome = train(demo.consortium, demo.project, variant)
            detail = job_detail(demo.consortium, outcome.job_id)
            seconds = [float(r["seconds"]) for r in detail.rounds]
            results[name] = _per_round(seconds)
            log(f"{name}: {results[name]['seconds_per_round']:.3f} s per round")
    plain = results["kumiai_plain"]["seconds_per_round"]
    results["overhead_ratio"] = plain / results["bare"]["seconds_per_round"]  # type: ignore[assignment]
    results["secagg_ratio"] = results["kumiai_secagg"]["seconds_per_round"] / plain  # type: ignore[assignment]
    results["targets"] = {"overhead_ratio": 1.05, "secagg_ratio": 1.5}
    return results
