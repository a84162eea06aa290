"""The report over an association built by the real services: spin-outs, licences, revenue
and royalties. Each figure the report computes from the ledger must equal what those
services keep in their own tables."""

from pathlib import Path
from typing import Any

import pytest

from kumiai.domain.report import figures
from kumiai.services import royalties
from kumiai.services.consortium import Consortium
from kumiai.services.report import consortium_report, report_from_export
from kumiai.services.transparency import export_ledger
from tests.services.reported import DAY, build_association


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return build_association(tmp_path_factory.mktemp("association-report") / "c")


def fig(doc: dict[str, Any], fid: str) -> Any:
    return figures(doc)[fid]["value"]


HEART = "themes/unthemed/projects/heart"


def test_the_report_agrees_with_the_royalty_services(built: Consortium) -> None:
    doc = consortium_report(built, "board", on=DAY)
    statements = royalties.statements(built)
    lic = f"{HEART}/licences/licence-1"
    assert fig(doc, f"{lic}/revenue_yen") == statements.revenue_yen == 13_345_679
    assert fig(doc, f"{lic}/royalty_yen") == statements.royalty_yen
    assert fig(doc, f"{lic}/association_yen") == statements.association_yen
    for statement in statements.statements:
        for line in statement.lines:
            payout = f"{lic}/periods/{line.period}/payouts/{statement.member}"
            assert fig(doc, payout) == line.payout_yen
    assert fig(doc, f"{lic}/paid_to_members_yen") == sum(s.total_yen for s in statements.statements)
    [spinout] = doc["spinouts"]
    assert (spinout["spinout"], spinout["project"]) == ("kokoro-ai", "heart")

    mine = consortium_report(built, "member", member="cleveland-clinic", on=DAY)
    [own] = royalties.statements(built, "cleveland-clinic").statements
    assert fig(mine, "for_member/payouts_total_yen") == own.total_yen > 0


def test_offline_from_the_export_is_the_same(built: Consortium, tmp_path: Path) -> None:
    export = tmp_path / "ledger.jsonl"
    export_ledger(built, export)
    for audience in ("investor", "board"):
        assert report_from_export(export, audience, on=DAY) == consortium_report(
            built, audience, on=DAY
        )
