"""The charter and board motions through the services: every refusal changes nothing."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from kumiai.adapters.storage.schema import (
    CharterRow,
    CharterSignatureRow,
    MotionRow,
    ProjectRow,
    VoteRow,
)
from kumiai.domain.charter import Charter, amended
from kumiai.domain.clock import frozen_at, utc_now
from kumiai.domain.errors import InvalidInput, KumiaiError, NotFound, StateError
from kumiai.domain.ledger import SignedEntry
from kumiai.services import charter, members, motions, projects, themes
from kumiai.services.consortium import Consortium, init_consortium

pytestmark = pytest.mark.usefixtures("backend")  # on SQLite and on PostgreSQL

BOARD = ("aoi-univ", "kita-hospital", "minami-corp", "nishi-lab")


def _consortium(home: Path) -> Consortium:
    consortium = init_consortium(home)
    for name, kind in zip(BOARD, ("university", "hospital", "company", "startup"), strict=True):
        members.add_member(consortium, name, kind)
    projects.propose_project(
        consortium, name="heart", title="", purpose="diagnosis support", proposed_by="aoi-univ"
    )
    return consortium


def _adopted(home: Path) -> Consortium:
    consortium = _consortium(home)
    charter.propose_charter(consortium, proposed_by="aoi-univ")
    for member in BOARD:
        charter.sign_charter(consortium, member)
    return consortium


def _admit(consortium: Consortium, name: str, kind: str) -> None:
    """The board admits, then the new member's node joins."""
    motion = motions.propose_motion(
        consortium, decision="admit-member", payload={"member": name}, proposer="aoi-univ"
    )
    for seat in BOARD:
        motions.cast_vote(consortium, motion.id, seat, "yes")
    motions.close_motion(consortium, motion.id)
    members.add_member(consortium, name, kind)


def _state(consortium: Consortium) -> tuple:
    """Everything a refusal must leave as it was: the governance tables and the ledger."""
    with consortium.sessions() as session:
        tables = tuple(
            tuple(
                sorted(
                    json.dumps(_row(r), sort_keys=True, default=str)
                    for r in session.scalars(select(t))
                )
            )
            for t in (CharterRow, CharterSignatureRow, MotionRow, VoteRow, ProjectRow)
        )
    return tables, consortium.ledger.tree().size


def _row(row: object) -> dict:
    return {c.name: getattr(row, c.name) for c in row.__table__.columns}  # type: ignore[attr-defined]


def _refused(consortium: Consortium, error: type[KumiaiError], match: str, act) -> None:  # type: ignore[no-untyped-def]
    before = _state(consortium)
    with pytest.raises(error, match=match):
        act()
    assert _state(consortium) == before


def _entries(consortium: Consortium, kind: str) -> list[SignedEntry]:
    from kumiai.adapters.storage.schema import LedgerEntryRow

    with consortium.sessions() as session:
        rows = session.scalars(
            select(LedgerEntryRow).where(LedgerEntryRow.kind == kind).order_by(LedgerEntryRow.seq)
        )
        return [SignedEntry.from_leaf_bytes(r.leaf) for r in rows]


def test_the_charter_is_adopted_when_every_founder_has_signed_at_its_node(home: Path) -> None:
    consortium = _consortium(home)
    info = charter.propose_charter(consortium, proposed_by="aoi-univ")
    assert info.status == "proposed" and info.awaiting == BOARD
    for member in BOARD[:-1]:
        assert charter.sign_charter(consortium, member).status == "proposed"
    _refused(
        consortium,
        InvalidInput,
        "already signed",
        lambda: charter.sign_charter(consortium, "aoi-univ"),
    )
    assert charter.sign_charter(consortium, BOARD[-1]).status == "adopted"
    signatures = _entries(consortium, "charter.signed")
    assert [s.entry.actor for s in signatures] == list(BOARD)
    assert {s.entry.payload["digest"] for s in signatures} == {info.digest}
    assert [e.entry.payload["version"] for e in _entries(consortium, "charter.adopted")] == [1]


