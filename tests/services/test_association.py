"""Themes, funds, spend and milestones through the services: every refusal changes nothing."""

import hashlib
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kumiai.adapters.storage.schema import (
    FundAllocationRow,
    FundReceiptRow,
    LedgerEntryRow,
    MilestoneEvidenceRow,
    MilestoneRow,
    MotionRow,
    ProjectThemeRow,
    SpendRow,
    ThemeRow,
)
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, KumiaiError, NotFound, StateError
from kumiai.domain.ledger import SignedEntry, entry_signature_valid
from kumiai.services import (
    charter,
    funds,
    members,
    milestones,
    motions,
    projects,
    quota,
    spend,
    themes,
    transparency,
)
from kumiai.services.consortium import Consortium, init_consortium

pytestmark = pytest.mark.usefixtures("backend")  # on SQLite and on PostgreSQL

BOARD = ("aoi-univ", "kita-hospital", "minami-corp")
TABLES = (
    ThemeRow,
    ProjectThemeRow,
    FundReceiptRow,
    FundAllocationRow,
    SpendRow,
    MilestoneRow,
    MilestoneEvidenceRow,
    MotionRow,
)


def _board(home: Path) -> Consortium:
    """Three seats, a member without one (nishi-lab), project heart led by aoi-univ."""
    consortium = init_consortium(home)
    for name, kind in zip(BOARD, ("university", "hospital", "company"), strict=True):
        members.add_member(consortium, name, kind)
    members.add_member(consortium, "nishi-lab", "startup")
    projects.propose_project(
        consortium, name="heart", title="", purpose="diagnosis support", proposed_by="aoi-univ"
    )
    charter.propose_charter(consortium, proposed_by="aoi-univ", founders=BOARD)
    for member in BOARD:
        charter.sign_charter(consortium, member)
    return consortium


def _pass(consortium: Consortium, decision: str, payload: dict[str, Any]) -> motions.MotionInfo:
    motion = motions.propose_motion(
        consortium, decision=decision, payload=payload, proposer="aoi-univ"
    )
    for seat in BOARD:
        motions.cast_vote(consortium, motion.id, seat, "yes")
    return motions.close_motion(consortium, motion.id)


def _state(consortium: Consortium) -> tuple:
    with consortium.sessions() as session:
        tables = tuple(
            tuple(
                sorted(
                    json.dumps(
                        {c.name: getattr(r, c.name) for c in r.__table__.columns},
                        sort_keys=True,
                        default=str,
                    )
                    for r in session.scalars(select(t))
                )
            )
            for t in TABLES
        )
    return tables, consortium.ledger.tree().size


def _refused(
    consortium: Consortium, error: type[KumiaiError], match: str, act: Callable[[], object]
) -> None:
    before = _state(consortium)
    with pytest.raises(error, match=match):
        act()
    assert _state(consortium) == before


def _entries(consortium: Consortium, kind: str) -> list[SignedEntry]:
    with consortium.sessions() as session:
        rows = session.scalars(
            select(LedgerEntryRow).where(LedgerEntryRow.kind == kind).order_by(LedgerEntryRow.seq)
        )
        return [SignedEntry.from_leaf_bytes(r.leaf) for r in rows]


def _signed_by_its_node(consortium: Consortium, signed: SignedEntry) -> bool:
    public = transparency.member_keys(consortium)[signed.entry.actor]
    return entry_signature_valid(signed, public if isinstance(public, str) else public[-1])


