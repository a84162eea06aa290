"""The node's guard: a Flower mod that applies the node's rules to every message.

Because it is an ordinary mod, it guards any Flower ClientApp, kumiai's own or a user's:

    from kumiai.node.guard import make_guard_mod
    app = ClientApp(mods=[make_guard_mod()])

The node is found from `node_config["kumiai-home"]` (and optionally `kumiai-dataset`),
or from a locator the caller passes (the simulation maps partition ids to homes).

On the first message of a job the guard admits the coordinator-signed job document against
the node's own agreement and records it in the node home; every later message is compared
with that record (`kumiai.domain.admission`). The handlers read the job's parameters from
the record, never from the message.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from flwr.app import ConfigRecord, Context, Error, Message, MessageType
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Stage
from flwr.common.secure_aggregation.secaggplus_constants import Key as SecAggKey
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from kumiai.adapters.flower import protocol
from kumiai.domain import keys
from kumiai.domain.admission import (
    Admitted,
    Request,
    StageRequest,
    after_reply,
    check_request,
    check_run,
    check_secure_stage,
)
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.clock import utc_now
from kumiai.domain.disclosure import ALLOWED
from kumiai.domain.errors import KumiaiError
from kumiai.domain.job import OPERATION_OF_MESSAGE, SignedJob
from kumiai.domain.ledger import TreeHead
from kumiai.domain.policy import Decision, check_job
from kumiai.domain.refusal import Refusal, signed_refusal
from kumiai.node import witnessing
from kumiai.node.home import NodeHome

NodeLocator = Callable[[Context], tuple[Path, str | None]]
Mod = Callable[[Message, Context, ClientAppCallable], Message]


def node_config_locator(context: Context) -> tuple[Path, str | None]:
    """Deployment: each SuperNode is started with --node-config "kumiai-home='...'"."""
    home = context.node_config.get(protocol.NODE_HOME)
    if not home:
        raise KumiaiError(
            "this SuperNode has no node_config 'kumiai-home'; start it with "
            "--node-config \"kumiai-home='/path/to/member/home'\""
        )
    dataset = context.node_config.get(protocol.NODE_DATASET)
    return Path(str(home)), (str(dataset) if dataset else None)


@dataclass(frozen=True)
class Admission:
    """The guard's answer for one message, with what the handlers need once it is allowed."""

    decision: Decision
    dataset: str
    steward: str = ""
    epsilon_cap: float | None = None  # the agreement's cap, for the node's budget check
    statistics: str = ALLOWED  # the agreement's aggregate_statistics term
    min_cohort: int = 0  # and its minimum cohort
    cosignature: str = ""  # the node's signature on the coordinator's head, if it cosigned
    head: TreeHead | None = None
    admitted: Admitted | None = None  # the node's record of the job (None for stage steps)
    request: Request | None = None
    job: SignedJob | None = None  # the document the message presented, when it parsed


def witness(
    node: NodeHome, config: ConfigRecord, steward: str, job_id: str
) -> tuple[Decision, str, TreeHead | None]:
    """Check the coordinator's tree head against the one this node last verified.

    A node works only for a coordinator whose log it can check: the message must carry a
    signed head and, once the node has witnessed before, a consistency proof from it.
    """
    if protocol.HEAD not in config:
        return (
            Decision(
                False,
                f"{steward} refused job {job_id}: the message carries no signed "
                "tree head, so the coordinator's log cannot be checked",
            ),
            "",
            None,
        )
    try:
        head = TreeHead.from_json(str(config[protocol.HEAD]))
    except KumiaiError as exc:
        return Decision(False, f"{steward} refused job {job_id}: {exc}"), "", None
    last = witnessing.last_witnessed(node)
    sent = protocol.consistency_for(config, steward)
    proof: list[bytes] = []
    if last is not None and last.size != head.size:
        if sent is None or sent[0] != last.size:
            return (
                Decision(
                    False,
                    f"{steward} refused job {job_id}: no consistency proof from "
                    f"the head this node last witnessed (size {last.size}); run "
                    "`kumiai ledger witness` to bring the witnesses up to date",
                ),
                "",
                None,
            )
        proof = sent[1]
    seen = witnessing.check(node, head, proof)
    if not seen.verdict.accepted:
        return Decision(False, f"{steward} refused job {job_id}: {seen.verdict.reason}"), "", None
    return Decision(True, seen.verdict.reason), seen.cosignature or "", head


def secure_stage(message: Message) -> str | None:
    """The SecAgg+ stage a TRAIN message belongs to, or None for an ordinary message."""
    configs = message.content.config_records.get(RECORD_KEY_CONFIGS)
    if message.metadata.message_type != MessageType.TRAIN or configs is None:
        return None
    return str(configs.get(SecAggKey.STAGE, ""))


def _optional_float(config: ConfigRecord, *names: str) -> float | None:
    for name in names:
        if name in config:
            try:
                return float(config[name])  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return float("nan")  # never equal to the admitted value: refused, named
    return None


