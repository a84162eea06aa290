"""kumiai's ServerApp: admit sites, agree on preprocessing, then run a Flower strategy.

1. Every node gets a 'statistics' query carrying the job ticket and its agreement. The
   node's guard admits or refuses; admitted nodes answer with summaries only.
2. The summaries merge into one feature plan (means, scales, levels, classes).
3. A Flower strategy trains on the admitted nodes. An observing grid records each round's
   per-site scores and any refusal as it happens.
"""

import json
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.common.secure_aggregation.secaggplus_constants import Key as SecAggKey
from flwr.server import strategy as legacy
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant

from kumiai.adapters.flower import protocol
from kumiai.adapters.flower.central_dp import (
    AccountedLegacyClipping,
    flower_accountant,
    message_strategy,
    spent_by_members,
)
from kumiai.adapters.flower.combined import OneMessagePerRound
from kumiai.adapters.flower.grid import DelegatingGrid
from kumiai.adapters.flower.protocol import metrics_score
from kumiai.adapters.flower.secure import SecureAggregationSettings, run_secure_rounds
from kumiai.adapters.flower.stopping import REPLY_POLL_SECONDS, StoppableGrid, StopRequest
from kumiai.adapters.flower.strategies import make_strategy
from kumiai.adapters.models.families import model_for
from kumiai.domain.errors import JobFailed
from kumiai.domain.job import JobDocument, SignedJob
from kumiai.domain.metrics import SiteScore
from kumiai.domain.preprocessing import FeaturePlan, SiteSummary, merge_summaries
from kumiai.domain.privacy import default_delta
from kumiai.domain.quorum import minimum_nodes, quorum_failure, unanswered
from kumiai.domain.training import TrainingSettings


class JobObserver(Protocol):
    """Where the coordinator records what happens (implemented by the training service)."""

    def sites_decided(
        self,
        admitted: Collection[str],
        refused: dict[str, str],
        offline: dict[str, str] | None = None,
    ) -> None: ...

    def site_refused(self, dataset: str, reason: str, server_round: int) -> None: ...

    def cosigned(self, witness: str, head_json: str, signature: str) -> None: ...

    def privacy_planned(self, dataset: str, plan: dict[str, float]) -> None: ...

    def spend_attested(self, dataset: str, attestation: str) -> None: ...

    def round_done(
        self,
        server_round: int,
        train_loss: float | None,
        scores: dict[str, SiteScore],
        seconds: float,
        epsilons: dict[str, float],
        member_epsilon: float | None = None,
    ) -> None: ...


@dataclass
class FederatedJob:
    signed: SignedJob  # the coordinator-signed job document every node admits
    agreements: dict[str, str]  # dataset -> signed agreement JSON
    expected_nodes: int
    members: dict[str, str] = field(default_factory=dict)  # dataset -> member
    nodes: dict[int, str] = field(default_factory=dict)  # Flower node id -> member, if known
    head: str = ""  # the coordinator's latest signed tree head (JSON)
    consistency: str = "{}"  # per witness, a proof from the head it last cosigned
    attested: dict[str, str] = field(default_factory=dict)  # dataset -> latest attestation
    query_timeout: float = 120.0  # the admission wait: for nodes to connect, then to answer
    round_timeout: float = 600.0
    reply_hook: Callable[[Message], None] | None = None  # sees every reply (audits, tests)
    stop: StopRequest = field(default_factory=StopRequest)  # SIGTERM / Ctrl-C end the run
    reply_poll: float = REPLY_POLL_SECONDS  # between pulls for replies
    one_message_per_round: bool = False  # evaluate inside the next train message (combined)
    # filled in by the run
    plan: FeaturePlan | None = None
    rows: dict[str, int] = field(default_factory=dict)  # training rows per admitted dataset
    arrays: list[np.ndarray] = field(default_factory=list)

    @property
    def ticket(self) -> JobDocument:
        return self.signed.document

    @property
    def settings(self) -> TrainingSettings:
        return self.signed.document.settings

    def config(self, **extra: str) -> ConfigRecord:
        return ConfigRecord(
            {
                protocol.JOB: self.signed.to_json(),
                protocol.AGREEMENTS: _json(self.agreements),
                protocol.ATTESTED: _json(self.attested),
                protocol.HEAD: self.head,
                protocol.CONSISTENCY: self.consistency,
                **extra,
            }
        )


