"""The one job document: signed by the coordinator, strict to parse, compared field by field."""

import json
from dataclasses import replace

import pytest

from kumiai.domain import keys
from kumiai.domain.errors import InvalidInput
from kumiai.domain.job import SignedJob, differing_fields, job_signature_is_valid, sign_job
from tests.conftest import COORDINATOR_KEY, COORDINATOR_PUBLIC, make_job, make_signed_job


def test_a_signed_job_verifies_with_the_coordinator_key_and_survives_json() -> None:
    job = make_signed_job(epsilon=1.0)
    again = SignedJob.from_json(job.to_json())
    assert again == job
    assert job_signature_is_valid(again, COORDINATOR_PUBLIC)


def test_another_key_does_not_verify() -> None:
    job = make_signed_job(key=keys.new_private_key())
    assert not job_signature_is_valid(job, COORDINATOR_PUBLIC)


@pytest.mark.parametrize(
    "change",
    [
        {"rounds": 50},
        {"epsilon": None},
        {"secure_aggregation": False},
    ],
)
def test_a_document_changed_after_signing_no_longer_verifies(change: dict) -> None:
    job = make_signed_job(epsilon=1.0)
    settings = replace(job.document.settings, **change)
    forged = SignedJob(replace(job.document, settings=settings), job.signature)
    assert not job_signature_is_valid(forged, COORDINATOR_PUBLIC)


def test_differing_fields_names_every_changed_setting() -> None:
    admitted = make_job(epsilon=1.0)
    presented = replace(
        admitted,
        settings=replace(admitted.settings, epsilon=None, clipping_norm=5.0, local_epochs=3),
    )
    assert differing_fields(admitted, presented) == [
        "settings.clipping_norm",
        "settings.epsilon",
        "settings.local_epochs",
    ]
    assert differing_fields(admitted, admitted) == []


def test_an_unknown_field_or_setting_is_refused_not_ignored() -> None:
    doc = json.loads(make_signed_job().to_json())
    doc["job"]["settings"]["skip_noise"] = True
    with pytest.raises(InvalidInput, match="unknown setting"):
        SignedJob.from_json(json.dumps(doc))
    doc = json.loads(make_signed_job().to_json())
    doc["job"]["plain_update"] = True
    with pytest.raises(InvalidInput, match="unknown field"):
        SignedJob.from_json(json.dumps(doc))


def test_invalid_settings_inside_a_document_are_named() -> None:
    doc = json.loads(make_signed_job().to_json())
    doc["job"]["settings"]["rounds"] = 0
    with pytest.raises(InvalidInput, match="rounds must be at least 1"):
        SignedJob.from_json(json.dumps(doc))


@pytest.mark.parametrize("text", ["", "[]", '{"type": "kumiai.signed-job", "version": 9}', "{"])
def test_malformed_documents_are_clear_errors(text: str) -> None:
    with pytest.raises(InvalidInput, match="malformed"):
        SignedJob.from_json(text)


def test_signing_is_deterministic_over_the_canonical_form() -> None:
    a = sign_job(make_job(), COORDINATOR_KEY)
    b = sign_job(make_job(), COORDINATOR_KEY)
    assert a.signature == b.signature and a.signed_bytes() == b.signed_bytes()