# -- themes and priorities -----------------------------------------------------------------
def test_a_seat_adds_themes_and_a_project_is_put_under_one(home: Path) -> None:
    consortium = _board(home)
    info = themes.add_theme(
        consortium, name="medical", title="Medical AI", description="Hospitals", by="kita-hospital"
    )
    assert (info.name, info.rank, info.projects) == ("medical", None, ())
    _refused(
        consortium,
        InvalidInput,
        "'nishi-lab' holds no board seat, and only a seat holder may add a theme",
        lambda: themes.add_theme(consortium, name="agents", title="Agents", by="nishi-lab"),
    )
    _refused(
        consortium,
        InvalidInput,
        "theme 'medical' already exists",
        lambda: themes.add_theme(consortium, name="medical", title="Again", by="aoi-univ"),
    )
    created = _entries(consortium, "theme.created")[0]
    assert created.entry.payload == {
        "theme": "medical",
        "title": "Medical AI",
        "description": "Hospitals",
    }
    assert created.entry.actor == "kita-hospital" and _signed_by_its_node(consortium, created)

    projects.propose_project(
        consortium,
        name="ecg",
        title="",
        purpose="arrhythmia",
        proposed_by="nishi-lab",
        theme="medical",
    )
    proposed, themed = (
        _entries(consortium, "project.proposed")[-1],
        _entries(consortium, "project.themed")[0],
    )
    assert themed.entry.seq == proposed.entry.seq + 1
    assert themed.entry.payload == {"project": "ecg", "theme": "medical"}
    _refused(
        consortium,
        NotFound,
        "unknown theme 'quantum'",
        lambda: projects.propose_project(
            consortium, name="q", title="", purpose="p", proposed_by="aoi-univ", theme="quantum"
        ),
    )
    _refused(
        consortium,
        InvalidInput,
        "'nishi-lab' holds no board seat",
        lambda: themes.set_project_theme(consortium, "heart", "medical", "nishi-lab"),
    )
    assert themes.set_project_theme(consortium, "heart", "medical", "aoi-univ").projects == (
        "ecg",
        "heart",
    )
    _refused(
        consortium,
        InvalidInput,
        "already under theme 'medical'",
        lambda: themes.set_project_theme(consortium, "heart", "medical", "aoi-univ"),
    )


def _themes(consortium: Consortium, *names: str) -> None:
    for name in names:
        themes.add_theme(consortium, name=name, title=name.title(), by="aoi-univ")


def test_the_board_ranks_every_theme_by_motion(home: Path) -> None:
    consortium = _board(home)
    _themes(consortium, "agents", "medical", "industrial")
    for ranking, message in (
        (["medical", "agents"], "leaves out industrial"),
        (["medical", "agents", "industrial", "quantum"], "unknown themes: quantum"),
    ):
        _refused(
            consortium,
            InvalidInput,
            message,
            lambda r=ranking: motions.propose_motion(
                consortium, decision="set-priorities", payload={"ranking": r}, proposer="aoi-univ"
            ),
        )
    closed = _pass(consortium, "set-priorities", {"ranking": "medical,agents,industrial"})
    assert closed.status == "passed"
    listing = themes.list_themes(consortium)
    assert [(t.name, t.rank, t.ranked_by) for t in listing] == [
        ("medical", 1, closed.id),
        ("agents", 2, closed.id),
        ("industrial", 3, closed.id),
    ]
    ranked = _entries(consortium, "theme.ranked")
    assert [e.entry.payload for e in ranked] == [
        {"ranking": ["medical", "agents", "industrial"], "motion": closed.id}
    ]


def test_a_ranking_that_misses_a_theme_added_meanwhile_is_void(home: Path) -> None:
    consortium = _board(home)
    _themes(consortium, "agents", "medical")
    motion = motions.propose_motion(
        consortium,
        decision="set-priorities",
        payload={"ranking": ["medical", "agents"]},
        proposer="aoi-univ",
    )
    _themes(consortium, "industrial")
    for seat in BOARD:
        motions.cast_vote(consortium, motion.id, seat, "yes")
    closed = motions.close_motion(consortium, motion.id)
    assert closed.status == "failed"
    assert [t.rank for t in themes.list_themes(consortium)] == [None, None, None]
    assert (
        "leaves out industrial" in _entries(consortium, "motion.closed")[-1].entry.payload["void"]
    )
    assert _entries(consortium, "theme.ranked") == []


# -- funds ---------------------------------------------------------------------------------
def _funded(home: Path) -> Consortium:
    consortium = _board(home)
    funds.receive_funds(
        consortium, source="nedo-grant", kind="grant", payer="NEDO", amount=10_000_000
    )
    funds.receive_funds(
        consortium, source="dues-2026", kind="dues", payer="minami-corp", amount="3000000"
    )
    return consortium