def _json(value: dict[str, str]) -> str:
    return json.dumps(value, sort_keys=True)


class ObservingGrid(DelegatingGrid):
    """Delegates to Flower's grid; narrows it to admitted nodes and reports every reply."""

    def __init__(
        self,
        inner: Grid,
        sites: dict[int, str],
        observer: JobObserver,
        reply_hook: Callable[[Message], None] | None = None,
    ) -> None:
        super().__init__(inner)
        self.sites, self.observer = dict(sites), observer
        self.reply_hook = reply_hook  # an auditor's view of every reply the coordinator gets
        self.minimum = 1  # fewest nodes the aggregation can go on with
        self.minimum_reason = ""  # why, for the message when fewer remain
        self.accountant: RdpAccountant | None = None  # Flower's, for client-level DP
        self._stage = ""
        self._round = 0
        self._round_started = time.perf_counter()
        self._train_loss: float | None = None
        self._epsilons: dict[str, float] = {}

    # -- narrowing -------------------------------------------------------------------
    def get_node_ids(self) -> Iterable[int]:
        return [n for n in self.inner.get_node_ids() if n in self.sites]

    # -- observation -----------------------------------------------------------------
    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        messages = list(messages)
        kind = messages[0].metadata.message_type if messages else ""
        replies = list(self.inner.send_and_receive(messages, timeout=timeout))
        for reply in replies:
            if self.reply_hook is not None:
                self.reply_hook(reply)
        server_round = self._round_of(messages)
        answered = {r.metadata.src_node_id for r in replies}
        for message in messages:
            if message.metadata.dst_node_id not in answered:
                self._drop(
                    message.metadata.dst_node_id,
                    f"no reply within {timeout or 0:.0f} s",
                    server_round,
                )
        good = []
        for reply in replies:
            if reply.has_error():
                self._drop(reply.metadata.src_node_id, reply.error.reason or "", server_round)
            else:
                good.append(reply)
        if kind == MessageType.TRAIN:
            self._observe_training(good)
            for reply in good:
                _keep_attestation(reply, self.observer)
        elif kind == MessageType.EVALUATE:
            scores: dict[str, SiteScore] = {}
            released = []
            for reply in good:
                site = self.sites.get(reply.metadata.src_node_id)
                metrics = reply.content[protocol.METRICS]
                score = metrics_score(metrics)  # None: the site's agreement keeps it there
                if site is None or score is None:
                    continue
                scores[site] = score
                released.append(reply)
                if float(metrics.get(protocol.EPSILON, -1.0)) >= 0:  # paid for from its budget
                    self._epsilons[site] = float(metrics[protocol.EPSILON])
                _keep_attestation(reply, self.observer)
            self.observer.round_done(
                server_round,
                self._train_loss,
                scores,
                time.perf_counter() - self._round_started,
                self._epsilons,
                spent_by_members(self.accountant),
            )
            self._round_started = time.perf_counter()
            return released  # Flower's strategy averages only scores that left their node
        return good

    def _round_of(self, messages: list[Message]) -> int:
        """The round a batch belongs to: from the job config, else the message's group id
        (SecAgg+ stage messages carry only that)."""
        self._stage = ""
        for message in messages:
            config = protocol.job_config(message)
            if config is not None and protocol.ROUND in config:
                self._round = int(config[protocol.ROUND])  # type: ignore[arg-type]
                break
            if message.metadata.group_id.isdigit():
                self._round = int(message.metadata.group_id)
            stage = message.content.config_records.get(RECORD_KEY_CONFIGS, {}).get(SecAggKey.STAGE)
            if stage:
                self._stage = str(stage)
        return self._round

    def _observe_training(self, replies: list[Message]) -> None:
        """Train loss and ε from plain replies ('metrics') or SecAgg+ ones ('fitres.metrics').

        SecAgg+ stage replies (key setup, sharing, unmasking) carry neither and are skipped.
        Under DP the nodes send no loss (it would leak, uncounted), so none is shown.
        """
        found = []
        for reply in replies:
            record = reply.content.get(protocol.METRICS) or reply.content.get(
                protocol.LEGACY_METRICS
            )
            if record is not None and protocol.EXAMPLES in record:
                found.append((self.sites.get(reply.metadata.src_node_id), record))
        if not found:
            return
        with_loss = [r for _, r in found if protocol.TRAIN_LOSS in r]
        self._train_loss = (
            float(
                np.average(
                    [float(r[protocol.TRAIN_LOSS]) for r in with_loss],
                    weights=[float(r[protocol.EXAMPLES]) for r in with_loss],
                )
            )
            if with_loss
            else None
        )
        self._epsilons = {
            site: float(r[protocol.EPSILON])
            for site, r in found
            if site is not None and float(r.get(protocol.EPSILON, -1.0)) >= 0
        }

    def _drop(self, node_id: int, reason: str, server_round: int) -> None:
        dataset = self.sites.pop(node_id, None)
        if dataset is not None:
            _, text = protocol.parse_refusal(reason)
            self.observer.site_refused(dataset, text, server_round)
        if not self.sites:
            raise JobFailed(
                f"every node left the job by round {server_round}; last reason: "
                f"{protocol.parse_refusal(reason)[1]}"
            )
        if len(self.sites) < self.minimum:
            raise JobFailed(
                f"only {len(self.sites)} node(s) remain in round {server_round}"
                + (f" at the secure-aggregation stage '{self._stage}'" if self._stage else "")
                + f", fewer than the {self.minimum} {self.minimum_reason}; the job stopped "
                f"and no model was released (last to leave: {protocol.parse_refusal(reason)[1]})"
            )


