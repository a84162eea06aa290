"""Rules every message after admission must pass: played as a lying coordinator would."""

from dataclasses import replace

import pytest

from kumiai.domain.admission import (
    Admitted,
    Request,
    StageRequest,
    after_reply,
    check_request,
    check_secure_stage,
)
from kumiai.domain.job import sign_job
from tests.conftest import COORDINATOR_KEY, make_signed_job

RUN = 7


def admitted(**changes: object) -> Admitted:
    return Admitted(job=make_signed_job(epsilon=1.0, **changes), dataset="cleveland-heart", run=RUN)


def train(server_round: int = 1, **changes: object) -> Request:
    return Request(operation="train", server_round=server_round, secure=True, **changes)  # type: ignore[arg-type]


def test_the_admitted_document_passes() -> None:
    record = admitted()
    assert check_request(record, record.job, RUN, train()).allowed


def test_a_message_from_another_run_is_a_replay() -> None:
    record = admitted()
    decision = check_request(record, record.job, RUN + 1, train())
    assert not decision.allowed and "run 7" in decision.reason and "run 8" in decision.reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"epsilon": None, "noise_multiplier": None}, "settings.epsilon"),
        ({"noise_multiplier": 0.3}, "settings.noise_multiplier"),
        ({"clipping_norm": 10.0}, "settings.clipping_norm"),
        ({"local_epochs": 5}, "settings.local_epochs"),
        ({"rounds": 9}, "settings.rounds"),
        ({"secure_aggregation": False}, "settings.secure_aggregation"),
        ({"model": "mlp"}, "settings.model"),
        ({"hidden_units": 64}, "settings.hidden_units"),
        ({"positive_weight": 20.0}, "settings.positive_weight"),
    ],
)
def test_a_validly_signed_but_different_document_is_refused_with_the_field_named(
    change: dict, field: str
) -> None:
    """Even the coordinator's own signature cannot change a job once a node admitted it."""
    record = admitted()
    doc = record.job.document
    other = sign_job(replace(doc, settings=replace(doc.settings, **change)), COORDINATOR_KEY)
    decision = check_request(record, other, RUN, train())
    assert not decision.allowed and field in decision.reason


def test_another_jobs_document_is_refused() -> None:
    record = admitted()
    decision = check_request(record, make_signed_job(epsilon=1.0, job_id="job-2"), RUN, train())
    assert not decision.allowed and "job_id" in decision.reason


def test_rounds_are_trained_once_and_in_order() -> None:
    record = admitted()
    assert check_request(record, record.job, RUN, train(1)).allowed
    record = after_reply(record, train(1))
    assert record.trained == 1
    replay = check_request(record, record.job, RUN, train(1))
    assert not replay.allowed and "trained round 1 last" in replay.reason
    skip = check_request(record, record.job, RUN, train(3))
    assert not skip.allowed
    assert check_request(record, record.job, RUN, train(2)).allowed


def test_no_round_beyond_the_document() -> None:
    record = replace(admitted(), trained=5)
    decision = check_request(record, record.job, RUN, train(6))
    assert not decision.allowed and "outside the job's 5 rounds" in decision.reason


def test_a_plain_update_is_refused_when_the_document_promises_secure_aggregation() -> None:
    record = admitted()
    decision = check_request(record, record.job, RUN, replace(train(), secure=False))
    assert not decision.allowed and "plain (unmasked) update" in decision.reason


def test_a_secure_round_is_refused_for_a_plain_job() -> None:
    record = admitted(secure_aggregation=False)
    decision = check_request(record, record.job, RUN, train())
    assert not decision.allowed and "secure_aggregation" in decision.reason


def test_strategy_values_in_the_config_must_match_the_document() -> None:
    record = admitted()
    mu = check_request(record, record.job, RUN, replace(train(), proximal_mu=0.5))
    assert not mu.allowed and "settings.proximal_mu" in mu.reason
    clip = check_request(record, record.job, RUN, replace(train(), clipping_norm=50.0))
    assert not clip.allowed and "settings.clipping_norm" in clip.reason
    same = check_request(record, record.job, RUN, replace(train(), clipping_norm=1.0))
    assert same.allowed


