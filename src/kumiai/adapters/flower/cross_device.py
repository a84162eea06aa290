"""Cross-device rounds on Flower's simulation engine: every user's device a virtual SuperNode.

The coordinator's loop (kumiai.services.agent) is handed a `FlowerDevices`: how many
devices there are, and a way to ask some of them for a round. It samples positions in the
list of connected SuperNodes; which user a SuperNode serves is the node's own business
(its partition), so the coordinator never learns who took part. A device replies with its
item-side update (an ArrayRecord) or its refusal (a ConfigRecord with the reason).
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from kumiai.domain.errors import JobFailed

ARRAYS, CONFIG, REFUSAL, REASON = "arrays", "config", "refusal", "reason"


@dataclass(frozen=True)
class Reply:
    update: list[np.ndarray] | None
    refusal: str | None = None


class FlowerDevices:
    """The connected SuperNodes, in a fixed order, and one round's exchange with some."""

    def __init__(self, grid: Grid, expected: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(nodes := sorted(grid.get_node_ids())) < expected:
            if time.monotonic() > deadline:
                raise JobFailed(f"only {len(nodes)} of {expected} devices connected")
            time.sleep(0.1)
        self.grid, self.nodes, self.timeout = grid, nodes, timeout

    def __len__(self) -> int:
        return len(self.nodes)

    def ask(
        self, positions: Any, item_arrays: list[np.ndarray], config: dict[str, Any]
    ) -> Iterator[Reply]:
        arrays = ArrayRecord(item_arrays)
        messages = [
            Message(
                RecordDict({ARRAYS: arrays, CONFIG: ConfigRecord(config)}),
                dst_node_id=self.nodes[int(p)],
                message_type=MessageType.TRAIN,
            )
            for p in positions
        ]
        for reply in self.grid.send_and_receive(messages, timeout=self.timeout):
            if reply.has_error():
                yield Reply(None, reply.error.reason or "the device failed")
            elif REFUSAL in reply.content:
                yield Reply(None, str(reply.content[REFUSAL][REASON]))
            else:
                yield Reply(reply.content[ARRAYS].to_numpy_ndarrays())


def cross_device_server_app(
    drive: Callable[[FlowerDevices], None], expected: int, timeout: float = 600.0
) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        drive(FlowerDevices(grid, expected, timeout))

    return app


Handle = Callable[
    [int, list[np.ndarray], dict[str, Any]], tuple[list[np.ndarray] | None, str | None]
]


def device_client_app(handle: Handle) -> ClientApp:
    """`handle(partition, item_arrays, config)` is the device's round: (update, refusal)."""
    app = ClientApp()

    @app.train()
    def train(message: Message, context: Context) -> Message:
        partition = int(context.node_config["partition-id"])
        update, refusal = handle(
            partition,
            message.content[ARRAYS].to_numpy_ndarrays(),
            dict(message.content[CONFIG]),
        )
        if update is None:
            content = RecordDict({REFUSAL: ConfigRecord({REASON: refusal or "refused"})})
        else:
            content = RecordDict({ARRAYS: ArrayRecord(update)})
        return Message(content, reply_to=message)

    return app
