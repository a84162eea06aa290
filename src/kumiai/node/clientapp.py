"""kumiai's ClientApp: the node's side of a job, behind the guard mod."""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.compat.common import recorddict_compat as compat
from numpy.typing import NDArray

from kumiai.adapters.flower import protocol
from kumiai.adapters.flower.protocol import score_metrics
from kumiai.domain.disclosure import ALLOWED, DP, FORBIDDEN, cohort_refusal
from kumiai.domain.errors import KumiaiError
from kumiai.domain.job import JobDocument, JobKind
from kumiai.domain.metrics import SiteScore
from kumiai.domain.preprocessing import FeaturePlan, SiteSummary
from kumiai.domain.training import TrainingSettings
from kumiai.node.admitted import admitted_job
from kumiai.node.clipping import client_dp_mod
from kumiai.node.guard import Mod, NodeLocator, make_guard_mod, node_config_locator
from kumiai.node.home import NodeHome
from kumiai.node.spendlog import SpendLog

Arrays = list[NDArray[np.float64]]


class NodeOperations(Protocol):
    """What a node can do on its own rows (implemented in kumiai.node.worker)."""

    def cohort(self, dataset: str, settings: TrainingSettings) -> tuple[int, int]: ...

    def spent(self, dataset: str, job: str) -> float | None: ...

    def summary(
        self, dataset: str, settings: TrainingSettings, statistics: str = ALLOWED, job: str = ""
    ) -> SiteSummary | None: ...

    def admit(
        self,
        dataset: str,
        settings: TrainingSettings,
        job: JobDocument,
        agreement_cap: float | None,
        attested: str | None = None,
        statistics: str = ALLOWED,
    ) -> tuple[bool, str, dict[str, float]]: ...

    def train(
        self,
        dataset: str,
        settings: TrainingSettings,
        plan: FeaturePlan,
        arrays: Arrays,
        server_round: int,
        job: str = "",
    ) -> tuple[Arrays, int, float, float | None]: ...

    def evaluate(
        self,
        dataset: str,
        settings: TrainingSettings,
        plan: FeaturePlan,
        arrays: Arrays,
        statistics: str = ALLOWED,
        job: str = "",
        final: bool = False,
    ) -> SiteScore | None: ...


def secure_aggregation_mod(
    message: Message, context: Context, call_next: ClientAppCallable
) -> Message:
    """Flower's secaggplus_mod, applied only to messages of the SecAgg+ protocol.

    The same ClientApp then serves jobs with and without secure aggregation.
    """
    if RECORD_KEY_CONFIGS in message.content.config_records:
        return secaggplus_mod(message, context, call_next)
    return call_next(message, context)


def failure_mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """A node that cannot do admitted work (a changed file, a damaged spend log) says why.

    The reason leaves as one line naming the dataset and the cause, the same shape as a
    refusal, so the researcher reads it in `kumiai job` rather than a Ray traceback.
    """
    try:
        return call_next(message, context)
    except Exception as exc:  # every failure leaves as one line, never a traceback
        state = context.state.config_records.get(protocol.STATE)
        dataset = str(state[protocol.DATASET]) if state is not None else "?"
        job = (
            str(state[protocol.STATE_JOB])
            if state is not None and protocol.STATE_JOB in state
            else "?"
        )
        try:
            steward = (
                NodeHome(Path(str(state[protocol.STATE_HOME]))).member_name if state else "the node"
            )
        except KumiaiError:
            steward = "the node"
        cause = (
            str(exc)
            if isinstance(exc, KumiaiError)
            else f"internal error: {type(exc).__name__}: {exc}"
        )
        text = f"{steward} could not work for job {job}: {cause}"
        return Message(
            Error(protocol.FAILED, protocol.refusal_reason(dataset, text)), reply_to=message
        )


_SPENDING = (MessageType.QUERY, MessageType.TRAIN, MessageType.EVALUATE)


def attestation_mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """After a private job's admission or round changed the spend log: the node's signed word.

    The coordinator keeps the latest and presents it before the next private job, so a log
    that later loses lines (deleted, or an old backup) is caught (`SpendLog.reserve`).
    """
    reply = call_next(message, context)
    state = context.state.config_records.get(protocol.STATE)
    kind = message.metadata.message_type
    if reply.has_error() or state is None or kind not in _SPENDING:
        return reply
    if protocol.job_config(message) is None:  # a SecAgg+ step: the log did not change
        return reply
    home, dataset, admitted = admitted_job(context)
    if admitted.job.document.settings.private or state[protocol.STATE_STATISTICS] == DP:
        log = SpendLog(NodeHome(home), dataset)
        reply.content[protocol.SPEND] = ConfigRecord(
            {protocol.DATASET: dataset, protocol.ATTESTATION: log.attestation()}
        )
    return reply