def test_the_coordinator_records_money_received(home: Path) -> None:
    consortium = _funded(home)
    info = funds.receive_funds(
        consortium,
        source="dues-2026",
        kind="dues",
        payer="kita-hospital",
        amount=2_000_000,
        note="FY2026",
    )
    assert (info.received_yen, info.unallocated_yen, len(info.receipts)) == (5_000_000,) * 2 + (2,)
    received = _entries(consortium, "funds.received")
    assert [e.entry.actor for e in received] == ["coordinator"] * 3
    assert received[-1].entry.payload == {
        "source": "dues-2026",
        "kind": "dues",
        "from": "kita-hospital",
        "amount_yen": 2_000_000,
        "note": "FY2026",
    }
    for amount in (0, -5, 1.5, "1.5", True):
        _refused(
            consortium,
            InvalidInput,
            "must be a whole number above 0",
            lambda a=amount: funds.receive_funds(
                consortium, source="nedo-grant", kind="grant", payer="NEDO", amount=a
            ),
        )
    _refused(
        consortium,
        InvalidInput,
        "holds grant money, not investor",
        lambda: funds.receive_funds(
            consortium, source="nedo-grant", kind="investor", payer="VC", amount=1
        ),
    )
    _refused(
        consortium,
        InvalidInput,
        "not one of: dues, grant, investor",
        lambda: funds.receive_funds(consortium, source="x", kind="loan", payer="bank", amount=1),
    )


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        ({"amount": 10_000_001, "source": "nedo-grant"}, InvalidInput, "10000000 yen unallocated"),
        ({"amount": 0, "source": "nedo-grant"}, InvalidInput, "whole number above 0"),
        ({"amount": "-3", "source": "nedo-grant"}, InvalidInput, "whole number above 0"),
        ({"amount": 2.5, "source": "nedo-grant"}, InvalidInput, "whole number above 0"),
        ({"amount": 5, "source": "jsps"}, NotFound, "unknown fund source 'jsps'"),
        ({"amount": 5}, InvalidInput, "must name the source"),
        ({"amount": 5, "source": "nedo-grant", "site_rounds": 0}, InvalidInput, "site_rounds"),
        ({"amount": 5, "source": "nedo-grant", "project": "lung"}, NotFound, "unknown project"),
    ],
)
def test_an_allocation_the_books_cannot_pay_is_refused_at_the_proposal(
    home: Path, payload: dict[str, Any], error: type[KumiaiError], message: str
) -> None:
    consortium = _funded(home)
    _refused(
        consortium,
        error,
        message,
        lambda: motions.propose_motion(
            consortium,
            decision="allocate-funds",
            payload={"project": "heart", **payload},
            proposer="aoi-univ",
        ),
    )


def test_a_passed_allocation_moves_money_and_a_second_one_past_the_balance_is_void(
    home: Path,
) -> None:
    consortium = _funded(home)
    payload = {"project": "heart", "amount": "6000000", "source": "nedo-grant"}
    first = motions.propose_motion(
        consortium,
        decision="allocate-funds",
        payload={**payload, "site_rounds": 90},
        proposer="aoi-univ",
    )
    second = motions.propose_motion(
        consortium, decision="allocate-funds", payload=payload, proposer="kita-hospital"
    )
    for motion in (first, second):
        for seat in BOARD:
            motions.cast_vote(consortium, motion.id, seat, "yes")
    assert motions.close_motion(consortium, first.id).status == "passed"
    assert motions.close_motion(consortium, second.id).status == "failed"
    allocated = _entries(consortium, "funds.allocated")
    assert [e.entry.payload for e in allocated] == [
        {
            "project": "heart",
            "amount_yen": 6_000_000,
            "source": "nedo-grant",
            "motion": first.id,
            "site_rounds": 90,
        }
    ]
    assert (
        "4000000 yen unallocated" in _entries(consortium, "motion.closed")[-1].entry.payload["void"]
    )
    books = funds.list_funds(consortium)
    assert (books.received_yen, books.allocated_yen, books.unallocated_yen) == (
        13_000_000,
        6_000_000,
        7_000_000,
    )
    assert [(s.source, s.kind, s.unallocated_yen) for s in books.sources] == [
        ("dues-2026", "dues", 3_000_000),
        ("nedo-grant", "grant", 4_000_000),
    ]
    with consortium.sessions() as session:
        assert quota.quota_info(session, "heart") == quota.QuotaInfo(90, 0, 90)


