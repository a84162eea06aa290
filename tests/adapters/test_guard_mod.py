"""The guard mod on a Flower message, without any network or Ray: it is a plain function."""

import json
import time
from pathlib import Path

from flwr.app import (
    DEFAULT_TTL,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    Metadata,
    RecordDict,
)

from kumiai.adapters.flower import protocol
from kumiai.adapters.flower.guard import make_guard_mod
from kumiai.adapters.nodehome import NodeHome
from kumiai.domain import keys
from kumiai.domain.agreement import sign_agreement
from kumiai.domain.clock import utc_now
from tests.conftest import make_terms, make_ticket


def _node(tmp_path: Path):
    key = keys.new_private_key()
    NodeHome(tmp_path / "cleveland").create("cleveland", "hospital", key)
    return tmp_path / "cleveland", key


def _message(config: dict, message_type: str = MessageType.TRAIN) -> Message:
    """A message as a SuperNode receives it (metadata set by the SuperLink)."""
    metadata = Metadata(
        run_id=1,
        message_id="m1",
        src_node_id=0,
        dst_node_id=1,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=DEFAULT_TTL,
        message_type=message_type,
    )
    return Message(RecordDict({"config": ConfigRecord(config)}), metadata=metadata)


def _context(home: Path) -> Context:
    return Context(
        run_id=1,
        node_id=1,
        node_config={"kumiai-home": str(home), "kumiai-dataset": "cleveland-heart"},
        state=RecordDict(),
        run_config={},
    )


def _config(agreements: dict[str, str], **extra: object) -> dict:
    return {
        protocol.TICKET: make_ticket().to_json(),
        protocol.AGREEMENTS: json.dumps(agreements),
        "server-round": 1,
        **extra,
    }


def _run(message: Message, context: Context) -> tuple[Message, list[Message]]:
    reached: list[Message] = []

    def handler(msg: Message, ctx: Context) -> Message:
        reached.append(msg)
        return Message(RecordDict(), reply_to=msg)

    return make_guard_mod()(message, context, handler), reached


def test_a_covered_message_reaches_the_app_with_the_dataset_in_state(tmp_path: Path) -> None:
    home, key = _node(tmp_path)
    agreement = sign_agreement(make_terms(expires_at=utc_now().replace(year=2100)), key)
    context = _context(home)
    reply, reached = _run(_message(_config({"cleveland-heart": agreement.to_json()})), context)
    assert len(reached) == 1 and not reply.has_error()
    assert context.state[protocol.STATE]["dataset"] == "cleveland-heart"


def test_an_uncovered_message_is_answered_with_the_nodes_reason(tmp_path: Path) -> None:
    home, _ = _node(tmp_path)
    forged = sign_agreement(
        make_terms(expires_at=utc_now().replace(year=2100)), keys.new_private_key()
    )
    reply, reached = _run(_message(_config({"cleveland-heart": forged.to_json()})), _context(home))
    assert reached == [] and reply.has_error()
    assert reply.error.code == protocol.REFUSED
    dataset, reason = protocol.parse_refusal(reply.error.reason or "")
    assert dataset == "cleveland-heart" and "does not verify" in reason


def test_a_message_without_a_ticket_never_reaches_the_app(tmp_path: Path) -> None:
    home, _ = _node(tmp_path)
    reply, reached = _run(_message({"lr": 0.1}), _context(home))
    assert reached == [] and "no kumiai job ticket" in (reply.error.reason or "")


def test_revocation_in_the_node_home_wins_over_the_coordinator(tmp_path: Path) -> None:
    home, key = _node(tmp_path)
    agreement = sign_agreement(make_terms(expires_at=utc_now().replace(year=2100)), key)
    NodeHome(home).revoke("agr-1", "2026-11-27T00:00:00Z", "consent withdrawn")
    reply, reached = _run(
        _message(_config({"cleveland-heart": agreement.to_json()})), _context(home)
    )
    assert reached == [] and "revoked" in (reply.error.reason or "")


def test_a_node_without_a_configured_home_refuses_clearly() -> None:
    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    reply, reached = _run(_message(_config({})), context)
    assert reached == [] and "kumiai-home" in (reply.error.reason or "")
