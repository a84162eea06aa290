"""What a node remembers of a job it admitted, and the rules every later message must pass.

The node admits a job once, on the first message that carries the coordinator-signed job
document, against its own agreement and budget. From then on a message is only compared
with what was admitted: it may not change a field, come from another run, repeat a round,
or ask for a plain update where the job promised secure aggregation. Pure functions, so a
lying coordinator can be played in tests without Flower.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kumiai.domain.job import SignedJob, differing_fields, operation_refusal
from kumiai.domain.policy import Decision


@dataclass(frozen=True)
class Admitted:
    """The node's own record of a job it admitted (kept in its home, one file per job)."""

    job: SignedJob
    dataset: str
    run: int  # the Flower run the job was admitted in; messages of other runs are replays
    summarised: bool = False  # summaries leave once per job
    trained: int = 0  # last round this node trained
    evaluated: int = 0  # last round this node evaluated
    plan: str = ""  # sha256 of the feature plan the first round used

    def to_doc(self) -> dict[str, Any]:
        return {
            "job": self.job.to_json(),
            "dataset": self.dataset,
            "run": self.run,
            "summarised": self.summarised,
            "trained": self.trained,
            "evaluated": self.evaluated,
            "plan": self.plan,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Admitted":
        return cls(
            job=SignedJob.from_json(str(doc["job"])),
            dataset=str(doc["dataset"]),
            run=int(doc["run"]),
            summarised=bool(doc.get("summarised", False)),
            trained=int(doc.get("trained", 0)),
            evaluated=int(doc.get("evaluated", 0)),
            plan=str(doc.get("plan", "")),
        )


@dataclass(frozen=True)
class Request:
    """What one message asks of the node, as the guard read it from the message."""

    operation: str  # statistics | train | evaluate
    server_round: int
    secure: bool = False  # a SecAgg+ 'collect masked vectors' message (the update is masked)
    proximal_mu: float | None = None  # what Flower's FedProx put in the config, if anything
    clipping_norm: float | None = None  # what Flower's client-side DP put there, if anything
    plan: str = ""  # sha256 of the feature plan the message carries, if any
    # a train message may first evaluate the model it brings, the previous round's (one
    # message per round on the deployment engine); 0: it does not
    evaluates: int = 0


def check_run(current_job: str | None, job_id: str, run: int) -> Decision:
    """A Flower run serves one job: a message of another job in the same run is refused."""
    if current_job is not None and current_job != job_id:
        return Decision(
            False,
            f"refused job {job_id}: run {run} belongs to job {current_job}; a message of "
            "another job is not accepted in it",
        )
    return Decision(True, "the run's own job")


def check_request(admitted: Admitted, job: SignedJob, run: int, request: Request) -> Decision:
    """May this message, presented with `job`, go on under what the node admitted?"""
    doc = admitted.job.document
    steward_job = f"job {doc.job_id}"

    def refuse(why: str) -> Decision:
        return Decision(False, f"refused {steward_job}: {why}")

    if run != admitted.run:
        return refuse(
            f"it was admitted in run {admitted.run} and this message belongs to run {run}; "
            "a job's messages are never replayed into another run"
        )
    # the same canonical bytes are the same document: only a different one is taken apart
    same = job is admitted.job or job.to_json() == admitted.job.to_json()
    changed = [] if same else differing_fields(doc, job.document)
    if changed or job.signature != admitted.job.signature:
        named = ", ".join(changed) or "signature"
        return refuse(
            f"this message's job document differs from the one the node admitted in "
            f"field(s) {named}; the node obeys only the document it admitted"
        )
    settings = doc.settings
    if (wrong := operation_refusal(doc.kind, request.operation)) is not None:
        return refuse(wrong)
    if request.operation == "statistics" and admitted.summarised:
        return refuse("its summaries were already released; they leave the node once per job")
    if request.operation in ("train", "evaluate") and not 1 <= request.server_round <= doc.rounds:
        return refuse(f"round {request.server_round} is outside the job's {doc.rounds} rounds")
    operates = request.operation in ("train", "evaluate")
    if operates and request.plan and admitted.plan and request.plan != admitted.plan:
        return refuse(
            "the feature plan differs from the one its earlier rounds used; a job keeps "
            "one preprocessing plan"
        )
    if request.operation == "train":
        if request.server_round != admitted.trained + 1:
            return refuse(
                f"round {request.server_round} asked, but this node trained round "
                f"{admitted.trained} last and trains each round once, in order"
            )
        if request.secure != settings.secure_aggregation:
            if settings.secure_aggregation:
                return refuse(
                    "field secure_aggregation: the job document promises secure aggregation, "
                    "but the message asks for a plain (unmasked) update"
                )
            return refuse(
                "field secure_aggregation: the job document says plain aggregation, but the "
                "message is a SecAgg+ round"
            )
        if request.proximal_mu is not None and request.proximal_mu != settings.local_proximal_mu:
            return refuse(
                f"field settings.proximal_mu: the message asks for {request.proximal_mu!r}, the "
                f"job document says {settings.local_proximal_mu!r}"
            )
        if request.clipping_norm is not None and request.clipping_norm != settings.clipping_norm:
            return refuse(
                f"field settings.clipping_norm: the message asks for {request.clipping_norm!r}, "
                f"the job document says {settings.clipping_norm!r}"
            )
    if request.operation == "evaluate" and request.server_round <= admitted.evaluated:
        return refuse(
            f"round {request.server_round} was already evaluated (last: {admitted.evaluated}); "
            "each round's scores leave the node once"
        )
    if request.evaluates:
        return _check_evaluation_in_training(admitted, request, refuse)
    return Decision(True, "as admitted")


def _check_evaluation_in_training(
    admitted: Admitted, request: Request, refuse: Callable[[str], Decision]
) -> Decision:
    """A train message that also evaluates: only the model of the round before, if the job
    may evaluate, and each round's scores still leave once."""
    doc = admitted.job.document
    if request.operation != "train":
        return refuse("only a train message may carry an evaluation of its incoming model")
    if (wrong := operation_refusal(doc.kind, "evaluate")) is not None:
        return refuse(wrong)
    if request.evaluates != request.server_round - 1:
        return refuse(
            f"a round-{request.server_round} train message may evaluate only round "
            f"{request.server_round - 1}'s model, not round {request.evaluates}'s"
        )
    if request.evaluates <= admitted.evaluated:
        return refuse(
            f"round {request.evaluates} was already evaluated (last: {admitted.evaluated}); "
            "each round's scores leave the node once"
        )
    return Decision(True, "as admitted")


def after_reply(admitted: Admitted, request: Request) -> Admitted:
    """The record once the node has answered `request`."""
    plan = admitted.plan or request.plan
    if request.operation == "statistics":
        return replace(admitted, summarised=True)
    if request.operation == "train":
        evaluated = max(admitted.evaluated, request.evaluates)
        return replace(admitted, trained=request.server_round, evaluated=evaluated, plan=plan)
    if request.operation == "evaluate":
        return replace(admitted, evaluated=request.server_round, plan=plan)
    return admitted


@dataclass(frozen=True)
class StageRequest:
    """A SecAgg+ protocol message that carries no job document (setup, keys, unmasking)."""

    stage: str
    sample_number: int | None = None
    share_number: int | None = None
    threshold: int | None = None


def check_secure_stage(admitted: Admitted | None, run: int, request: StageRequest) -> Decision:
    """SecAgg+ stage messages pass only for a secure job admitted in this very run.

    The setup must also be a real aggregation: at least two parties and a threshold of at
    least two, within the job's own datasets, so no 'sum' is one node's update.
    """
    if admitted is None:
        return Decision(
            False,
            f"refused a SecAgg+ '{request.stage}' message: no job was admitted in this run; "
            "secure-aggregation messages pass only for a job this node admitted",
        )
    doc = admitted.job.document
    if admitted.run != run:
        return Decision(
            False,
            f"refused job {doc.job_id}: a SecAgg+ message from run {run}, but the job was "
            f"admitted in run {admitted.run}",
        )
    if not doc.secure_aggregation:
        return Decision(
            False,
            f"refused job {doc.job_id}: a SecAgg+ message for a job whose document says "
            "plain aggregation",
        )
    if request.stage == "setup":
        nodes = len(doc.datasets)
        sample, share, threshold = request.sample_number, request.share_number, request.threshold
        if sample is None or share is None or threshold is None:
            return Decision(
                False, f"refused job {doc.job_id}: a SecAgg+ setup without its parameters"
            )
        if not (2 <= threshold <= share <= sample <= nodes):
            return Decision(
                False,
                f"refused job {doc.job_id}: SecAgg+ setup with {sample} participant(s), "
                f"{share} share(s) and a threshold of {threshold}; a secure sum needs at least "
                f"2 participants and a threshold of at least 2, among the job's {nodes} "
                "dataset(s)",
            )
    return Decision(True, "secure-aggregation step of an admitted job")