def read_request(message: Message, config: ConfigRecord) -> Request:
    """What the message asks for, as the rules compare it with the admitted job."""
    operation = OPERATION_OF_MESSAGE.get(message.metadata.message_type.split(".")[0], "unknown")
    try:
        server_round = int(config.get(protocol.ROUND, 0))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        server_round = -1
    plan = config.get(protocol.PLAN)
    return Request(
        operation=operation,
        server_round=server_round,
        secure=secure_stage(message) == Stage.COLLECT_MASKED_VECTORS,
        proximal_mu=_optional_float(config, protocol.FEDPROX_MU, protocol.LEGACY_FEDPROX_MU),
        clipping_norm=_optional_float(config, KEY_CLIPPING_NORM),
        plan=hashlib.sha256(str(plan).encode()).hexdigest() if plan is not None else "",
        evaluates=_evaluates(config),
    )


def _evaluates(config: ConfigRecord) -> int:
    """The round whose model a train message also asks to evaluate (0: none; -1: garbled,
    which the rules refuse)."""
    if protocol.EVALUATES not in config:
        return 0
    try:
        return int(config[protocol.EVALUATES])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return -1


def _own_agreement(
    node: NodeHome, job: SignedJob, dataset: str, config: ConfigRecord
) -> tuple[SignedAgreement | None, str]:
    """The node's own copy of the agreement the job names, and why it cannot be used.

    The coordinator's copy is only compared: a copy that differs from the one the steward
    signed on this node is a lie, and named as one.
    """
    agreement_id = job.document.agreements.get(dataset, "")
    try:
        own = node.agreement(agreement_id) if agreement_id else None
    except KumiaiError as exc:
        return None, f"this node's copy of agreement {agreement_id} is unreadable ({exc})"
    presented = protocol.agreements_of(config).get(dataset)
    if own is not None and presented is not None and presented != own.to_json():
        return None, (
            f"the coordinator presented a copy of agreement {agreement_id} that differs from "
            "the one this node's steward signed"
        )
    return own, ""


def decide(message: Message, context: Context, home: Path, dataset_hint: str | None) -> Admission:
    """Run the policy, admission and witness checks for one message with this node's state."""
    node = NodeHome(home)
    steward = node.member_name
    stage = secure_stage(message)
    if stage is not None and stage != Stage.COLLECT_MASKED_VECTORS:
        return _decide_stage(message, context, node, stage)
    config = protocol.job_config(message)
    if config is None:
        return Admission(
            Decision(
                False,
                f"{steward} refused: the message carries no kumiai job document; "
                "submit work through a kumiai job",
            ),
            dataset_hint or "?",
        )
    try:
        job = SignedJob.from_json(str(config[protocol.JOB]))
    except KumiaiError as exc:
        return Admission(Decision(False, f"{steward} refused: {exc}"), dataset_hint or "?")
    return replace(_decide_job(message, context, node, job, config, dataset_hint), job=job)


def _decide_job(
    message: Message,
    context: Context,
    node: NodeHome,
    job: SignedJob,
    config: ConfigRecord,
    dataset_hint: str | None,
) -> Admission:
    """The checks for a message that carries a well-formed job document."""
    steward = node.member_name
    doc = job.document
    held = [dataset_hint] if dataset_hint else node.dataset_names()
    mine = [d for d in held if d in doc.datasets]
    if not mine:
        return Admission(
            Decision(
                False,
                f"{steward} refused job {doc.job_id}: this node holds none of "
                f"its datasets {list(doc.datasets)}",
            ),
            dataset_hint or "?",
        )
    dataset = mine[0]
    agreement, problem = _own_agreement(node, job, dataset, config)
    if problem:
        return Admission(Decision(False, f"{steward} refused job {doc.job_id}: {problem}"), dataset)
    state = context.state.config_records.get(protocol.STATE)
    bound = check_run(
        str(state[protocol.STATE_JOB]) if state and protocol.STATE_JOB in state else None,
        doc.job_id,
        context.run_id,
    )
    if not bound.allowed:
        return Admission(Decision(False, f"{steward} {bound.reason}"), dataset)
    request = read_request(message, config)
    try:
        record = node.admission(doc.job_id)
        admitted = (
            Admitted.from_doc(record)
            if record is not None
            else Admitted(job=job, dataset=dataset, run=context.run_id)
        )
    except (KumiaiError, KeyError, TypeError, ValueError) as exc:
        return Admission(
            Decision(
                False,
                f"{steward} refused job {doc.job_id}: this node's record of the job is "
                f"unreadable ({exc}); the job cannot go on here",
            ),
            dataset,
        )
    followup = check_request(admitted, job, context.run_id, request)
    if not followup.allowed:  # first: a lying document is named as one, field by field
        return Admission(Decision(False, f"{steward} {followup.reason}"), dataset)
    decision = check_job(
        job=job,
        coordinator_key=node.coordinator_key(),
        operation=request.operation,
        server_round=request.server_round,
        dataset=dataset,
        steward=steward,
        steward_public_keys=node.steward_keys(),
        agreement=agreement,
        revoked=node.revoked(),
        now=utc_now(),
    )
    if not decision.allowed:
        return Admission(decision, dataset)
    witnessed, cosignature, head = witness(node, config, steward, doc.job_id)
    if not witnessed.allowed:
        return Admission(witnessed, dataset)
    if record is None:
        node.save_admission(doc.job_id, admitted.to_doc())  # admitted once, before any work
    assert agreement is not None  # check_job refuses a job without one
    terms = agreement.terms
    return Admission(
        decision,
        dataset,
        steward,
        terms.epsilon_cap,
        terms.aggregate_statistics,
        terms.min_cohort,
        cosignature,
        head,
        admitted,
        request,
    )


