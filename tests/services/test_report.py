"""The report service: it reads the ledger as an auditor does and refuses one that fails."""

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import LedgerEntryRow
from kumiai.domain.errors import StateError
from kumiai.domain.figures import cited, figures
from kumiai.interfaces.reports.html import render_html
from kumiai.interfaces.reports.markdown import render_markdown
from kumiai.services.charter import propose_charter, sign_charter
from kumiai.services.consortium import Consortium
from kumiai.services.motions import cast_vote, close_motion, propose_motion
from kumiai.services.report import consortium_report, report_from_export
from kumiai.services.transparency import export_ledger, member_keys
from tests.services.helpers import HOSPITALS, heart_consortium

DAY = date(2026, 11, 30)
SEATS = sorted(["lab", *HOSPITALS])


@pytest.fixture(scope="module")
def board_consortium(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    home = tmp_path_factory.mktemp("report") / "c"
    consortium, _ = heart_consortium(home, sign=HOSPITALS[:1])
    propose_charter(consortium, proposed_by="lab")
    for member in SEATS:
        sign_charter(consortium, member)
    # A proposer's payload that looks like a figure must stay text, never a citation.
    forged = {"member": "newcomer", "cites": [999], "value": 1, "unit": "yen", "id": "x"}
    first = propose_motion(consortium, decision="admit-member", payload=forged, proposer="lab")
    cast_vote(consortium, first.id, "lab", "yes")
    second = propose_motion(
        consortium, decision="admit-member", payload={"member": "second"}, proposer="lab"
    )
    for member in SEATS:
        cast_vote(consortium, second.id, member, "no" if member == "lab" else "yes")
    close_motion(consortium, second.id)
    return consortium


def entry_count(consortium: Consortium) -> int:
    with transaction(consortium.sessions) as session:
        return session.scalar(select(func.count()).select_from(LedgerEntryRow)) or 0


def test_the_report_of_a_home_is_the_report_of_its_export(
    board_consortium: Consortium, tmp_path: Path
) -> None:
    export = tmp_path / "ledger.jsonl"
    export_ledger(board_consortium, export)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(member_keys(board_consortium)))
    for audience, member in (("investor", None), ("board", None), ("member", "lab")):
        at_home = consortium_report(board_consortium, audience, member=member, on=DAY)
        offline = report_from_export(export, audience, member=member, on=DAY, keys_file=keys)
        assert at_home == offline
    assert at_home["ledger"]["size"] == entry_count(board_consortium)


def test_the_board_sees_every_motion_with_its_votes_and_tally(board_consortium: Consortium) -> None:
    doc = consortium_report(board_consortium, "board", on=DAY)
    first, second = doc["board"]["motions"]
    assert doc["board"]["open"] == 1
    assert first["status"] == "open" and first["votes"] == {"lab": "yes"}
    assert first["tally"]["yes"] == 1 and first["tally"]["quorum_met"] is False
    assert second["status"] == "passed"
    assert (second["tally"]["yes"], second["tally"]["no"]) == (3, 1)
    kinds = {a["seq"]: a["kind"] for a in doc["appendix"]}
    assert [kinds[s] for s in second["cites"]] == [
        "motion.proposed",
        *["motion.voted"] * 4,
        "motion.closed",
    ]
    # The forged payload is text: it cites nothing and adds no figure.
    assert json.loads(first["payload"])["cites"] == [999]
    assert 999 not in cited(doc) and "x" not in figures(doc)
    investor = consortium_report(board_consortium, "investor", on=DAY)
    assert "board" not in investor
    markdown, html = render_markdown(doc), render_html(doc)
    for rendered in (markdown, html):
        assert "motion-1" in rendered and "3 yes of 4 yes and no" in rendered


def test_a_ledger_that_does_not_verify_is_not_reported(
    board_consortium: Consortium, tmp_path: Path
) -> None:
    export = tmp_path / "ledger.jsonl"
    export_ledger(board_consortium, export)
    lines = export.read_text().splitlines()
    # entry 8 is the project's proposal: make its purpose say something else
    lines[9] = lines[9].replace("diagnosis support", "diagnosis sport")
    assert lines[9] != export.read_text().splitlines()[9]
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    with pytest.raises(StateError) as refused:
        report_from_export(tampered, "investor", on=DAY)
    message = str(refused.value)
    assert message.startswith(f"{tampered} does not verify, so no report is made from it:")
    assert "entry 8: signature does not verify" in message
    assert f"see `kumiai ledger verify {tampered}`" in message


def test_a_tampered_database_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=HOSPITALS[:1], sign=())
    before = entry_count(consortium)
    files = sorted(p for p in consortium.home.rglob("*") if p.is_file())
    with transaction(consortium.sessions) as session:
        row = session.get(LedgerEntryRow, 3)
        assert row is not None
        row.leaf = row.leaf.replace('"rows":', '"rows":9', 1)  # 304 rows become 9304
    with pytest.raises(StateError, match="this consortium's ledger does not verify") as refused:
        consortium_report(consortium, "investor", on=DAY)
    assert "entry 3" in str(refused.value)
    assert "see `kumiai ledger verify`" in str(refused.value)
    assert entry_count(consortium) == before
    assert sorted(p for p in consortium.home.rglob("*") if p.is_file()) == files


def test_a_pinned_key_that_differs_is_refused(board_consortium: Consortium, tmp_path: Path) -> None:
    export = tmp_path / "ledger.jsonl"
    export_ledger(board_consortium, export)
    keys = member_keys(board_consortium)
    keys["lab"] = keys[HOSPITALS[0]]  # the auditor was told another key for lab
    pinned = tmp_path / "keys.json"
    pinned.write_text(json.dumps(keys))
    with pytest.raises(StateError, match="joined with a key other than the one pinned"):
        report_from_export(export, "investor", on=DAY, keys_file=pinned)
