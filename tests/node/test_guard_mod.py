"""The guard mod on a Flower message, without any network or Ray: it is a plain function."""

import json
import time
from pathlib import Path

from flwr.app import (
    DEFAULT_TTL,
    ConfigRecord,
    Context,
    Error,
    Message,
    MessageType,
    Metadata,
    MetricRecord,
    RecordDict,
)

from kumiai.adapters.flower import protocol
from kumiai.domain import keys, merkle
from kumiai.domain.agreement import sign_agreement
from kumiai.domain.clock import utc_now
from kumiai.domain.ledger import TreeHead, cosignature_valid, sign_head
from kumiai.node.guard import make_guard_mod
from kumiai.node.home import NodeHome
from tests.conftest import COORDINATOR_KEY, COORDINATOR_PUBLIC, make_signed_job, make_terms

FAR = utc_now().replace(year=2100)  # agreements here never expire


def _head(size: int, salt: bytes = b"") -> TreeHead:
    """A coordinator-signed head over `size` made-up entries."""
    tree = merkle.MerkleTree(merkle.leaf_hash(salt + bytes([i])) for i in range(size))
    return sign_head(TreeHead(size, tree.root().hex(), utc_now()), COORDINATOR_KEY)


def _node(tmp_path: Path):
    """A node home whose steward signed agr-1 there (the node's own copy)."""
    key = keys.new_private_key()
    node = NodeHome(tmp_path / "cleveland")
    node.create("cleveland", "hospital", key, COORDINATOR_PUBLIC)
    node.save_agreement(sign_agreement(make_terms(expires_at=FAR), key))
    return tmp_path / "cleveland", key


def _message(config: dict, message_type: str = MessageType.QUERY) -> Message:
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


def _config(agreements: dict[str, str], job_id: str = "job-1", **extra: object) -> dict:
    return {
        protocol.JOB: make_signed_job(job_id=job_id).to_json(),
        protocol.AGREEMENTS: json.dumps(agreements),
        protocol.HEAD: _head(4).to_json(),
        "server-round": 1,
        **extra,
    }


def _run(message: Message, context: Context) -> tuple[Message, list[Message]]:
    reached: list[Message] = []

    def handler(msg: Message, ctx: Context) -> Message:
        reached.append(msg)
        return Message(RecordDict({"metrics": MetricRecord({"num-examples": 1})}), reply_to=msg)

    return make_guard_mod()(message, context, handler), reached


def test_a_covered_message_reaches_the_app_with_the_dataset_in_state(tmp_path: Path) -> None:
    home, key = _node(tmp_path)
    agreement = sign_agreement(make_terms(expires_at=FAR), key)
    context = _context(home)
    reply, reached = _run(_message(_config({"cleveland-heart": agreement.to_json()})), context)
    assert len(reached) == 1 and not reply.has_error()
    assert context.state[protocol.STATE]["dataset"] == "cleveland-heart"


def test_an_agreement_the_coordinator_forged_is_answered_with_the_nodes_reason(
    tmp_path: Path,
) -> None:
    home, _ = _node(tmp_path)
    forged = sign_agreement(make_terms(expires_at=FAR), keys.new_private_key())
    reply, reached = _run(_message(_config({"cleveland-heart": forged.to_json()})), _context(home))
    assert reached == [] and reply.has_error()
    assert reply.error.code == protocol.REFUSED
    dataset, reason = protocol.parse_refusal(reply.error.reason or "")
    assert dataset == "cleveland-heart" and "differs from the one this node's steward" in reason


def test_a_tampered_own_copy_does_not_verify(tmp_path: Path) -> None:
    home, _ = _node(tmp_path)
    path = home / "agreements" / "agr-1.json"
    path.write_text(path.read_text().replace('"max_rounds":10', '"max_rounds":99'))
    reply, reached = _run(_message(_config({})), _context(home))
    assert reached == [] and "does not verify" in (reply.error.reason or "")


def test_a_node_that_holds_no_copy_of_the_agreement_refuses(tmp_path: Path) -> None:
    home, _ = _node(tmp_path)
    (home / "agreements" / "agr-1.json").unlink()
    reply, reached = _run(_message(_config({})), _context(home))
    assert reached == [] and "no signed agreement" in (reply.error.reason or "")


def test_a_message_without_a_job_document_never_reaches_the_app(tmp_path: Path) -> None:
    home, _ = _node(tmp_path)
    reply, reached = _run(_message({"lr": 0.1}), _context(home))
    assert reached == [] and "no kumiai job document" in (reply.error.reason or "")


def test_revocation_in_the_node_home_wins_over_the_coordinator(tmp_path: Path) -> None:
    home, key = _node(tmp_path)
    agreement = sign_agreement(make_terms(expires_at=FAR), key)
    NodeHome(home).revoke("agr-1", "2026-11-27T00:00:00Z", "consent withdrawn")
    reply, reached = _run(
        _message(_config({"cleveland-heart": agreement.to_json()})), _context(home)
    )
    assert reached == [] and "revoked" in (reply.error.reason or "")