# -- spend ---------------------------------------------------------------------------------
def test_only_the_lead_records_spend_signed_at_its_node(home: Path) -> None:
    consortium = _funded(home)
    _pass(
        consortium, "allocate-funds", {"project": "heart", "amount": 1000, "source": "nedo-grant"}
    )
    info = spend.record_spend(
        consortium,
        project="heart",
        category="compute",
        amount=400,
        description="GPU hours",
        by="aoi-univ",
        spent_on="2026-11-01",
    )
    assert (info.allocated_yen, info.total_spent_yen, info.left_yen, info.overspent) == (
        1000,
        400,
        600,
        False,
    )
    recorded = _entries(consortium, "spend.recorded")[0]
    assert recorded.entry.actor == "aoi-univ" and _signed_by_its_node(consortium, recorded)
    assert recorded.entry.payload == {
        "project": "heart",
        "category": "compute",
        "amount_yen": 400,
        "description": "GPU hours",
        "spent_on": "2026-11-01",
    }
    _refused(
        consortium,
        InvalidInput,
        "only project 'heart''s lead member, aoi-univ, may record its spend; not 'kita-hospital'",
        lambda: spend.record_spend(
            consortium,
            project="heart",
            category="data",
            amount=1,
            description="x",
            by="kita-hospital",
        ),
    )
    for kwargs, message in (
        ({"amount": -1}, "whole number above 0"),
        ({"category": "travel"}, "not one of"),
        ({"spent_on": "2999-01-01"}, "in the future"),
        ({"spent_on": "01/11/2026"}, "YYYY-MM-DD"),
        ({"description": " "}, "say what the money was spent on"),
    ):
        args = {
            "project": "heart",
            "category": "data",
            "amount": 1,
            "description": "x",
            "by": "aoi-univ",
            **kwargs,
        }
        _refused(
            consortium, InvalidInput, message, lambda a=args: spend.record_spend(consortium, **a)
        )
    over = spend.record_spend(
        consortium,
        project="heart",
        category="personnel",
        amount=700,
        description="RA",
        by="aoi-univ",
    )
    assert (over.total_spent_yen, over.left_yen, over.overspent) == (1100, -100, True)
    assert over.spent_yen == {
        "personnel": 700,
        "compute": 400,
        "data": 0,
        "equipment": 0,
        "other": 0,
    }
    assert over.spends[-1].spent_on == utc_now().date().isoformat()


# -- milestones ----------------------------------------------------------------------------
def _milestone(consortium: Consortium, name: str = "first-model", due: str = "2026-12-31") -> None:
    milestones.add_milestone(
        consortium, project="heart", name=name, title="A first model", due=due, by="aoi-univ"
    )


def test_the_lead_sets_milestones_and_attaches_evidence(home: Path, tmp_path: Path) -> None:
    consortium = _board(home)
    _refused(
        consortium,
        InvalidInput,
        "only project 'heart''s lead member, aoi-univ, may set its milestones",
        lambda: milestones.add_milestone(
            consortium, project="heart", name="m", title="t", due="2026-12-31", by="minami-corp"
        ),
    )
    _refused(
        consortium,
        InvalidInput,
        "'31/12/2026' is not a date",
        lambda: _milestone(consortium, due="31/12/2026"),
    )
    _milestone(consortium)
    _refused(consortium, InvalidInput, "already has a milestone", lambda: _milestone(consortium))
    set_entry = _entries(consortium, "milestone.set")[0]
    assert set_entry.entry.payload == {
        "project": "heart",
        "milestone": "first-model",
        "title": "A first model",
        "due": "2026-12-31",
    }
    assert set_entry.entry.actor == "aoi-univ" and _signed_by_its_node(consortium, set_entry)

    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.7 results")
    info = milestones.add_evidence(
        consortium, project="heart", name="first-model", documents=(report,)
    )
    digest = hashlib.sha256(b"%PDF-1.7 results").hexdigest()
    assert [(e.kind, e.ref, e.name) for e in info.evidence] == [("document", digest, "report.pdf")]
    assert _entries(consortium, "milestone.evidence")[0].entry.payload == {
        "project": "heart",
        "milestone": "first-model",
        "evidence": [{"kind": "document", "sha256": digest, "name": "report.pdf"}],
    }
    _refused(
        consortium,
        InvalidInput,
        "already attached",
        lambda: milestones.add_evidence(
            consortium, project="heart", name="first-model", documents=(report,)
        ),
    )
    _refused(
        consortium,
        NotFound,
        "unknown model version 'heart-v9'",
        lambda: milestones.add_evidence(
            consortium, project="heart", name="first-model", models=("heart-v9",)
        ),
    )
    _refused(
        consortium,
        InvalidInput,
        "cannot read the document",
        lambda: milestones.add_evidence(
            consortium, project="heart", name="first-model", documents=(tmp_path / "none",)
        ),
    )
    _refused(
        consortium,
        InvalidInput,
        "may add milestone evidence",
        lambda: milestones.add_evidence(
            consortium,
            project="heart",
            name="first-model",
            by="kita-hospital",
            documents=(report,),
        ),
    )