def test_charter_refusals_change_nothing(home: Path) -> None:
    consortium = _consortium(home)
    members.add_member(consortium, "late-comer", "startup")
    charter.propose_charter(consortium, proposed_by="aoi-univ", founders=BOARD)
    _refused(
        consortium,
        InvalidInput,
        "not a founder",
        lambda: charter.sign_charter(consortium, "late-comer"),
    )
    _refused(
        consortium,
        StateError,
        "already proposed",
        lambda: charter.propose_charter(consortium, proposed_by="aoi-univ"),
    )
    _refused(
        consortium,
        StateError,
        "no charter is adopted",
        lambda: motions.propose_motion(
            consortium,
            decision="approve-project",
            payload={"project": "heart"},
            proposer="aoi-univ",
        ),
    )


def test_without_a_charter_one_member_still_approves(home: Path) -> None:
    consortium = _consortium(home)
    assert projects.approve_project(consortium, "heart", "kita-hospital").status == "active"


def test_the_board_approves_a_project_by_vote(home: Path) -> None:
    consortium = _adopted(home)
    _refused(
        consortium,
        StateError,
        "only by a board vote",
        lambda: projects.approve_project(consortium, "heart", "kita-hospital"),
    )
    motion = motions.propose_motion(
        consortium, decision="approve-project", payload={"project": "heart"}, proposer="aoi-univ"
    )
    assert motion.status == "open" and motion.eligible == BOARD
    motions.cast_vote(consortium, motion.id, "aoi-univ", "yes")
    motions.cast_vote(consortium, motion.id, "kita-hospital", "yes")
    motions.cast_vote(consortium, motion.id, "minami-corp", "no")
    _refused(
        consortium,
        StateError,
        "takes votes until",
        lambda: motions.close_motion(consortium, motion.id),
    )
    with frozen_at(motion.closes_at):
        closed = motions.close_motion(consortium, motion.id)
    assert closed.status == "passed" and closed.tally["yes"] == 2
    [project] = [p for p in projects.list_projects(consortium) if p.name == "heart"]
    assert project.status == "active"
    assert (project.approved_by, project.approved_by_motion) == (None, motion.id)
    [approved] = _entries(consortium, "project.approved")
    assert approved.entry.payload == {"project": "heart", "motion": motion.id}
    votes = _entries(consortium, "motion.voted")
    assert [v.entry.actor for v in votes] == ["aoi-univ", "kita-hospital", "minami-corp"]
    assert {v.entry.payload["digest"] for v in votes} == {motion.digest}


def test_vote_refusals_change_nothing(home: Path) -> None:
    consortium = _adopted(home)
    _admit(consortium, "outsider", "company")
    motion = motions.propose_motion(
        consortium,
        decision="create-spinout",
        payload={"spinout": "nishi-spin", "founders": ["nishi-lab"], "theme": "medical"},
        proposer="aoi-univ",
    )
    motions.cast_vote(consortium, motion.id, "aoi-univ", "yes")
    vote = motions.cast_vote
    _refused(
        consortium,
        InvalidInput,
        "already voted yes",
        lambda: vote(consortium, motion.id, "aoi-univ", "no"),
    )
    _refused(
        consortium,
        InvalidInput,
        "holds no board seat",
        lambda: vote(consortium, motion.id, "outsider", "yes"),
    )
    _refused(
        consortium,
        InvalidInput,
        "conflicted",
        lambda: vote(consortium, motion.id, "nishi-lab", "yes"),
    )
    _refused(
        consortium,
        InvalidInput,
        "yes, no or abstain",
        lambda: vote(consortium, motion.id, "minami-corp", "maybe"),
    )
    _refused(
        consortium,
        NotFound,
        "unknown motion",
        lambda: vote(consortium, "motion-9", "minami-corp", "yes"),
    )
    with frozen_at(motion.closes_at):
        _refused(
            consortium,
            StateError,
            "stopped taking votes",
            lambda: vote(consortium, motion.id, "minami-corp", "yes"),
        )
        closed = motions.close_motion(consortium, motion.id)
    # 1 of the 3 unconflicted seats voted: below the quorum of 2/3
    assert closed.status == "failed" and closed.tally["eligible"] == 3
    _refused(
        consortium,
        StateError,
        "closed",
        lambda: vote(consortium, motion.id, "minami-corp", "yes"),
    )


