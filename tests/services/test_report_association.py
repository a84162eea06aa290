"""The report over an association built by the real services: themes, funds, spend,
milestones (A), spin-outs, licences, revenue and royalties (B). Each figure the report
computes from the ledger must equal what those services keep in their own tables."""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from kumiai.domain.figures import figures
from kumiai.services import funds, milestones, royalties, spend, themes
from kumiai.services.consortium import Consortium
from kumiai.services.report import consortium_report, report_from_export
from kumiai.services.transparency import export_ledger
from tests.services.reported import DAY, build_association


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    root = tmp_path_factory.mktemp("association-report")
    return build_association(root / "c", root)


def fig(doc: dict[str, Any], fid: str) -> Any:
    return figures(doc)[fid]["value"]


HEART = "themes/medical/projects/heart"


def test_the_report_agrees_with_the_association_services(built: Consortium) -> None:
    doc = consortium_report(built, "board", on=DAY)
    book = funds.list_funds(built)
    assert fig(doc, "funds/received") == book.received_yen == 15_000_001
    assert fig(doc, "funds/allocated") == book.allocated_yen == 4_500_000
    assert fig(doc, "funds/unallocated") == book.unallocated_yen
    budget = spend.project_budget(built, "heart")
    assert fig(doc, f"{HEART}/budget/allocated") == budget.allocated_yen
    assert fig(doc, f"{HEART}/budget/actual") == budget.total_spent_yen == 1_900_000
    assert fig(doc, f"{HEART}/budget/remaining") == budget.left_yen
    for category, yen in budget.spent_yen.items():
        assert fig(doc, f"{HEART}/budget/by_category/{category}") == yen
    assert fig(doc, f"{HEART}/compute/quota_site_rounds") == budget.compute.site_rounds == 90

    states = {m["milestone"]: m["status"] for m in doc["themes"][1]["projects"][0]["milestones"]}
    assert states == {"first-model": "accepted", "paper": "late", "trial": "on-time"}
    listed = {m.name: m for m in milestones.list_milestones(built, "heart", DAY)}
    assert listed["paper"].late and not listed["trial"].late

    assert [t["theme"] for t in doc["themes"]] == [t.name for t in themes.list_themes(built)]

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


SOURCES = {
    "yen": {
        "funds.received",
        "funds.allocated",
        "spend.recorded",
        "revenue.reported",
        "royalties.distributed",
        "model.contributions",  # the shares a payout was split by
    },
    "count": {"milestone.set", "milestone.evidence", "milestone.accepted", "milestone.rejected"},
    "site-rounds": {"funds.allocated", "round.completed"},
    "epsilon": {"round.completed", "privacy.recovered"},
    "share": {"model.contributions", "dataset.registered"},
    "metric": {"model.released"},
}


def test_an_auditor_finds_every_citation_in_the_export(built: Consortium, tmp_path: Path) -> None:
    """Each cited seq is an entry of the export, of a kind that can state that figure, and
    the appendix's leaf hash is the export's leaf, hashed as RFC 6962 does."""
    export = tmp_path / "ledger.jsonl"
    export_ledger(built, export)
    leaves = [
        json.loads(line)["leaf"]
        for line in export.read_text().splitlines()
        if json.loads(line).get("record") == "entry"
    ]
    doc = report_from_export(export, "board", on=DAY)
    kinds = {a["seq"]: a["kind"] for a in doc["appendix"]}
    for fid, figure in figures(doc).items():
        assert {kinds[s] for s in figure["cites"]} <= SOURCES[figure["unit"]], fid
    for cited in doc["appendix"]:
        leaf = leaves[cited["seq"]]
        assert json.loads(leaf)["entry"]["kind"] == cited["kind"]
        assert hashlib.sha256(b"\x00" + leaf.encode()).hexdigest() == cited["leaf_hash"]
