"""Secure aggregation (Flower SecAgg+) on by default: what the coordinator can and cannot see."""

from pathlib import Path

import numpy as np
import pytest
from flwr.app import Context, Message, MessageType
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import bytes_to_ndarray
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage

from kumiai.domain.errors import JobFailed
from kumiai.domain.training import TrainingSettings
from kumiai.services.agreements import list_agreements, revoke_agreement
from kumiai.services.jobs import job_detail
from kumiai.services.models import list_models, load_model
from kumiai.services.training import RoundReport, train
from tests.services.helpers import heart_consortium

pytestmark = pytest.mark.simulation

SETTINGS = TrainingSettings(strategy="fedavg", rounds=3, learning_rate=0.05)


def test_the_coordinator_never_holds_an_individual_update(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", plain_aggregation=True)
    replies: list[Message] = []
    secure = train(consortium, "heart", SETTINGS, reply_hook=replies.append)

    training = [r for r in replies if r.metadata.message_type == MessageType.TRAIN]
    assert training, "no training replies were observed"
    assert all(not r.has_error() for r in training)
    # Not one array of parameters reached the coordinator in any stage of any round...
    assert sum(len(a) for r in training for a in r.content.array_records.values()) == 0
    vectors = [
        [bytes_to_ndarray(b) for b in r.content.config_records[RECORD_KEY_CONFIGS][key]]
        for r in training
        for key in [Key.MASKED_PARAMETERS]
        if key in r.content.config_records[RECORD_KEY_CONFIGS]
    ]
    assert len(vectors) == 3 * 3  # three nodes, three rounds: one masked vector each
    # ...only masked vectors: uniform noise modulo 2^32. A quantised update would sit near
    # 2^22 / 2^32 ≈ 0.001 of the modulus; masked values average half of it.
    values = np.concatenate([a.ravel() for vector in vectors for a in vector]).astype(np.float64)
    assert abs(values.mean() / 2**32 - 0.5) < 0.1

    # The sum is the same as plain aggregation's, up to SecAgg+'s quantisation.
    plain = train(
        consortium, "heart", TrainingSettings(**{**SETTINGS.__dict__, "secure_aggregation": False})
    )
    secure_model = load_model(consortium, secure.model_id)[1]
    plain_model = load_model(consortium, plain.model_id)[1]
    difference = max(
        float(np.abs(a - b).max())
        for a, b in zip(secure_model.arrays, plain_model.arrays, strict=True)
    )
    assert difference < 1e-3
    assert secure.overall["accuracy"] == pytest.approx(plain.overall["accuracy"], abs=0.01)


def test_plain_aggregation_is_refused_unless_every_agreement_allows_it(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c")
    with pytest.raises(JobFailed, match="requires secure aggregation"):
        train(
            consortium,
            "heart",
            TrainingSettings(**{**SETTINGS.__dict__, "secure_aggregation": False}),
        )
    assert list_models(consortium) == []


class _RevokeAfterFirstRound:
    """A progress listener that withdraws cleveland's consent once round 1 is recorded."""

    def __init__(self, consortium, agreement_id: str) -> None:  # type: ignore[no-untyped-def]
        self.consortium, self.agreement_id = consortium, agreement_id

    def admitted(self, job_id: str, sites: list[str], refused: dict[str, str]) -> None:
        pass

    def refused(self, dataset: str, reason: str, server_round: int) -> None:
        pass

    def round_done(self, report: RoundReport) -> None:
        if report.round == 1:
            revoke_agreement(self.consortium, self.agreement_id, "consent withdrawn mid-job")


def test_a_node_that_leaves_after_key_sharing_does_not_stop_the_round(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c")
    cleveland = next(a for a in list_agreements(consortium) if a.steward == "cleveland-clinic")
    outcome = train(consortium, "heart", SETTINGS, _RevokeAfterFirstRound(consortium, cleveland.id))
    # Round 2: cleveland's guard refuses at the masked-vector stage, after the key exchange;
    # SecAgg+ reconstructs the others' sum and the job completes all its rounds.
    assert outcome.rounds == 3
    assert sorted(outcome.sites) == ["hungarian-cardiology-heart", "va-long-beach-heart"]
    assert "was revoked" in outcome.refused["cleveland-clinic-heart"]
    job = job_detail(consortium, outcome.job_id)
    assert job.status == "completed"
    status = {s.dataset: s.status for s in job.sites}
    assert status["cleveland-clinic-heart"] == "left"


def _drop_at_setup(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Two of the three nodes crash when the SecAgg+ key setup begins."""
    configs = message.content.config_records.get(RECORD_KEY_CONFIGS)
    if (
        configs is not None
        and configs.get(Key.STAGE) == Stage.SETUP
        and int(context.node_config["partition-id"]) in (0, 1)
    ):
        raise RuntimeError("node crashed before key sharing")
    return call_next(message, context)


def test_a_drop_before_key_sharing_fails_the_job_clearly(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c")
    with pytest.raises(JobFailed) as failure:
        train(consortium, "heart", SETTINGS, node_mods=[_drop_at_setup])
    message = str(failure.value)
    assert "round 1 at the secure-aggregation stage 'setup'" in message
    assert "no model was released" in message and "node crashed before key sharing" in message
    assert "Traceback" not in message and len(message) < 600
    assert list_models(consortium) == []


def _va_dies_at_setup_of_round_2(
    message: Message, context: Context, call_next: ClientAppCallable
) -> Message:
    """va-long-beach's node dies when round 2's SecAgg+ setup begins: before key sharing."""
    configs = message.content.config_records.get(RECORD_KEY_CONFIGS)
    if (
        configs is not None
        and configs.get(Key.STAGE) == Stage.SETUP
        and message.metadata.group_id == "2"
        and int(context.node_config["partition-id"]) == 2
    ):
        raise RuntimeError("node killed before key sharing")
    return call_next(message, context)


def test_a_drop_before_key_sharing_leaves_the_others_to_finish(tmp_path: Path) -> None:
    """Flower's SecAgg+ counted a node that died before sharing its keys as a dropout to
    unmask: the others were asked for shares they never received (a bare KeyError at
    unmasking). It owes no mask, so the round goes on with the ones that shared keys."""
    consortium, _ = heart_consortium(tmp_path / "c")
    outcome = train(consortium, "heart", SETTINGS, node_mods=[_va_dies_at_setup_of_round_2])
    assert outcome.rounds == 3
    assert sorted(outcome.sites) == ["cleveland-clinic-heart", "hungarian-cardiology-heart"]
    assert "node killed before key sharing" in outcome.refused["va-long-beach-heart"]
    job = job_detail(consortium, outcome.job_id)
    assert job.status == "completed" and job.completed_rounds == 3
    assert {s.dataset: s.status for s in job.sites}["va-long-beach-heart"] == "left"