def _keep_attestation(reply: Message, observer: JobObserver) -> None:
    """A node's signed word on its spend log, kept to be presented before its next job."""
    if protocol.SPEND in reply.content:
        spend = reply.content[protocol.SPEND]
        observer.spend_attested(str(spend[protocol.DATASET]), str(spend[protocol.ATTESTATION]))


def _admit(grid: Grid, job: FederatedJob, observer: JobObserver) -> dict[int, str]:
    """Ask every node for its summary; the guard admits or refuses each.

    Nodes that have not connected when `query_timeout` ends are left out (the job goes on
    with the others if they are enough, `domain.quorum`); their datasets are recorded as
    refused, offline, and nothing is reserved for them since no node was asked.
    """
    deadline = time.monotonic() + job.query_timeout
    while len(node_ids := list(grid.get_node_ids())) < job.expected_nodes:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    offline = _offline_members(job, node_ids)
    failure = quorum_failure(
        len(node_ids),
        job.expected_nodes,
        minimum_nodes(job.settings),
        offline,
        job.query_timeout,
    )
    if failure is not None:
        raise JobFailed(failure)
    messages = [
        Message(
            RecordDict({protocol.CONFIG: job.config()}),
            dst_node_id=n,
            message_type=MessageType.QUERY,
        )
        for n in node_ids
    ]
    replies = list(grid.send_and_receive(messages, timeout=job.query_timeout))
    summaries: dict[str, SiteSummary] = {}
    withheld: dict[str, str] = {}
    sites: dict[int, str] = {}
    refused: dict[str, str] = {}
    for reply in replies:
        if reply.has_error():
            dataset, reason = protocol.parse_refusal(reply.error.reason or "")
            known = dataset if dataset and dataset != "?" else None
            refused[known or f"node-{reply.metadata.src_node_id}"] = reason
            continue
        if protocol.COSIGNATURE in reply.content:
            cosig = reply.content[protocol.COSIGNATURE]
            observer.cosigned(
                str(cosig[protocol.WITNESS]),
                str(cosig[protocol.SIGNED_HEAD]),
                str(cosig[protocol.SIGNATURE]),
            )
        record = reply.content[protocol.SUMMARY]
        dataset = str(record[protocol.DATASET])
        job.rows[dataset] = int(record[protocol.ROWS])  # type: ignore[arg-type]
        if protocol.WITHHELD in record:  # it trains on the others' plan; its summary stays
            withheld[dataset] = str(record[protocol.WITHHELD])
        else:
            summaries[dataset] = SiteSummary.from_json(str(record[protocol.SUMMARY]))
        if "privacy" in reply.content:
            plan = reply.content[protocol.PRIVACY]
            observer.privacy_planned(dataset, {k: float(v) for k, v in plan.items()})
        _keep_attestation(reply, observer)
        sites[reply.metadata.src_node_id] = dataset
    expected = job.ticket.datasets
    missing = unanswered(expected, {*summaries, *withheld, *refused}, job.query_timeout)
    if any(key not in expected for key in refused):  # an answer that named no dataset:
        # only a member known to be offline is certain; the recorder marks the rest absent
        missing = {d: why for d, why in missing.items() if job.members.get(d) in offline}
    observer.sites_decided(sorted([*summaries, *withheld]), refused, missing)
    if not sites:
        raise JobFailed("every node refused the job: " + "; ".join({**refused, **missing}.values()))
    if not summaries:
        raise JobFailed(
            "no admitted site released a summary to build the preprocessing plan from: "
            + "; ".join(f"{d}: {why}" for d, why in sorted(withheld.items()))
            + ". Include a site whose agreement allows statistics (or allows them under DP)"
        )
    job.plan = merge_summaries(summaries)
    return sites