def _decide_stage(message: Message, context: Context, node: NodeHome, stage: str) -> Admission:
    """A SecAgg+ step with no job document: only for a secure job admitted in this run.

    These steps exchange keys and shares; they read no rows.
    """
    state = context.state.config_records.get(protocol.STATE)
    admitted: Admitted | None = None
    if state is not None and protocol.STATE_JOB in state:
        record = node.admission(str(state[protocol.STATE_JOB]))
        admitted = Admitted.from_doc(record) if record is not None else None
    configs = message.content.config_records[RECORD_KEY_CONFIGS]

    def number(key: str) -> int | None:
        value = configs.get(key)
        return int(value) if isinstance(value, int) else None  # type: ignore[arg-type]

    request = StageRequest(
        stage=stage,
        sample_number=number(SecAggKey.SAMPLE_NUMBER),
        share_number=number(SecAggKey.SHARE_NUMBER),
        threshold=number(SecAggKey.THRESHOLD),
    )
    decision = check_secure_stage(admitted, context.run_id, request)
    dataset = admitted.dataset if admitted is not None else "?"
    if not decision.allowed:
        return Admission(Decision(False, f"{node.member_name} {decision.reason}"), dataset)
    # Revocation and expiry are checked again at the stage that touches rows (collecting
    # masked vectors, which carries the job document); refusing a key step instead would
    # leave Flower's SecAgg+ unable to unmask the others' sum.
    return Admission(decision, dataset, node.member_name)


def keep_refusal(home: Path, admission: Admission, reason: str) -> None:
    """The node's own signed copy of a refusal of a job it could name (see domain.refusal)."""
    if admission.job is None or admission.dataset == "?":
        return
    node = NodeHome(home)
    refusal = Refusal(
        node.member_name, admission.job.document.job_id, admission.dataset, reason, utc_now()
    )
    try:
        signature = keys.sign(node.private_key(), refusal.signed_bytes())
        node.save_refusal(refusal.job, refusal.dataset, signed_refusal(refusal, signature))
    except KumiaiError:
        return  # a name unfit for a file was refused anyway; there is nothing to keep


def _refusal(message: Message, dataset: str, reason: str) -> Message:
    return Message(
        Error(protocol.REFUSED, protocol.refusal_reason(dataset, reason)), reply_to=message
    )


def make_guard_mod(locate: NodeLocator = node_config_locator) -> Mod:
    """A mod that refuses, with the node's reason, any message its agreements do not cover."""

    def kumiai_guard(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        try:
            home, hint = locate(context)
            admission = decide(message, context, home, hint)
        except KumiaiError as exc:
            return _refusal(message, "?", str(exc))
        except Exception as exc:  # a broken check refuses; it never lets the message through
            return _refusal(message, "?", f"the node's check failed: {type(exc).__name__}: {exc}")
        if not admission.decision.allowed:
            keep_refusal(home, admission, admission.decision.reason)
            return _refusal(message, admission.dataset, admission.decision.reason)
        admitted, request = admission.admitted, admission.request
        if admitted is None or request is None:  # a SecAgg+ step of an admitted job
            return call_next(message, context)
        cap = admission.epsilon_cap
        context.state[protocol.STATE] = ConfigRecord(
            {
                protocol.STATE_HOME: str(home),
                protocol.STATE_DATASET: admission.dataset,
                protocol.STATE_JOB: admitted.job.document.job_id,
                protocol.STATE_CAP: -1.0 if cap is None else cap,
                protocol.STATE_STATISTICS: admission.statistics,
                protocol.STATE_COHORT: admission.min_cohort,
            }
        )
        reply = call_next(message, context)
        if reply.has_error() and reply.error.code == protocol.REFUSED:  # e.g. the budget
            _, reason = protocol.parse_refusal(reply.error.reason or "")
            keep_refusal(home, admission, reason)
        head = admission.head
        if not reply.has_error():  # recorded before the reply leaves: no round is done twice
            node = NodeHome(home)
            node.save_admission(
                admitted.job.document.job_id, after_reply(admitted, request).to_doc()
            )
            if head is not None and admission.cosignature:
                witnessing.remember(node, head)  # vouched for: its cosignature leaves now
        if admission.cosignature and head is not None and reply.has_content():
            reply.content[protocol.COSIGNATURE] = ConfigRecord(
                {
                    protocol.WITNESS: admission.steward,
                    protocol.SIZE: head.size,
                    protocol.SIGNED_HEAD: head.to_json(),
                    protocol.SIGNATURE: admission.cosignature,
                }
            )
        return reply

    return kumiai_guard
