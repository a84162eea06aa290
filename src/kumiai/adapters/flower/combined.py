"""One message per round: the next round's train message also evaluates the model it brings.

Flower's strategies send two messages a round (train, then evaluate the new global model).
On the deployment engine every message costs a node seconds of fixed waits, so this grid
answers the evaluation of round r by sending round r+1's train message early, carrying the
same global model and asking the node to score it before training (`protocol.EVALUATES`).
The node's guard lets a train message evaluate only the previous round's model, once. The
train replies are kept and handed to the strategy when it asks for round r+1, provided it
asks exactly that: the same nodes and the same model. Otherwise the early replies are
dropped and the strategy's own messages go out, so the result never depends on the trick.

The last round's evaluation is sent as a plain evaluate message.
"""

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, RecordDict

from kumiai.adapters.flower import protocol
from kumiai.adapters.flower.grid import DelegatingGrid


def _round(message: Message) -> int:
    config = protocol.job_config(message)
    return int(config.get(protocol.ROUND, 0)) if config is not None else 0  # type: ignore[arg-type]


def _arrays_id(message: Message) -> str | None:
    record = message.content.array_records.get(protocol.ARRAYS)
    return record.object_id if record is not None else None


class OneMessagePerRound(DelegatingGrid):
    def __init__(self, inner, rounds: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__(inner)
        self.rounds = rounds
        self.train_config: ConfigRecord | None = None  # the strategy's round-1 train config
        self.early: dict[int, Message] = {}  # node -> its reply to the early train message
        self.early_round = 0
        self.early_arrays: str | None = None

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        messages = list(messages)
        kind = messages[0].metadata.message_type if messages else ""
        if kind == MessageType.TRAIN:
            return self._train(messages, timeout)
        if kind == MessageType.EVALUATE and self.train_config is not None:
            server_round = _round(messages[0])
            if 0 < server_round < self.rounds:
                return self._evaluate_with_next_train(messages, server_round, timeout)
        return self.inner.send_and_receive(messages, timeout=timeout)

    def _train(self, messages: list[Message], timeout: float | None) -> Iterable[Message]:
        server_round = _round(messages[0])
        if self.train_config is None:
            config = protocol.job_config(messages[0])
            self.train_config = ConfigRecord(dict(config)) if config is not None else None
        early, self.early = self.early, {}
        wanted = {m.metadata.dst_node_id for m in messages}
        same = (
            server_round == self.early_round
            and wanted <= set(early)
            and all(_arrays_id(m) == self.early_arrays for m in messages)
        )
        if same:
            return [early[n] for n in wanted]
        return self.inner.send_and_receive(messages, timeout=timeout)

    def _evaluate_with_next_train(
        self, messages: list[Message], server_round: int, timeout: float | None
    ) -> list[Message]:
        assert self.train_config is not None
        config = ConfigRecord(dict(self.train_config))
        config[protocol.ROUND] = server_round + 1
        config[protocol.EVALUATES] = server_round
        sent: dict[int, Message] = {}
        for message in messages:
            arrays = message.content.array_records[protocol.ARRAYS]
            content = RecordDict(
                {protocol.ARRAYS: ArrayRecord(arrays.to_numpy_ndarrays()), "config": config}
            )
            sent[message.metadata.dst_node_id] = self.create_message(
                content,
                MessageType.TRAIN,
                message.metadata.dst_node_id,
                str(server_round + 1),
            )
        replies = list(self.inner.send_and_receive(list(sent.values()), timeout=timeout))
        self.early_round, self.early_arrays = server_round + 1, _arrays_id(messages[0])
        by_node = {m.metadata.dst_node_id: m for m in messages}
        evaluations = []
        for reply in replies:
            node = reply.metadata.src_node_id
            question = by_node.get(node)
            if question is None:
                continue
            if reply.has_error():
                evaluations.append(Message(reply.error, reply_to=question))
                continue
            self.early[node] = reply
            evaluation = reply.content.metric_records.get(protocol.EVALUATION)
            if evaluation is None:  # a node that did not evaluate: its score stays missing
                continue
            del reply.content[protocol.EVALUATION]  # the strategy sees a plain train reply
            evaluations.append(
                Message(RecordDict({protocol.METRICS: evaluation}), reply_to=question)
            )
        return evaluations
