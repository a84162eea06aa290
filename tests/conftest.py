"""Shared fixtures: key pairs, agreements and small consortia built through the services."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"

from kumiai.domain import keys
from kumiai.domain.agreement import AgreementTerms, SignedAgreement, sign_agreement
from kumiai.domain.job import JobKind, JobTicket

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def steward_key():  # type: ignore[no-untyped-def]
    return keys.new_private_key()


def make_terms(**changes: object) -> AgreementTerms:
    values: dict[str, object] = {
        "agreement_id": "agr-1",
        "request_id": "req-1",
        "project": "heart",
        "dataset": "cleveland-heart",
        "steward": "cleveland",
        "purpose": "diagnosis support",
        "job_kinds": (JobKind.TRAIN, JobKind.EVALUATE),
        "max_rounds": 10,
        "expires_at": NOW + timedelta(days=30),
        "signed_at": NOW - timedelta(days=1),
    }
    values.update(changes)
    return AgreementTerms(**values)  # type: ignore[arg-type]


def make_ticket(**changes: object) -> JobTicket:
    values: dict[str, object] = {
        "job_id": "job-1",
        "project": "heart",
        "purpose": "diagnosis support",
        "kind": JobKind.TRAIN,
        "datasets": ("cleveland-heart", "hungary-heart"),
        "rounds": 5,
    }
    values.update(changes)
    return JobTicket(**values)  # type: ignore[arg-type]


def signed(key, **changes: object) -> SignedAgreement:  # type: ignore[no-untyped-def]
    return sign_agreement(make_terms(**changes), key)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "consortium"