def _offline_members(job: FederatedJob, node_ids: list[int]) -> set[str]:
    """The job's members whose node is not connected; none known without a node map
    (the simulation engine, where every node is there)."""
    here = {job.nodes[n] for n in node_ids if n in job.nodes}
    return set(job.members.values()) - here if job.nodes else set()


def build_server_app(job: FederatedJob, observer: JobObserver) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        grid = StoppableGrid(grid, job.stop, job.reply_poll)
        sites = _admit(grid, job, observer)
        assert job.plan is not None
        settings = job.settings
        model = model_for(settings, len(job.plan.feature_names), len(job.plan.classes))
        config = job.config(**{protocol.PLAN: job.plan.to_json()})
        combine = job.one_message_per_round and not settings.secure_aggregation
        strategy_grid = OneMessagePerRound(grid, settings.rounds) if combine else grid
        observing = ObservingGrid(strategy_grid, sites, observer, job.reply_hook)
        client_dp = settings.private and settings.dp_level == "client"
        if client_dp:
            delta = settings.delta or min(default_delta(n) for n in job.rows.values())
            observing.accountant = flower_accountant(delta, len(sites))
            observing.minimum = len(sites)
            observing.minimum_reason = "client-level DP calibrated its noise to"
        if settings.secure_aggregation:
            if len(sites) < 2:
                raise JobFailed(
                    f"secure aggregation needs at least 2 participating nodes; only "
                    f"{len(sites)} admitted the job (a sum of one update is that update)"
                )
            secure = SecureAggregationSettings(
                nodes=len(sites),
                # client-level DP weighs every member 1; otherwise by rows
                max_weight=1.0 if client_dp else float(max(job.rows.values(), default=1) + 1),
                # a node that died is dropped within the round's bound, at every stage
                timeout=min(SecureAggregationSettings.timeout, job.round_timeout),
            )
            if not client_dp:
                observing.minimum = secure.reconstruction_threshold
                observing.minimum_reason = "secure aggregation needs to reconstruct a sum"
            accountant = observing.accountant

            def wrap(strategy: legacy.Strategy) -> legacy.Strategy:
                return AccountedLegacyClipping(strategy, settings, len(sites), accountant)

            job.arrays = run_secure_rounds(
                observing,
                context,
                settings,
                secure,
                model.arrays,
                config,
                job.round_timeout,
                wrap if client_dp else None,
            )
            return
        strategy = make_strategy(settings)
        if client_dp:
            assert isinstance(strategy, FedAvg) and observing.accountant is not None
            strategy = message_strategy(strategy, settings, len(sites), observing.accountant)
        result = strategy.start(
            grid=observing,
            initial_arrays=ArrayRecord(model.arrays),
            num_rounds=settings.rounds,
            timeout=job.round_timeout,
            train_config=config,
            evaluate_config=ConfigRecord(dict(config)),
        )
        job.arrays = result.arrays.to_numpy_ndarrays()

    return app
