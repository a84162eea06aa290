"""The node's guard: a Flower mod that applies the policy check to every message.

Because it is an ordinary mod, it guards any Flower ClientApp, kumiai's own or a user's:

    from kumiai.adapters.flower.guard import make_guard_mod
    app = ClientApp(mods=[make_guard_mod()])

The node is found from `node_config["kumiai-home"]` (and optionally `kumiai-dataset`),
or from a locator the caller passes (the simulation maps partition ids to homes).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flwr.app import ConfigRecord, Context, Error, Message, MessageType
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Stage
from flwr.common.secure_aggregation.secaggplus_constants import Key as SecAggKey

from kumiai.adapters import witnessing
from kumiai.adapters.flower import protocol
from kumiai.adapters.nodehome import NodeHome
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import KumiaiError
from kumiai.domain.job import OPERATION_OF_MESSAGE, JobTicket
from kumiai.domain.ledger import TreeHead
from kumiai.domain.policy import Decision, check_job

NodeLocator = Callable[[Context], tuple[Path, str | None]]
Mod = Callable[[Message, Context, ClientAppCallable], Message]


def node_config_locator(context: Context) -> tuple[Path, str | None]:
    """Deployment: each SuperNode is started with --node-config "kumiai-home='...'"."""
    home = context.node_config.get("kumiai-home")
    if not home:
        raise KumiaiError(
            "this SuperNode has no node_config 'kumiai-home'; start it with "
            "--node-config \"kumiai-home='/path/to/member/home'\""
        )
    dataset = context.node_config.get("kumiai-dataset")
    return Path(str(home)), (str(dataset) if dataset else None)


@dataclass(frozen=True)
class Admission:
    """The guard's answer for one message, with what the handlers need once it is allowed."""

    decision: Decision
    dataset: str
    steward: str = ""
    epsilon_cap: float | None = None  # the agreement's cap, for the node's budget check
    cosignature: str = ""  # the node's signature on the coordinator's head, if it cosigned
    head: TreeHead | None = None


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
    seen = witnessing.observe(node, head, proof)
    if not seen.verdict.accepted:
        return Decision(False, f"{steward} refused job {job_id}: {seen.verdict.reason}"), "", None
    return Decision(True, seen.verdict.reason), seen.cosignature or "", head


def decide(message: Message, home: Path, dataset_hint: str | None) -> Admission:
    """Run the policy and witness checks for one message with this node's own state."""
    node = NodeHome(home)
    steward = node.member_name
    config = protocol.job_config(message)
    operation = OPERATION_OF_MESSAGE.get(message.metadata.message_type.split(".")[0], "unknown")
    if config is None:
        return Admission(
            Decision(
                False,
                f"{steward} refused: the message carries no kumiai job ticket; "
                "submit work through a kumiai job",
            ),
            dataset_hint or "?",
        )
    try:
        ticket = JobTicket.from_json(str(config[protocol.TICKET]))
    except KumiaiError as exc:
        return Admission(Decision(False, f"{steward} refused: {exc}"), dataset_hint or "?")
    held = [dataset_hint] if dataset_hint else node.dataset_names()
    mine = [d for d in held if d in ticket.datasets]
    if not mine:
        return Admission(
            Decision(
                False,
                f"{steward} refused job {ticket.job_id}: this node holds none of "
                f"its datasets {list(ticket.datasets)}",
            ),
            dataset_hint or "?",
        )
    dataset = mine[0]
    document = protocol.agreements_of(config).get(dataset)
    try:
        agreement = SignedAgreement.from_json(document) if document else None
    except KumiaiError as exc:
        return Admission(Decision(False, f"{steward} refused job {ticket.job_id}: {exc}"), dataset)
    server_round = int(config.get("server-round", 0))
    decision = check_job(
        ticket=ticket,
        operation=operation,
        server_round=server_round,
        dataset=dataset,
        steward=steward,
        steward_public_keys=node.steward_keys(),
        agreement=agreement,
        revoked=node.revoked(),
        now=utc_now(),
    )
    if not decision.allowed:
        return Admission(decision, dataset)
    witnessed, cosignature, head = witness(node, config, steward, ticket.job_id)
    if not witnessed.allowed:
        return Admission(witnessed, dataset)
    cap = agreement.terms.epsilon_cap if agreement is not None else None
    return Admission(decision, dataset, steward, cap, cosignature, head)


def is_secure_aggregation_handshake(message: Message) -> bool:
    """SecAgg+ setup, key sharing and unmasking: protocol steps that read no rows.

    Only the stage that collects masked vectors trains, and it carries the job's ticket,
    so it is checked like any other training message.
    """
    configs = message.content.config_records.get(RECORD_KEY_CONFIGS)
    return (
        message.metadata.message_type == MessageType.TRAIN
        and configs is not None
        and configs.get(SecAggKey.STAGE) != Stage.COLLECT_MASKED_VECTORS
    )


def make_guard_mod(locate: NodeLocator = node_config_locator) -> Mod:
    """A mod that refuses, with the node's reason, any message its agreements do not cover."""

    def kumiai_guard(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if is_secure_aggregation_handshake(message):
            return call_next(message, context)  # key exchange only: no data is touched
        try:
            home, hint = locate(context)
            admission = decide(message, home, hint)
        except KumiaiError as exc:
            return Message(
                Error(protocol.REFUSED, protocol.refusal_reason("?", str(exc))), reply_to=message
            )
        if not admission.decision.allowed:
            reason = protocol.refusal_reason(admission.dataset, admission.decision.reason)
            return Message(Error(protocol.REFUSED, reason), reply_to=message)
        cap = admission.epsilon_cap
        context.state[protocol.STATE] = ConfigRecord(
            {
                "home": str(home),
                "dataset": admission.dataset,
                "epsilon-cap": -1.0 if cap is None else cap,
            }
        )
        reply = call_next(message, context)
        head = admission.head
        if admission.cosignature and head is not None and reply.has_content():
            reply.content[protocol.COSIGNATURE] = ConfigRecord(
                {
                    "witness": admission.steward,
                    "size": head.size,
                    "head": head.to_json(),
                    "signature": admission.cosignature,
                }
            )
        return reply

    return kumiai_guard