def test_a_quorum_not_met_fails_at_the_close_and_nothing_is_carried_out(home: Path) -> None:
    consortium = _adopted(home)
    motion = motions.propose_motion(
        consortium, decision="approve-project", payload={"project": "heart"}, proposer="aoi-univ"
    )
    motions.cast_vote(consortium, motion.id, "aoi-univ", "yes")
    with frozen_at(motion.closes_at + timedelta(days=1)):
        closed = motions.close_motion(consortium, motion.id)
    assert closed.status == "failed" and "quorum not met: 1 of 4" in closed.tally["reason"]
    assert [p.status for p in projects.list_projects(consortium)] == ["proposed"]
    assert _entries(consortium, "project.approved") == []


def test_after_adoption_only_a_member_the_board_admits_joins(home: Path) -> None:
    consortium = _adopted(home)
    _refused(
        consortium,
        StateError,
        "joins only once the board admits it",
        lambda: members.add_member(consortium, "newcomer", "startup"),
    )
    motion = motions.propose_motion(
        consortium, decision="admit-member", payload={"member": "newcomer"}, proposer="aoi-univ"
    )
    for seat, choice in zip(BOARD, ("yes", "no", "no", "abstain"), strict=True):
        motions.cast_vote(consortium, motion.id, seat, choice)
    assert motions.close_motion(consortium, motion.id).status == "failed"
    _refused(  # a failed motion admits nobody
        consortium,
        StateError,
        "joins only once the board admits it",
        lambda: members.add_member(consortium, "newcomer", "startup"),
    )
    _admit(consortium, "newcomer", "startup")
    assert "newcomer" in {m.name for m in members.list_members(consortium)}
    for payload, error, match in [
        ({"member": "newcomer"}, StateError, "already a member"),
        ({"member": "aoi-univ"}, StateError, "already a member"),
        ({"member": "Not A Slug"}, InvalidInput, "member"),
        ({"member": ["a", "b"]}, InvalidInput, "must be a name"),
    ]:
        _refused(
            consortium,
            error,
            match,
            lambda p=payload: motions.propose_motion(
                consortium, decision="admit-member", payload=p, proposer="aoi-univ"
            ),
        )
    pending = motions.propose_motion(
        consortium, decision="admit-member", payload={"member": "later"}, proposer="aoi-univ"
    )
    for seat in BOARD:
        motions.cast_vote(consortium, pending.id, seat, "yes")
    motions.close_motion(consortium, pending.id)
    _refused(
        consortium,
        StateError,
        "already admitted",
        lambda: motions.propose_motion(
            consortium, decision="admit-member", payload={"member": "later"}, proposer="aoi-univ"
        ),
    )


def test_motions_that_contradict_the_charter_are_refused(home: Path) -> None:
    consortium = _adopted(home)
    _admit(consortium, "outsider", "company")
    propose = motions.propose_motion
    cases = [
        (InvalidInput, "unknown decision type", "dissolve", {"project": "heart"}, "aoi-univ"),
        (InvalidInput, "holds no board seat", "approve-project", {"project": "heart"}, "outsider"),
        (InvalidInput, "must name project", "approve-project", {}, "aoi-univ"),
        (NotFound, "unknown project", "approve-project", {"project": "lungs"}, "aoi-univ"),
        (InvalidInput, "must be version 2", "amend-charter", {"charter": {}}, "aoi-univ"),
    ]
    for error, match, decision, payload, proposer in cases[:-1]:
        _refused(
            consortium,
            error,
            match,
            lambda d=decision, p=payload, by=proposer: propose(
                consortium, decision=d, payload=p, proposer=by
            ),
        )
    with consortium.sessions() as session:
        current = charter.adopted_charter(session)
    assert current is not None
    skipped = {**amended(current).document(), "version": 3}
    _refused(
        consortium,
        InvalidInput,
        "must be version 2",
        lambda: propose(
            consortium, decision="amend-charter", payload={"charter": skipped}, proposer="aoi-univ"
        ),
    )


