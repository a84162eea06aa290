"""The node's activity log: what the coordinator asked, the SecAgg+ stage, never the content."""

import io
import time

from flwr.app import ConfigRecord, Context, Error, Message, MessageType, Metadata, RecordDict
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

from kumiai.node.activity import activity_mod_to


def _message(stage: str | None) -> Message:
    content = RecordDict()
    if stage is not None:
        content[RECORD_KEY_CONFIGS] = ConfigRecord({Key.STAGE: stage, "secret": b"never logged"})
    metadata = Metadata(
        run_id=1,
        message_id="m1",
        src_node_id=0,
        dst_node_id=7,
        reply_to_message_id="",
        group_id="2",
        created_at=time.time(),
        ttl=3600.0,
        message_type=MessageType.TRAIN,
    )  # as a SuperNode receives it (set by the SuperLink)
    return Message(content, metadata=metadata)


def _lines(out: io.StringIO) -> list[str]:
    return [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]  # without the time


def test_a_secure_aggregation_stage_is_logged_before_and_after_the_work() -> None:
    out = io.StringIO()
    mod = activity_mod_to(out)
    seen: list[str] = []

    def call_next(message: Message, context: Context) -> Message:
        seen.append(_lines(out)[-1])  # the "working" line is written before the work starts
        message.content.config_records[RECORD_KEY_CONFIGS].pop(Key.STAGE)  # as SecAgg+ does
        return Message(RecordDict(), reply_to=message)

    mod(_message("share_keys"), Context(0, 7, {}, RecordDict(), {}), call_next)
    what = "round 2 train, secure aggregation stage share_keys"
    assert seen == [f"{what}: working"]
    assert _lines(out) == [f"{what}: working", f"{what}: answered"]
    assert "never logged" not in out.getvalue()


def test_a_refusal_is_logged_with_its_reason() -> None:
    out = io.StringIO()

    def call_next(message: Message, context: Context) -> Message:
        return Message(Error(code=0, reason="the agreement was revoked"), reply_to=message)

    activity_mod_to(out)(_message(None), Context(0, 7, {}, RecordDict(), {}), call_next)
    assert _lines(out)[-1] == "round 2 train: refused or failed: the agreement was revoked"