def build_client_app(
    operations_for: Callable[[Path], NodeOperations],
    locate: NodeLocator = node_config_locator,
    mods: Sequence[Mod] = (),
) -> ClientApp:
    """The node's ClientApp: the guard first, failures as one line, extra `mods`, SecAgg+.

    Client-level DP clipping sits innermost, so an update is clipped before it is masked.
    """
    app = ClientApp(
        mods=[
            make_guard_mod(locate),
            failure_mod,
            attestation_mod,
            *mods,
            secure_aggregation_mod,
            client_dp_mod,
        ]
    )

    def unpack(
        message: Message, context: Context
    ) -> tuple[NodeOperations, str, ConfigRecord, JobDocument]:
        """The node, its dataset, the message's config and the job document it admitted.

        The settings come from the node's own record of the admitted job, never from the
        message (the guard has already refused a message whose document differs).
        """
        home, dataset, admitted = admitted_job(context)
        config = protocol.job_config(message)
        assert config is not None  # the guard refuses messages without a job document
        return operations_for(home), dataset, config, admitted.job.document

    @app.query()
    def summarise(message: Message, context: Context) -> Message:
        node, dataset, config, job = unpack(message, context)
        settings = job.settings
        state = context.state[protocol.STATE]
        statistics, cohort = (
            str(state[protocol.STATE_STATISTICS]),
            int(state[protocol.STATE_COHORT]),
        )  # type: ignore[arg-type]

        def refuse(reason: str) -> Message:
            steward = NodeHome(Path(str(state[protocol.STATE_HOME]))).member_name
            text = f"{steward} refused job {job.job_id}: {reason}"
            return Message(
                Error(protocol.REFUSED, protocol.refusal_reason(dataset, text)), reply_to=message
            )

        train_rows, test_rows = node.cohort(dataset, settings)
        agreement_id = job.agreements.get(dataset, "?")
        if (small := cohort_refusal(agreement_id, cohort, train_rows, test_rows)) is not None:
            return refuse(small)
        if statistics == FORBIDDEN and job.kind is JobKind.STATISTICS:
            return refuse(
                f"agreement {agreement_id} lets no aggregate statistics leave this node, and a "
                "statistics job releases nothing else"
            )
        content = RecordDict()
        if settings.private or statistics == DP:  # the budget check, before anything is spent
            cap = float(state[protocol.STATE_CAP])  # type: ignore[arg-type]
            attested = protocol.attested_of(config).get(dataset)
            allowed, reason, numbers = node.admit(
                dataset, settings, job, None if cap < 0 else cap, attested, statistics
            )
            if not allowed:
                return refuse(reason)
            content[protocol.PRIVACY] = ConfigRecord(numbers)
        summary = node.summary(dataset, settings, statistics, job.job_id)
        released: dict[str, str | int] = {protocol.DATASET: dataset, protocol.ROWS: train_rows}
        if summary is None:
            released[protocol.WITHHELD] = (
                f"agreement {agreement_id} keeps aggregate statistics at the node"
            )
        else:
            released[protocol.SUMMARY] = summary.to_json()
        content[protocol.SUMMARY] = ConfigRecord(released)
        return Message(content, reply_to=message)

    @app.train()
    def train(message: Message, context: Context) -> Message:
        node, dataset, config, job = unpack(message, context)
        settings = job.settings
        plan = FeaturePlan.from_json(str(config[protocol.PLAN]))
        secure = settings.secure_aggregation  # SecAgg+ speaks Flower's legacy FitIns
        record = message.content[protocol.LEGACY_PARAMETERS if secure else protocol.ARRAYS]
        arrays = record.to_numpy_ndarrays()  # type: ignore[union-attr]
        evaluation = None
        if protocol.EVALUATES in config and not secure:  # the guard checked which round
            evaluated = int(config[protocol.EVALUATES])  # type: ignore[arg-type]
            evaluation = score(node, dataset, job, plan, arrays, context, evaluated)
        new_arrays, examples, loss, epsilon = node.train(
            dataset, settings, plan, arrays, int(config.get(protocol.ROUND, 0)), job.job_id
        )
        if settings.private and settings.dp_level == "client":
            examples = 1  # uniform weights: the noise is calibrated to a plain mean of members
        values: dict[str, float | int] = {
            protocol.EXAMPLES: examples,
            protocol.EPSILON: -1.0 if epsilon is None else epsilon,
        }
        if not settings.private:  # under DP the exact loss over every row would leak, uncounted
            values[protocol.TRAIN_LOSS] = loss
        if secure:  # secaggplus_mod masks these parameters before they leave the node
            parameters = ndarrays_to_parameters(new_arrays)
            fitres = FitRes(Status(Code.OK, ""), parameters, examples, values)  # type: ignore[arg-type]
            return Message(compat.fitres_to_recorddict(fitres, keep_input=False), reply_to=message)
        content = RecordDict({protocol.ARRAYS: ArrayRecord(new_arrays)})
        content[protocol.METRICS] = MetricRecord(values)
        if evaluation is not None:
            content[protocol.EVALUATION] = evaluation
        return Message(content, reply_to=message)

    def score(
        node: NodeOperations,
        dataset: str,
        job: JobDocument,
        plan: FeaturePlan,
        arrays: Arrays,
        context: Context,
        server_round: int,
    ) -> MetricRecord:
        """The site's scores of `arrays` (round `server_round`'s model), as they may leave."""
        statistics = str(context.state[protocol.STATE][protocol.STATE_STATISTICS])
        _, _, admitted = admitted_job(context)
        # under DP, scores leave once: for the last round's model, after this node trained it
        final = server_round == job.rounds and admitted.trained == job.rounds
        result = node.evaluate(dataset, job.settings, plan, arrays, statistics, job.job_id, final)
        if result is None:
            return protocol.withheld_metrics()
        metrics = score_metrics(result)
        if statistics == DP:  # what the scores cost, for the coordinator's mirror
            metrics[protocol.EPSILON] = node.spent(dataset, job.job_id) or 0.0
        return metrics

    @app.evaluate()
    def evaluate(message: Message, context: Context) -> Message:
        node, dataset, config, job = unpack(message, context)
        plan = FeaturePlan.from_json(str(config[protocol.PLAN]))
        arrays = message.content[protocol.ARRAYS].to_numpy_ndarrays()  # type: ignore[union-attr]
        server_round = int(config.get(protocol.ROUND, 0))  # type: ignore[arg-type]
        metrics = score(node, dataset, job, plan, arrays, context, server_round)
        return Message(RecordDict({protocol.METRICS: metrics}), reply_to=message)

    return app