def test_a_node_without_a_configured_home_refuses_clearly() -> None:
    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    reply, reached = _run(_message(_config({})), context)
    assert reached == [] and "kumiai-home" in (reply.error.reason or "")


def _agreement(key) -> str:
    return sign_agreement(make_terms(expires_at=FAR), key).to_json()


def test_an_accepted_head_is_remembered_and_cosigned(tmp_path: Path) -> None:
    home, key = _node(tmp_path)
    reply, reached = _run(_message(_config({"cleveland-heart": _agreement(key)})), _context(home))
    assert len(reached) == 1
    cosig = reply.content[protocol.COSIGNATURE]
    head = TreeHead.from_json(str(cosig["head"]))
    assert head.size == 4 and cosig["witness"] == "cleveland"
    assert cosignature_valid(head, "cleveland", str(cosig["signature"]), keys.public_key_b64(key))
    assert TreeHead.from_json(NodeHome(home).witnessed_head() or "") == head


def test_a_head_not_signed_by_the_pinned_coordinator_is_refused(tmp_path: Path) -> None:
    home, key = _node(tmp_path)
    forged = sign_head(TreeHead(4, _head(4).root, utc_now()), keys.new_private_key())
    config = _config({"cleveland-heart": _agreement(key)}, **{protocol.HEAD: forged.to_json()})
    reply, reached = _run(_message(config), _context(home))
    assert reached == [] and "not signed by the coordinator" in (reply.error.reason or "")


def test_a_forked_log_is_refused_by_the_witness(tmp_path: Path) -> None:
    home, key = _node(tmp_path)
    _run(_message(_config({"cleveland-heart": _agreement(key)})), _context(home))  # saw head 4
    other_history = merkle.MerkleTree(merkle.leaf_hash(b"x" + bytes([i])) for i in range(6))
    fork = sign_head(TreeHead(6, other_history.root().hex(), utc_now()), COORDINATOR_KEY)
    proof = other_history.consistency_proof(4, 6)
    config = _config(
        {"cleveland-heart": _agreement(key)},
        "job-2",
        **{
            protocol.HEAD: fork.to_json(),
            protocol.CONSISTENCY: protocol.encode_consistency({"cleveland": (4, proof)}),
        },
    )
    reply, reached = _run(_message(config), _context(home))
    assert reached == [] and "forked or rewrote its history" in (reply.error.reason or "")
    assert TreeHead.from_json(NodeHome(home).witnessed_head() or "").size == 4


def test_an_extension_of_the_witnessed_log_is_accepted(tmp_path: Path) -> None:
    home, key = _node(tmp_path)
    _run(_message(_config({"cleveland-heart": _agreement(key)})), _context(home))  # saw head 4
    longer = merkle.MerkleTree(merkle.leaf_hash(bytes([i])) for i in range(9))
    head = sign_head(TreeHead(9, longer.root().hex(), utc_now()), COORDINATOR_KEY)
    config = _config(
        {"cleveland-heart": _agreement(key)},
        "job-2",
        **{
            protocol.HEAD: head.to_json(),
            protocol.CONSISTENCY: protocol.encode_consistency(
                {"cleveland": (4, longer.consistency_proof(4, 9))}
            ),
        },
    )
    reply, reached = _run(_message(config), _context(home))
    assert len(reached) == 1 and not reply.has_error()
    assert TreeHead.from_json(NodeHome(home).witnessed_head() or "").size == 9


def test_a_node_that_failed_before_answering_has_not_moved_its_witness(tmp_path: Path) -> None:
    """One failure must not lock a member out: the head is remembered only with a reply."""
    home, key = _node(tmp_path)
    _run(_message(_config({"cleveland-heart": _agreement(key)})), _context(home))  # saw head 4
    longer = merkle.MerkleTree(merkle.leaf_hash(bytes([i])) for i in range(9))
    head = sign_head(TreeHead(9, longer.root().hex(), utc_now()), COORDINATOR_KEY)
    proof_from_4 = protocol.encode_consistency({"cleveland": (4, longer.consistency_proof(4, 9))})

    def failing(msg: Message, ctx: Context) -> Message:
        return Message(Error(protocol.FAILED, "[dataset cleveland-heart] bad data"), reply_to=msg)

    config = _config(
        {"cleveland-heart": _agreement(key)},
        "job-2",
        **{protocol.HEAD: head.to_json(), protocol.CONSISTENCY: proof_from_4},
    )
    reply = make_guard_mod()(_message(config), _context(home), failing)
    assert reply.has_error()
    assert TreeHead.from_json(NodeHome(home).witnessed_head() or "").size == 4
    # The coordinator never got a cosignature of head 9, so it proves from 4 again: accepted.
    config = _config(
        {"cleveland-heart": _agreement(key)},
        "job-3",
        **{protocol.HEAD: head.to_json(), protocol.CONSISTENCY: proof_from_4},
    )
    reply, reached = _run(_message(config), _context(home))
    assert len(reached) == 1 and not reply.has_error()
    assert TreeHead.from_json(NodeHome(home).witnessed_head() or "").size == 9