def test_amending_the_charter_takes_every_seat(home: Path) -> None:
    consortium = _adopted(home)
    with consortium.sessions() as session:
        current = charter.adopted_charter(session)
    assert current is not None
    smaller = amended(current, seats=BOARD[:3])
    motion = motions.propose_motion(
        consortium,
        decision="amend-charter",
        payload={"charter": smaller.document()},
        proposer="aoi-univ",
    )
    for member in BOARD:
        motions.cast_vote(consortium, motion.id, member, "yes")
    closed = motions.close_motion(consortium, motion.id)  # everyone voted: no need to wait
    assert closed.status == "passed"
    info = charter.show_charter(consortium)
    assert info.version == 2 and info.motion == motion.id
    assert Charter.from_document(info.document).seats == BOARD[:3]
    members_now = [c.status for c in charter.list_charters(consortium)]
    assert members_now == ["superseded", "adopted"]
    _refused(
        consortium,
        InvalidInput,
        "holds no board seat",
        lambda: motions.propose_motion(
            consortium,
            decision="approve-project",
            payload={"project": "heart"},
            proposer="nishi-lab",
        ),
    )


def test_closing_twice_is_refused(home: Path) -> None:
    consortium = _adopted(home)
    themes.add_theme(consortium, name="medical", title="Medical AI", by="aoi-univ")
    motion = motions.propose_motion(
        consortium, decision="set-priorities", payload={"ranking": ["medical"]}, proposer="aoi-univ"
    )
    with frozen_at(utc_now() + timedelta(days=30)):
        assert motions.close_motion(consortium, motion.id).status == "failed"
        _refused(
            consortium,
            StateError,
            "already closed",
            lambda: motions.close_motion(consortium, motion.id),
        )


def test_the_ledger_audit_recomputes_every_tally(home: Path) -> None:
    """Approval, an amendment and a failed motion: the honest ledger verifies offline."""
    from kumiai.services import transparency

    consortium = _adopted(home)
    approval = motions.propose_motion(
        consortium, decision="approve-project", payload={"project": "heart"}, proposer="aoi-univ"
    )
    for member in BOARD:
        motions.cast_vote(consortium, approval.id, member, "yes")
    motions.close_motion(consortium, approval.id)
    with consortium.sessions() as session:
        current = charter.adopted_charter(session)
    assert current is not None
    amendment = motions.propose_motion(
        consortium,
        decision="amend-charter",
        payload={"charter": amended(current, seats=BOARD[:3]).document()},
        proposer="kita-hospital",
    )
    for member in BOARD:
        motions.cast_vote(consortium, amendment.id, member, "yes")
    motions.close_motion(consortium, amendment.id)
    spinout = motions.propose_motion(
        consortium,
        decision="create-spinout",
        payload={"spinout": "kokoro-ai", "founders": ["aoi-univ"], "theme": "medical"},
        proposer="minami-corp",
    )
    assert spinout.eligible == ("kita-hospital", "minami-corp") and spinout.charter_version == 2
    motions.cast_vote(consortium, spinout.id, "kita-hospital", "no")
    with frozen_at(spinout.closes_at):
        assert motions.close_motion(consortium, spinout.id).status == "failed"
    report = transparency.verify_ledger(consortium)
    assert report.ok, report.findings


def test_the_minutes_verify_when_the_clock_ticks_between_the_check_and_the_entry(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A motion proposed at hh:mm:59.999 and written at the next second still replays.

    The entry carries the moment the motion was checked, so a replay computes the same
    closing time; the ledger's own clock runs a second ahead here on purpose.
    """
    from kumiai.services import ledger as ledger_module
    from kumiai.services import transparency

    consortium = _adopted(home)
    monkeypatch.setattr(ledger_module, "utc_now", lambda: utc_now() + timedelta(seconds=1))
    motion = motions.propose_motion(
        consortium, decision="approve-project", payload={"project": "heart"}, proposer="aoi-univ"
    )
    for member in BOARD:
        motions.cast_vote(consortium, motion.id, member, "yes")
    motions.close_motion(consortium, motion.id)
    report = transparency.verify_ledger(consortium)
    assert report.ok, report.findings[:3]