def test_summaries_leave_once_and_each_round_is_evaluated_once() -> None:
    record = admitted()
    stats = Request(operation="statistics", server_round=0)
    record = after_reply(record, stats)
    again = check_request(record, record.job, RUN, stats)
    assert not again.allowed and "once per job" in again.reason
    evaluate = Request(operation="evaluate", server_round=1)
    record = after_reply(record, evaluate)
    twice = check_request(record, record.job, RUN, evaluate)
    assert not twice.allowed and "already evaluated" in twice.reason


def test_the_feature_plan_is_pinned_by_the_first_round() -> None:
    record = after_reply(admitted(), replace(train(), plan="a" * 64))
    decision = check_request(record, record.job, RUN, replace(train(2), plan="b" * 64))
    assert not decision.allowed and "feature plan" in decision.reason


def test_admitted_records_survive_their_file_form() -> None:
    record = replace(admitted(), trained=3, evaluated=2, summarised=True, plan="c" * 64)
    assert Admitted.from_doc(record.to_doc()) == record


# -- SecAgg+ stage messages -------------------------------------------------------------
def test_a_stage_message_without_an_admitted_job_is_refused() -> None:
    decision = check_secure_stage(None, RUN, StageRequest("share_keys"))
    assert not decision.allowed and "no job was admitted in this run" in decision.reason


def test_a_stage_message_from_another_run_is_refused() -> None:
    decision = check_secure_stage(admitted(), RUN + 1, StageRequest("unmask"))
    assert not decision.allowed


def test_a_stage_message_for_a_plain_job_is_refused() -> None:
    decision = check_secure_stage(admitted(secure_aggregation=False), RUN, StageRequest("unmask"))
    assert not decision.allowed and "plain aggregation" in decision.reason


@pytest.mark.parametrize(
    ("sample", "share", "threshold", "ok"),
    [(2, 2, 2, True), (2, 2, 1, False), (1, 1, 1, False), (3, 3, 2, False), (2, 2, None, False)],
)
def test_a_setup_must_be_a_real_sum_among_the_jobs_datasets(
    sample: int, share: int, threshold: int | None, ok: bool
) -> None:
    """Two datasets in the job: three participants, or a threshold of one, is a lie."""
    request = StageRequest("setup", sample, share, threshold)
    assert check_secure_stage(admitted(), RUN, request).allowed is ok


# -- one message per round: a train message that also evaluates the model it brings -------


def test_a_train_message_may_evaluate_the_previous_rounds_model_once() -> None:
    record = replace(admitted(), trained=2, evaluated=1)
    asks = train(3, evaluates=2)
    assert check_request(record, record.job, RUN, asks).allowed
    after = after_reply(record, asks)
    assert (after.trained, after.evaluated) == (3, 2)
    # the same scores asked again, as a plain evaluation or inside the next round's training
    again = Request(operation="evaluate", server_round=2)
    decision = check_request(after, after.job, RUN, again)
    assert not decision.allowed and "round 2 was already evaluated" in decision.reason
    decision = check_request(after, after.job, RUN, train(4, evaluates=2))
    assert not decision.allowed and "may evaluate only round 3's model" in decision.reason


@pytest.mark.parametrize(
    ("evaluates", "said"),
    [
        (1, "may evaluate only round 2's model, not round 1's"),  # an older model
        (3, "may evaluate only round 2's model, not round 3's"),  # its own output
        (-1, "not round -1's"),  # a garbled value
    ],
)
def test_a_train_message_evaluating_another_round_is_refused(evaluates: int, said: str) -> None:
    record = replace(admitted(), trained=2, evaluated=0)
    decision = check_request(record, record.job, RUN, train(3, evaluates=evaluates))
    assert not decision.allowed and said in decision.reason


def test_an_evaluated_round_cannot_be_scored_again_inside_training() -> None:
    record = replace(admitted(), trained=2, evaluated=2)
    decision = check_request(record, record.job, RUN, train(3, evaluates=2))
    assert not decision.allowed and "round 2 was already evaluated (last: 2)" in decision.reason


def test_only_a_train_message_carries_an_evaluation() -> None:
    record = replace(admitted(), trained=2, evaluated=0)
    asks = Request(operation="evaluate", server_round=2, evaluates=1)
    decision = check_request(record, record.job, RUN, asks)
    assert not decision.allowed and "only a train message" in decision.reason
