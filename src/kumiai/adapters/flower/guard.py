"""The node's guard: a Flower mod that applies the policy check to every message.

Because it is an ordinary mod, it guards any Flower ClientApp, kumiai's own or a user's:

    from kumiai.adapters.flower.guard import make_guard_mod
    app = ClientApp(mods=[make_guard_mod()])

The node is found from `node_config["kumiai-home"]` (and optionally `kumiai-dataset`),
or from a locator the caller passes (the simulation maps partition ids to homes).
"""

from collections.abc import Callable
from pathlib import Path

from flwr.app import ConfigRecord, Context, Error, Message
from flwr.clientapp.typing import ClientAppCallable

from kumiai.adapters.flower import protocol
from kumiai.adapters.nodehome import NodeHome
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import KumiaiError
from kumiai.domain.job import OPERATION_OF_MESSAGE, JobTicket
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


def decide(message: Message, home: Path, dataset_hint: str | None) -> tuple[Decision, str]:
    """Run the policy check for one incoming message with this node's own state."""
    node = NodeHome(home)
    steward = node.member_name
    config = protocol.job_config(message)
    operation = OPERATION_OF_MESSAGE.get(message.metadata.message_type.split(".")[0], "unknown")
    if config is None:
        return Decision(
            False,
            f"{steward} refused: the message carries no kumiai job ticket; "
            "submit work through a kumiai job",
        ), dataset_hint or "?"
    try:
        ticket = JobTicket.from_json(str(config[protocol.TICKET]))
    except KumiaiError as exc:
        return Decision(False, f"{steward} refused: {exc}"), dataset_hint or "?"
    held = [dataset_hint] if dataset_hint else node.dataset_names()
    mine = [d for d in held if d in ticket.datasets]
    if not mine:
        return Decision(
            False,
            f"{steward} refused job {ticket.job_id}: this node holds none of "
            f"its datasets {list(ticket.datasets)}",
        ), dataset_hint or "?"
    dataset = mine[0]
    document = protocol.agreements_of(config).get(dataset)
    try:
        agreement = SignedAgreement.from_json(document) if document else None
    except KumiaiError as exc:
        return Decision(False, f"{steward} refused job {ticket.job_id}: {exc}"), dataset
    server_round = int(config.get("server-round", 0))
    decision = check_job(
        ticket=ticket,
        operation=operation,
        server_round=server_round,
        dataset=dataset,
        steward=steward,
        steward_public_key=node.public_key(),
        agreement=agreement,
        revoked=node.revoked(),
        now=utc_now(),
    )
    return decision, dataset


def make_guard_mod(locate: NodeLocator = node_config_locator) -> Mod:
    """A mod that refuses, with the node's reason, any message its agreements do not cover."""

    def kumiai_guard(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        try:
            home, hint = locate(context)
            decision, dataset = decide(message, home, hint)
        except KumiaiError as exc:
            return Message(
                Error(protocol.REFUSED, protocol.refusal_reason("?", str(exc))), reply_to=message
            )
        if not decision.allowed:
            return Message(
                Error(protocol.REFUSED, protocol.refusal_reason(dataset, decision.reason)),
                reply_to=message,
            )
        context.state[protocol.STATE] = ConfigRecord({"home": str(home), "dataset": dataset})
        return call_next(message, context)

    return kumiai_guard
