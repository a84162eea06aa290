"""Every job kind starts the same way: an active project, and a member of it starting it."""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRow, LedgerEntryRow
from kumiai.domain.errors import InvalidInput, StateError
from kumiai.domain.training import TrainingSettings
from kumiai.services import members, projects, training
from kumiai.services.consortium import Consortium
from kumiai.services.projects import job_starter
from tests.services.helpers import heart_consortium


def _counts(consortium: Consortium) -> tuple[int, int]:
    with transaction(consortium.sessions) as session:
        jobs = session.scalar(select(func.count()).select_from(JobRow))
        entries = session.scalar(select(func.count()).select_from(LedgerEntryRow))
    return int(jobs or 0), int(entries or 0)


def test_the_proposer_starts_by_default_and_an_outsider_never(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", sign=())
    members.add_member(consortium, "outsider", "company")
    with transaction(consortium.sessions) as session:
        row, by = job_starter(session, "heart", None)
        assert (row.name, by) == ("heart", row.proposed_by)
        with pytest.raises(InvalidInput, match="'outsider' is not a member of project 'heart'"):
            job_starter(session, "heart", "outsider")


def test_a_job_started_by_an_outsider_or_on_a_closed_project_writes_nothing(
    tmp_path: Path,
) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", sign=())
    members.add_member(consortium, "outsider", "company")
    before = _counts(consortium)
    with pytest.raises(InvalidInput, match="only its members start jobs"):
        training.train(consortium, "heart", TrainingSettings(rounds=1), by="outsider")
    assert _counts(consortium) == before
    with transaction(consortium.sessions) as session:
        lead = job_starter(session, "heart", None)[1]
    projects.close_project(consortium, "heart", closed_by=lead)
    closed = _counts(consortium)
    with pytest.raises(StateError):
        training.train(consortium, "heart", TrainingSettings(rounds=1))
    assert _counts(consortium) == closed
