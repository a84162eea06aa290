"""Client-level DP at the node: clip the update with Flower's mod, at the reserved norm.

The norm must be the one the node reserved its budget for: a larger one would let an
update move the sum by more than the coordinator's noise covers.
"""

from flwr.app import Context, Error, Message, MessageType
from flwr.client.mod import fixedclipping_mod as legacy_fixedclipping_mod
from flwr.clientapp.mod import fixedclipping_mod
from flwr.clientapp.typing import ClientAppCallable
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from kumiai.adapters.flower import protocol
from kumiai.node.admitted import admitted_job
from kumiai.node.home import NodeHome
from kumiai.node.spendlog import SpendLog


def _refuse(message: Message, dataset: str, text: str) -> Message:
    return Message(
        Error(protocol.REFUSED, protocol.refusal_reason(dataset, text)), reply_to=message
    )


def client_dp_mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """On a client-level DP job's training message: clip the update with Flower's mod.

    The norm must be the one the node reserved its budget for: a larger one would let an
    update move the sum by more than the noise covers.
    """
    if message.metadata.message_type != MessageType.TRAIN:
        return call_next(message, context)
    if protocol.job_config(message) is None:  # a SecAgg+ step that carries no update
        return call_next(message, context)
    home, dataset, admitted = admitted_job(context)
    settings, job = admitted.job.document.settings, admitted.job.document.job_id
    if not (settings.private and settings.dp_level == "client"):
        return call_next(message, context)
    config = protocol.job_config(message)
    assert config is not None
    held = SpendLog(NodeHome(home), dataset).view().jobs.get(job)
    reserved = None if held is None else held.details.get("clipping_norm")
    asked = config.get(KEY_CLIPPING_NORM)
    if reserved is None:
        return _refuse(message, dataset, f"job {job} holds no privacy reservation here")
    if asked is None or float(asked) != float(reserved):  # type: ignore[arg-type]
        return _refuse(
            message,
            dataset,
            f"job {job} asked to clip updates at {asked!r}, but this node reserved its "
            f"budget for a clipping norm of {reserved}; the round is refused",
        )
    if protocol.LEGACY_PARAMETERS in message.content:  # inside SecAgg+: clipped before masking
        return legacy_fixedclipping_mod(message, context, call_next)
    return fixedclipping_mod(message, context, call_next)
