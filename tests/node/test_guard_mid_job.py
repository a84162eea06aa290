"""Mid-job changes after the node's per-job shortcuts (parsed and verified once per document).

The guard remembers a parsed job document and a verified signature by their exact bytes; a
document, agreement or signature that changes between two messages of the same job must
still be refused, named, with nothing done and the node's record of the job unchanged.
"""

import json
from dataclasses import replace
from pathlib import Path

from flwr.app import Context, Message, MessageType, MetricRecord, RecordDict

from kumiai.adapters.flower import protocol
from kumiai.domain import keys
from kumiai.domain.agreement import sign_agreement
from kumiai.domain.job import SignedJob, sign_job
from kumiai.node.guard import make_guard_mod
from kumiai.node.home import NodeHome
from tests.conftest import COORDINATOR_KEY, make_signed_job, make_terms
from tests.node.test_guard_mod import FAR, _context, _head, _message

TERMS = make_terms(expires_at=FAR, plain_aggregation=True)


def _started(tmp_path: Path) -> tuple[Path, Context, SignedJob, str]:
    """A node that admitted a plain job and trained its round 1 (home, context, job, copy)."""
    key = keys.new_private_key()
    node = NodeHome(tmp_path / "cleveland")
    node.create("cleveland", "hospital", key, keys.public_key_b64(COORDINATOR_KEY))
    agreement = sign_agreement(TERMS, key)
    node.save_agreement(agreement)
    job = make_signed_job(rounds=5, secure_aggregation=False)
    context = _context(node.root)
    reply, reached = _train(context, job.to_json(), agreement.to_json(), 1)
    assert not reply.has_error() and len(reached) == 1
    return node.root, context, job, agreement.to_json()


def _train(
    context: Context, job_text: str, agreement: str, server_round: int
) -> tuple[Message, list[Message]]:
    config = {
        protocol.JOB: job_text,
        protocol.AGREEMENTS: json.dumps({"cleveland-heart": agreement}),
        protocol.HEAD: _head(4).to_json(),
        protocol.ROUND: server_round,
    }
    reached: list[Message] = []

    def handler(msg: Message, ctx: Context) -> Message:
        reached.append(msg)
        return Message(RecordDict({"metrics": MetricRecord({"num-examples": 1})}), reply_to=msg)

    reply = make_guard_mod()(_message(config, MessageType.TRAIN), context, handler)
    return reply, reached


def _record(home: Path) -> dict:
    record = NodeHome(home).admission("job-1")
    assert record is not None
    return record


def test_the_same_document_goes_on_round_after_round(tmp_path: Path) -> None:
    home, context, job, agreement = _started(tmp_path)
    for server_round in (2, 3):
        reply, reached = _train(context, job.to_json(), agreement, server_round)
        assert not reply.has_error() and len(reached) == 1
    assert _record(home)["trained"] == 3


def test_a_validly_signed_changed_document_mid_job_is_refused(tmp_path: Path) -> None:
    home, context, job, agreement = _started(tmp_path)
    before = _record(home)
    doc = job.document
    changed = sign_job(
        replace(doc, settings=replace(doc.settings, local_epochs=9)), COORDINATOR_KEY
    )
    reply, reached = _train(context, changed.to_json(), agreement, 2)
    assert reached == [] and reply.has_error()
    assert "differs from the one the node admitted in field(s) settings.local_epochs" in (
        reply.error.reason or ""
    )
    assert _record(home) == before


def test_the_same_document_with_another_signature_mid_job_is_refused(tmp_path: Path) -> None:
    home, context, job, agreement = _started(tmp_path)
    before = _record(home)
    resigned = sign_job(job.document, keys.new_private_key())  # same payload, other key
    reply, reached = _train(context, resigned.to_json(), agreement, 2)
    assert reached == [] and "in field(s) signature" in (reply.error.reason or "")
    assert _record(home) == before


def test_a_document_that_is_not_canonical_but_equal_is_the_same_document(tmp_path: Path) -> None:
    """Other bytes for the same document (spacing, key order) are compared field by field."""
    home, context, job, agreement = _started(tmp_path)
    spaced = json.dumps(json.loads(job.to_json()), indent=1)
    reply, reached = _train(context, spaced, agreement, 2)
    assert not reply.has_error() and len(reached) == 1
    assert _record(home)["trained"] == 2


def test_a_tampered_own_agreement_mid_job_is_refused(tmp_path: Path) -> None:
    """The node's own copy was verified on round 1; edited on disk, it no longer verifies."""
    home, context, job, _ = _started(tmp_path)
    before = _record(home)
    path = home / "agreements" / "agr-1.json"
    path.write_text(path.read_text().replace('"max_rounds":10', '"max_rounds":99'))
    reply, reached = _train(context, job.to_json(), path.read_text(), 2)  # both copies edited
    assert reached == [] and "does not verify" in (reply.error.reason or "")
    assert _record(home) == before


def test_a_revocation_mid_job_is_refused(tmp_path: Path) -> None:
    home, context, job, agreement = _started(tmp_path)
    before = _record(home)
    NodeHome(home).revoke("agr-1", "2026-11-27T00:00:00Z", "consent withdrawn")
    reply, reached = _train(context, job.to_json(), agreement, 2)
    assert reached == [] and "revoked" in (reply.error.reason or "")
    assert _record(home) == before


def test_a_remembered_verification_is_only_for_the_same_bytes() -> None:
    key, other = keys.new_private_key(), keys.new_private_key()
    public = keys.public_key_b64(key)
    signature = keys.sign(key, b"job")
    assert keys.verify(public, b"job", signature)
    assert keys.verify(public, b"job", signature)  # remembered, same answer
    assert not keys.verify(public, b"jot", signature)
    assert not keys.verify(keys.public_key_b64(other), b"job", signature)
    assert not keys.verify(public, b"job", keys.sign(other, b"job"))
    assert keys.verify(public, bytearray(b"job"), signature)  # unhashable: checked directly
