"""One message per round: the early train replies are used only when the strategy asks for
exactly what was sent early; otherwise its own messages go out."""

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from kumiai.adapters.flower import protocol
from kumiai.adapters.flower.combined import OneMessagePerRound


@pytest.fixture(autouse=True)
def run_identity() -> None:
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 0


class Nodes:
    """A grid whose nodes train (arrays + 1) and, when asked, score the model they got."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):  # type: ignore[no-untyped-def]
        return Message(content, dst_node_id=dst_node_id, message_type=message_type)

    def send_and_receive(self, messages, *, timeout=None):  # type: ignore[no-untyped-def]
        replies = []
        for message in messages:
            self.sent.append(message)
            config = message.content.config_records["config"]
            arrays = message.content.array_records[protocol.ARRAYS].to_numpy_ndarrays()
            content = RecordDict({protocol.ARRAYS: ArrayRecord([a + 1 for a in arrays])})
            content[protocol.METRICS] = MetricRecord({protocol.EXAMPLES: 10})
            if protocol.EVALUATES in config:
                content[protocol.EVALUATION] = MetricRecord({"scored": float(arrays[0][0])})
            if message.metadata.message_type == MessageType.EVALUATE:
                content = RecordDict({protocol.METRICS: MetricRecord({"scored": 0.0})})
            replies.append(Message(content, reply_to=message))
        return replies


def ask(kind: str, server_round: int, value: float, nodes=(1, 2)) -> list[Message]:  # type: ignore[no-untyped-def]
    config = ConfigRecord({protocol.JOB: "{}", protocol.ROUND: server_round})
    return [
        Message(
            RecordDict({protocol.ARRAYS: ArrayRecord([np.full(2, value)]), "config": config}),
            dst_node_id=n,
            message_type=kind,
        )
        for n in nodes
    ]


def test_round_two_training_rides_with_round_one_evaluation() -> None:
    nodes = Nodes()
    grid = OneMessagePerRound(nodes, rounds=3)
    grid.send_and_receive(ask(MessageType.TRAIN, 1, 0.0))
    scores = list(grid.send_and_receive(ask(MessageType.EVALUATE, 1, 5.0)))
    assert [s.content.metric_records[protocol.METRICS]["scored"] for s in scores] == [5.0, 5.0]
    early = nodes.sent[-1]
    assert early.metadata.message_type == MessageType.TRAIN
    config = early.content.config_records["config"]
    assert (config[protocol.ROUND], config[protocol.EVALUATES]) == (2, 1)
    count = len(nodes.sent)
    trained = list(grid.send_and_receive(ask(MessageType.TRAIN, 2, 5.0)))
    assert len(nodes.sent) == count  # nothing sent: the early replies answer
    assert all(protocol.EVALUATION not in r.content for r in trained)
    assert [r.content[protocol.ARRAYS].to_numpy_ndarrays()[0][0] for r in trained] == [6.0, 6.0]
    # the last round's evaluation is a plain evaluate message
    grid.send_and_receive(ask(MessageType.EVALUATE, 3, 7.0))
    assert nodes.sent[-1].metadata.message_type == MessageType.EVALUATE


def test_a_different_model_or_round_sends_the_strategys_own_messages() -> None:
    nodes = Nodes()
    grid = OneMessagePerRound(nodes, rounds=4)
    grid.send_and_receive(ask(MessageType.TRAIN, 1, 0.0))
    grid.send_and_receive(ask(MessageType.EVALUATE, 1, 5.0))
    count = len(nodes.sent)
    replies = list(grid.send_and_receive(ask(MessageType.TRAIN, 2, 9.0)))  # not the early model
    assert len(nodes.sent) == count + 2
    assert [r.content[protocol.ARRAYS].to_numpy_ndarrays()[0][0] for r in replies] == [10.0] * 2
    grid.send_and_receive(ask(MessageType.EVALUATE, 2, 10.0))
    count = len(nodes.sent)
    grid.send_and_receive(ask(MessageType.TRAIN, 3, 10.0, nodes=(1, 2, 3)))  # a new node
    assert len(nodes.sent) == count + 3
