"""The node's policy check, as a pure function: every refusal path and the one way through."""

from dataclasses import replace
from datetime import timedelta

import pytest

from kumiai.domain import keys
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.errors import InvalidInput
from kumiai.domain.job import JobKind
from kumiai.domain.policy import check_job
from tests.conftest import COORDINATOR_PUBLIC, NOW, make_signed_job, make_terms, signed


def decide(
    key,
    agreement,
    *,
    job=None,
    operation="train",
    server_round=1,
    revoked=(),
    now=NOW,
    dataset="cleveland-heart",
    steward="cleveland",
):
    return check_job(
        job=job or make_signed_job(),
        coordinator_key=COORDINATOR_PUBLIC,
        operation=operation,
        server_round=server_round,
        dataset=dataset,
        steward=steward,
        steward_public_keys=(keys.public_key_b64(key),),
        agreement=agreement,
        revoked=frozenset(revoked),
        now=now,
    )


def test_a_signed_matching_agreement_is_allowed(steward_key) -> None:
    decision = decide(steward_key, signed(steward_key))
    assert decision.allowed, decision.reason
    assert "agr-1" in decision.reason


@pytest.mark.parametrize("operation", ["statistics", "train", "evaluate"])
def test_a_training_job_may_summarise_train_and_evaluate(steward_key, operation) -> None:
    assert decide(steward_key, signed(steward_key), operation=operation).allowed


def test_no_agreement_is_refused(steward_key) -> None:
    decision = decide(steward_key, None)
    assert not decision.allowed
    assert "no signed agreement" in decision.reason and "job-1" in decision.reason


def test_an_unsigned_agreement_is_refused(steward_key) -> None:
    unsigned = SignedAgreement(make_terms(), signature="", key_fingerprint="")
    decision = decide(steward_key, unsigned)
    assert not decision.allowed and "unsigned" in decision.reason


def test_an_agreement_signed_by_another_key_is_refused(steward_key) -> None:
    forged = signed(keys.new_private_key())
    decision = decide(steward_key, forged)
    assert not decision.allowed and "does not verify" in decision.reason


def test_terms_changed_after_signing_are_refused(steward_key) -> None:
    original = signed(steward_key)
    widened = replace(original, terms=replace(original.terms, max_rounds=1000))
    assert not decide(steward_key, widened).allowed


def test_an_expired_agreement_is_refused(steward_key) -> None:
    decision = decide(steward_key, signed(steward_key), now=NOW + timedelta(days=31))
    assert not decision.allowed and "expired" in decision.reason


def test_a_revoked_agreement_is_refused(steward_key) -> None:
    decision = decide(steward_key, signed(steward_key), revoked={"agr-1"})
    assert not decision.allowed and "revoked" in decision.reason


def test_an_agreement_for_another_project_is_refused(steward_key) -> None:
    decision = decide(steward_key, signed(steward_key, project="oncology"))
    assert not decision.allowed and "'oncology'" in decision.reason


def test_an_agreement_for_another_dataset_is_refused(steward_key) -> None:
    decision = decide(steward_key, signed(steward_key, dataset="other-data"))
    assert not decision.allowed and "other-data" in decision.reason


def test_an_agreement_for_another_purpose_is_refused(steward_key) -> None:
    decision = decide(steward_key, signed(steward_key, purpose="marketing"))
    assert not decision.allowed and "purpose" in decision.reason


def test_a_job_kind_the_agreement_does_not_allow_is_refused(steward_key) -> None:
    stats_only = signed(steward_key, job_kinds=(JobKind.STATISTICS,))
    decision = decide(steward_key, stats_only)
    assert not decision.allowed and "job kinds [statistics]" in decision.reason


def test_an_evaluation_job_cannot_ask_for_training(steward_key) -> None:
    job = make_signed_job(kind=JobKind.EVALUATE)
    decision = decide(steward_key, signed(steward_key), job=job, operation="train")
    assert not decision.allowed and "may not ask for 'train'" in decision.reason


def test_a_job_planning_more_rounds_than_allowed_is_refused(steward_key) -> None:
    decision = decide(steward_key, signed(steward_key), job=make_signed_job(rounds=11))
    assert not decision.allowed and "at most 10" in decision.reason


def test_a_round_beyond_the_limit_is_refused(steward_key) -> None:
    decision = decide(steward_key, signed(steward_key), server_round=11)
    assert not decision.allowed and "round 11" in decision.reason


def test_a_job_not_naming_the_nodes_dataset_is_refused(steward_key) -> None:
    decision = decide(steward_key, signed(steward_key), job=make_signed_job(datasets=("x",)))
    assert not decision.allowed


def test_an_agreement_of_another_steward_is_refused(steward_key) -> None:
    decision = decide(steward_key, signed(steward_key, steward="hungary"))
    assert not decision.allowed and "belongs to 'hungary'" in decision.reason


def test_signed_agreements_survive_a_json_round_trip(steward_key) -> None:
    agreement = signed(steward_key)
    again = SignedAgreement.from_json(agreement.to_json())
    assert again == agreement
    assert decide(steward_key, again).allowed


def test_a_malformed_agreement_document_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="malformed"):
        SignedAgreement.from_json('{"payload": {"type": "something-else"}}')


def test_an_agreement_signed_before_a_key_rotation_stays_valid(steward_key) -> None:
    agreement = signed(steward_key)
    decision = check_job(
        job=make_signed_job(),
        coordinator_key=COORDINATOR_PUBLIC,
        operation="train",
        server_round=1,
        dataset="cleveland-heart",
        steward="cleveland",
        steward_public_keys=(
            keys.public_key_b64(keys.new_private_key()),
            keys.public_key_b64(steward_key),
        ),
        agreement=agreement,
        revoked=frozenset(),
        now=NOW,
    )
    assert decision.allowed