def test_the_board_accepts_or_rejects_a_milestone_with_evidence(home: Path, tmp_path: Path) -> None:
    consortium = _board(home)
    _milestone(consortium)
    _refused(
        consortium,
        InvalidInput,
        "has no evidence",
        lambda: motions.propose_motion(
            consortium,
            decision="accept-milestone",
            payload={"project": "heart", "milestone": "first-model"},
            proposer="aoi-univ",
        ),
    )
    _refused(
        consortium,
        NotFound,
        "has no milestone 'second'",
        lambda: motions.propose_motion(
            consortium,
            decision="accept-milestone",
            payload={"project": "heart", "milestone": "second"},
            proposer="aoi-univ",
        ),
    )
    document = tmp_path / "slides.pdf"
    document.write_bytes(b"slides")
    milestones.add_evidence(consortium, project="heart", name="first-model", documents=(document,))
    _refused(
        consortium,
        InvalidInput,
        "'reject' must be true or false",
        lambda: motions.propose_motion(
            consortium,
            decision="accept-milestone",
            payload={"project": "heart", "milestone": "first-model", "reject": "maybe"},
            proposer="aoi-univ",
        ),
    )
    rejected = _pass(
        consortium,
        "accept-milestone",
        {"project": "heart", "milestone": "first-model", "reject": "true"},
    )
    shown = milestones.show_milestone(consortium, "heart", "first-model", date(2027, 1, 1))
    assert (shown.status, shown.motion, shown.late, shown.timing) == (
        "rejected",
        rejected.id,
        True,
        "late",
    )
    accepted = _pass(
        consortium, "accept-milestone", {"project": "heart", "milestone": "first-model"}
    )
    assert [e.entry.payload for e in _entries(consortium, "milestone.rejected")] == [
        {"project": "heart", "milestone": "first-model", "motion": rejected.id}
    ]
    assert [e.entry.payload for e in _entries(consortium, "milestone.accepted")] == [
        {"project": "heart", "milestone": "first-model", "motion": accepted.id}
    ]
    today = utc_now().date()
    shown = milestones.show_milestone(consortium, "heart", "first-model", date(2030, 1, 1))
    assert (shown.status, shown.on_time) == ("accepted", today <= date(2026, 12, 31))
    _refused(
        consortium,
        StateError,
        "already accepted",
        lambda: motions.propose_motion(
            consortium,
            decision="accept-milestone",
            payload={"project": "heart", "milestone": "first-model"},
            proposer="aoi-univ",
        ),
    )
    (tmp_path / "late.pdf").write_text("too late")
    _refused(
        consortium,
        StateError,
        "already accepted",
        lambda: milestones.add_evidence(
            consortium, project="heart", name="first-model", documents=(tmp_path / "late.pdf",)
        ),
    )


def test_an_open_milestone_past_its_due_date_lists_as_late(home: Path) -> None:
    consortium = _board(home)
    _milestone(consortium, "early", due="2026-06-30")
    _milestone(consortium, "later", due="2027-03-31")
    listing = milestones.list_milestones(consortium, "heart", today=date(2026, 7, 1))
    assert [(m.name, m.late, m.timing) for m in listing] == [
        ("early", True, "late"),
        ("later", False, "due"),
    ]
    listing = milestones.list_milestones(consortium, today=date(2026, 6, 30))
    assert [(m.name, m.late) for m in listing] == [("early", False), ("later", False)]
