"""A node trains only a model family it knows: an unknown one is refused with its name."""

import json
from pathlib import Path

from kumiai.adapters.flower import protocol
from kumiai.domain import keys
from kumiai.domain.agreement import sign_agreement
from kumiai.domain.canonical import canonical_json
from kumiai.domain.job import JOB_VERSION, SIGNED_JOB_TYPE
from tests.conftest import COORDINATOR_KEY, make_signed_job, make_terms
from tests.node.test_guard_mod import FAR, _config, _context, _message, _node, _run


def _job_naming(model: str) -> str:
    """A job document the coordinator really signed, whose settings name `model`."""
    payload = json.loads(make_signed_job().to_json())["job"]
    payload["settings"]["model"] = model
    signature = keys.sign(COORDINATOR_KEY, canonical_json(payload))
    doc = {"type": SIGNED_JOB_TYPE, "version": JOB_VERSION, "job": payload, "signature": signature}
    return canonical_json(doc).decode()


def _agreements(key) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"cleveland-heart": sign_agreement(make_terms(expires_at=FAR), key).to_json()}


def test_a_signed_job_naming_an_unknown_family_never_reaches_the_app(tmp_path: Path) -> None:
    home, key = _node(tmp_path)
    config = {**_config(_agreements(key)), protocol.JOB: _job_naming("xgboost")}
    reply, reached = _run(_message(config), _context(home))
    assert reached == [] and reply.has_error()
    assert reply.error.code == protocol.REFUSED
    reason = reply.error.reason or ""
    assert "model family 'xgboost' is not known; use one of: logistic, mlp" in reason
    assert not (home / "jobs").exists() or not any((home / "jobs").iterdir())  # nothing admitted


def test_a_known_family_named_the_same_way_is_admitted(tmp_path: Path) -> None:
    home, key = _node(tmp_path)
    config = {**_config(_agreements(key)), protocol.JOB: _job_naming("mlp")}
    reply, reached = _run(_message(config), _context(home))
    assert len(reached) == 1 and not reply.has_error()
