"""Shared fixtures: key pairs, agreements and small consortia built through the services."""

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"

from kumiai.domain import keys
from kumiai.domain.agreement import AgreementTerms, SignedAgreement, sign_agreement
from kumiai.domain.job import JobDocument, JobKind, SignedJob, sign_job
from kumiai.domain.training import TrainingSettings

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_consoles() -> Iterator[None]:
    """The CLI's Rich consoles are made on first use and kept; each test gets new ones, sized
    by its own environment (its `COLUMNS`), not by whichever test ran first in this worker."""
    from kumiai.interfaces.cli.context import _consoles

    _consoles.cache_clear()
    yield
    _consoles.cache_clear()


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


COORDINATOR_KEY = keys.new_private_key()  # the coordinator key the test nodes pin
COORDINATOR_PUBLIC = keys.public_key_b64(COORDINATOR_KEY)


def make_job(
    *,
    rounds: int = 5,
    private: bool = False,
    epsilon: float | None = None,
    secure_aggregation: bool = True,
    settings: TrainingSettings | None = None,
    **changes: object,
) -> JobDocument:
    """A job document; `private` without `epsilon` means a fixed σ of 1."""
    if settings is None:
        settings = TrainingSettings(
            rounds=rounds,
            epsilon=epsilon,
            noise_multiplier=1.0 if private and epsilon is None else None,
            secure_aggregation=secure_aggregation,
        )
    values: dict[str, object] = {
        "job_id": "job-1",
        "project": "heart",
        "purpose": "diagnosis support",
        "kind": JobKind.TRAIN,
        "datasets": ("cleveland-heart", "hungary-heart"),
        "settings": settings,
        "agreements": {"cleveland-heart": "agr-1", "hungary-heart": "agr-2"},
        "issued_at": NOW,
    }
    values.update(changes)
    return JobDocument(**values)  # type: ignore[arg-type]


def make_signed_job(key=COORDINATOR_KEY, **changes: object) -> SignedJob:  # type: ignore[no-untyped-def]
    return sign_job(make_job(**changes), key)  # type: ignore[arg-type]


def signed(key, **changes: object) -> SignedAgreement:  # type: ignore[no-untyped-def]
    return sign_agreement(make_terms(**changes), key)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "consortium"


@pytest.fixture(scope="session")
def postgres_server():  # type: ignore[no-untyped-def]
    """One throwaway PostgreSQL server for the whole run, stopped by its process id."""
    from tests.pgserver import Unavailable, start_server

    try:
        server = start_server()
    except Unavailable as exc:
        yield exc
        return
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test on SQLite and again on a fresh PostgreSQL database.

    When no server can start, the PostgreSQL run is skipped with the reason, which `-ra`
    prints in the summary: never silently.
    """
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        if isinstance(server, Exception):
            pytest.skip(f"PostgreSQL run NOT done: {server}")
        name = server.create_database()
        monkeypatch.setenv("KUMIAI_DATABASE_URL", server.url(name))
        yield str(request.param)
        server.drop_database(name)  # frees the connections the test's engines still hold
        return
    monkeypatch.delenv("KUMIAI_DATABASE_URL", raising=False)
    yield str(request.param)
