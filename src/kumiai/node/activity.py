"""The node's activity log: one line per message its guard admitted, for the member's IT.

A member's node runs on its own machine, so `kumiai node serve`'s output is the steward's
record of what the coordinator asked of it and when: the round, the kind of work, and for
secure aggregation the SecAgg+ stage (a stage is named only once key sharing is over, so
an operator can tell a node lost before key sharing from one lost after it). Lines go to
stderr, which `node serve` keeps in its log. Nothing of the data or the update is written.

    2026-11-29T15:30:02Z round 2 train, secure aggregation stage share_keys: working
    2026-11-29T15:30:02Z round 2 train, secure aggregation stage share_keys: answered
"""

import sys
import time
from typing import TextIO

from flwr.app import Context, Message
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key


def describe(message: Message) -> str:
    """What a message asks, without its content: round (group id), type, SecAgg+ stage."""
    what = f"round {message.metadata.group_id or '?'} {message.metadata.message_type}"
    configs = message.content.config_records.get(RECORD_KEY_CONFIGS)
    if configs is not None and Key.STAGE in configs:
        what += f", secure aggregation stage {configs[Key.STAGE]}"
    return what


def activity_mod_to(out: TextIO | None = None):  # type: ignore[no-untyped-def]
    """A Flower mod writing a line when the node starts a message and when it replies."""

    def activity_mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        what = describe(message)  # before SecAgg+'s mod pops the stage from the content
        _line(out, f"{what}: working")
        reply = call_next(message, context)
        outcome = f"refused or failed: {reply.error.reason}" if reply.has_error() else "answered"
        _line(out, f"{what}: {outcome}")
        return reply

    return activity_mod


def _line(out: TextIO | None, text: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} {text}", file=out or sys.stderr, flush=True)
