"""A coordinator that drops the tail of its log with a node's refusal is caught (simulation)."""

from pathlib import Path

import pytest
from sqlalchemy import delete, select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import CosignatureRow, LedgerEntryRow, TreeHeadRow
from kumiai.domain.training import TrainingSettings
from kumiai.services.consortium import open_consortium
from kumiai.services.training import train
from kumiai.services.transparency import witness_all
from tests.services.helpers import HOSPITALS, heart_consortium

pytestmark = pytest.mark.simulation


def test_a_refusal_erased_from_the_ledger_is_named_by_the_refusing_node(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", sign=HOSPITALS[:2])  # the third refuses
    outcome = train(consortium, "heart", TrainingSettings(rounds=1))
    refuser = HOSPITALS[2]
    assert f"{refuser}-heart" in outcome.refused
    copies = consortium.member_home(refuser) / "refusals"
    assert len(list(copies.glob("*.json"))) == 1  # the node's own signed copy

    # Before any witness saw it, the coordinator drops the refusal and everything after it.
    with transaction(consortium.sessions) as session:
        cut = session.scalar(select(LedgerEntryRow.seq).where(LedgerEntryRow.kind == "job.refused"))
        session.execute(delete(CosignatureRow).where(CosignatureRow.size > cut))
        session.execute(delete(TreeHeadRow).where(TreeHeadRow.size > cut))
        session.execute(delete(LedgerEntryRow).where(LedgerEntryRow.seq >= cut))

    verdicts = witness_all(open_consortium(consortium.home))
    assert not verdicts[refuser].accepted
    assert "does not hold this node's refusal of job" in verdicts[refuser].reason
    assert verdicts[HOSPITALS[0]].accepted  # the others had nothing erased


def test_a_witnessed_refusal_is_part_of_history(tmp_path: Path) -> None:
    """Once the refusing node cosigned a head holding its refusal, erasing it is a fork."""
    consortium, _ = heart_consortium(tmp_path / "c", sign=HOSPITALS[:2])
    train(consortium, "heart", TrainingSettings(rounds=1))
    refuser = HOSPITALS[2]
    assert witness_all(consortium)[refuser].accepted
    home = consortium.member_home(refuser)
    assert list((home / "refusals").glob("*.json")) == []
    assert len(list((home / "refusals" / "witnessed").glob("*.json"))) == 1
