"""Board motions: a seat proposes, seats vote at their nodes, the close carries out the act.

Every step is a signed ledger entry written with its change. A vote is signed by the
voter's node over the motion's digest, so it cannot be moved to another motion; the close
records the tally, which anyone can recompute from the ledger alone (domain.minutes).
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import MemberRow, MotionRow, ProjectRow, VoteRow
from kumiai.domain.charter import Charter, Decision
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, NotFound, StateError
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.motion import (
    Choice,
    Motion,
    Tally,
    check_pinned,
    check_vote,
    choice_of,
    propose,
    require_closable,
    tally,
)
from kumiai.domain.names import check_slug
from kumiai.domain.project import ProjectStatus
from kumiai.services import funds, licences, milestones, spinouts, themes
from kumiai.services.charter import adopt_amendment, adopted_charter, charter_version
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get
from kumiai.services.members import admitting_motion
from kumiai.services.projects import activate_by_motion


@dataclass(frozen=True)
class MotionInfo:
    id: str
    decision: str
    payload: dict[str, Any]
    proposer: str
    charter_version: int
    digest: str
    status: str  # open, passed, failed
    proposed_at: datetime
    closes_at: datetime
    closed_at: datetime | None
    eligible: tuple[str, ...]
    votes: dict[str, str]
    tally: dict[str, Any] | None


def _motion(row: MotionRow) -> Motion:
    return Motion(
        row.id,
        Decision(row.decision),
        json.loads(row.payload_json),
        row.proposer,
        row.charter_version,
        row.proposed_at,
        row.closes_at,
    )


def _votes(session: Session, motion: str) -> dict[str, Choice]:
    rows = session.scalars(select(VoteRow).where(VoteRow.motion == motion))
    return {r.member: Choice(r.choice) for r in rows}


def _info(session: Session, row: MotionRow) -> MotionInfo:
    motion = _motion(row)
    charter = charter_version(session, row.charter_version)
    return MotionInfo(
        row.id,
        row.decision,
        motion.payload,
        row.proposer,
        row.charter_version,
        row.digest,
        row.status,
        row.proposed_at,
        row.closes_at,
        row.closed_at,
        charter.eligible(motion.decision, motion.payload),
        {m: c.value for m, c in sorted(_votes(session, row.id).items())},
        json.loads(row.tally_json) if row.tally_json else None,
    )


def _get(session: Session, motion_id: str) -> MotionRow:
    row = session.get(MotionRow, motion_id)
    if row is None:
        raise NotFound(f"unknown motion {motion_id!r}; see `kumiai motion list`")
    return row


def _in_force(session: Session) -> Charter:
    charter = adopted_charter(session)
    if charter is None:
        raise StateError(
            "no charter is adopted yet: the board takes no motions before every founder has "
            "signed one (`kumiai charter show`)"
        )
    return charter


def _check_act(session: Session, charter: Charter, decision: Decision, payload: dict) -> None:
    """The act must be possible now: refuse at the proposal, not at the close."""
    if decision is Decision.ADMIT_MEMBER:
        _check_admission(session, payload)
    elif decision is Decision.APPROVE_PROJECT:
        project = get(session, ProjectRow, str(payload["project"]))
        if project.status != ProjectStatus.PROPOSED.value:
            raise StateError(f"project {project.name!r} is {project.status}, not proposed")
    elif decision is Decision.AMEND_CHARTER:
        new = Charter.from_document(payload["charter"])
        if new.version != charter.version + 1:
            raise InvalidInput(
                f"the amended charter must be version {charter.version + 1} (the one in force "
                f"is {charter.version}), not {new.version}"
            )
        if new.founders != charter.founders:
            raise InvalidInput("an amendment cannot rewrite who founded the association")
        for member in new.seats:
            get(session, MemberRow, member)
    elif decision is Decision.CREATE_SPINOUT:
        spinouts.check_spinout(session, payload)
    elif decision is Decision.GRANT_LICENCE:
        licences.check_licence(session, payload)
    elif decision is Decision.SET_PRIORITIES:
        themes.check_ranking(session, payload)
    elif decision is Decision.ALLOCATE_FUNDS:
        funds.check_allocation_act(session, payload)
    elif decision is Decision.ACCEPT_MILESTONE:
        milestones.check_decision_act(session, payload)


def _check_admission(session: Session, payload: dict) -> None:
    name = payload["member"]
    if not isinstance(name, str):
        raise InvalidInput("the member an admit-member motion names must be a name")
    check_slug(name, "member")
    if session.get(MemberRow, name) is not None:
        raise StateError(f"{name!r} is already a member")
    if admitting_motion(session, name) is not None:
        raise StateError(f"{name!r} is already admitted; it joins with kumiai member add")


def propose_motion(
    consortium: Consortium, *, decision: str, payload: dict[str, Any], proposer: str
) -> MotionInfo:
    with transaction(consortium.sessions) as session:
        charter = _in_force(session)
        get(session, MemberRow, proposer)
        count = session.scalar(select(func.count()).select_from(MotionRow)) or 0
        motion = propose(
            charter,
            motion_id=f"motion-{count + 1}",
            decision=decision,
            payload=payload,
            proposer=proposer,
            now=utc_now(),
        )
        _check_act(session, charter, motion.decision, motion.payload)
        row = MotionRow(
            id=motion.id,
            decision=motion.decision.value,
            payload_json=json.dumps(motion.payload, sort_keys=True),
            proposer=proposer,
            charter_version=charter.version,
            digest=motion.digest(),
            proposed_at=motion.proposed_at,
            closes_at=motion.closes_at,
            status="open",
        )
        session.add(row)
        session.flush()
        entry = {**motion.document(), "digest": motion.digest()}
        consortium.ledger.append(
            session,
            Act(proposer, "motion.proposed", entry, member=proposer, project=_project(motion)),
            at=motion.proposed_at,  # the replay counts the closing time from the entry's
        )
        return _info(session, row)


def _project(motion: Motion) -> str | None:
    value = motion.payload.get("project")
    return value if isinstance(value, str) else None


def cast_vote(
    consortium: Consortium,
    motion_id: str,
    member: str,
    choice: str,
    pinned: str | None = None,
) -> MotionInfo:
    """The member's node signs its vote over the motion's digest. `pinned` is the digest a
    node on its own machine computed from the motion it showed its steward: the vote is
    refused unless it is the motion as recorded (domain.motion.check_pinned)."""
    picked = choice_of(choice)
    with transaction(consortium.sessions) as session:
        row = _get(session, motion_id)
        get(session, MemberRow, member)
        motion = _motion(row)
        charter = charter_version(session, row.charter_version)
        now = utc_now()
        check_vote(charter, motion, member, _votes(session, row.id), now, row.status != "open")
        if pinned is not None:
            check_pinned(motion, row.digest, pinned)
        session.add(VoteRow(motion=row.id, member=member, choice=picked.value, cast_at=now))
        session.flush()
        payload = {"motion": row.id, "digest": row.digest, "choice": picked.value}
        consortium.ledger.append(
            session,
            Act(member, "motion.voted", payload, member=member, project=_project(motion)),
            at=now,  # checked against the close at this moment, as the replay will
        )
        return _info(session, row)


def close_motion(consortium: Consortium, motion_id: str) -> MotionInfo:
    """Tally; a passed motion's act is carried out in the same transaction."""
    with transaction(consortium.sessions) as session:
        row = _get(session, motion_id)
        if row.status != "open":
            raise StateError(f"motion {motion_id} is already closed: it {row.status}")
        motion = _motion(row)
        charter = charter_version(session, row.charter_version)
        votes = _votes(session, row.id)
        now = utc_now()
        require_closable(charter, motion, votes, now)
        result = tally(charter, motion, votes)
        void = _void(session, motion) if result.passed else None
        row.status = "passed" if result.passed and void is None else "failed"
        row.closed_at, row.tally_json = now, json.dumps(result.document(), sort_keys=True)
        payload: dict[str, Any] = {
            "motion": row.id,
            "digest": row.digest,
            "outcome": row.status,
            "tally": result.document(),
        }
        if void is not None:
            payload["void"] = void
        consortium.ledger.append(
            session, Act(COORDINATOR, "motion.closed", payload, project=_project(motion)), at=now
        )
        if row.status == "passed":
            _carry_out(consortium, session, motion)
        return _info(session, row)


def _void(session: Session, motion: Motion) -> str | None:
    """Why a passed motion's act can no longer be carried out, if it cannot."""
    in_force = adopted_charter(session)
    if in_force is None:  # cannot happen: a motion needs a charter, and charters stay
        return "no charter is in force"
    try:
        _check_act(session, in_force, motion.decision, motion.payload)
    except (InvalidInput, StateError) as exc:
        return str(exc)
    return None


def _carry_out(consortium: Consortium, session: Session, motion: Motion) -> None:
    if motion.decision is Decision.APPROVE_PROJECT:
        activate_by_motion(consortium, session, str(motion.payload["project"]), motion.id)
    elif motion.decision is Decision.AMEND_CHARTER:
        new = Charter.from_document(motion.payload["charter"])
        adopt_amendment(consortium, session, new, motion.id, motion.proposer)
    elif motion.decision is Decision.CREATE_SPINOUT:
        spinouts.create_by_motion(consortium, session, motion.payload, motion.id)
    elif motion.decision is Decision.GRANT_LICENCE:
        licences.grant_by_motion(consortium, session, motion.payload, motion.id)
    elif motion.decision is Decision.SET_PRIORITIES:
        themes.rank_by_motion(consortium, session, motion.payload, motion.id)
    elif motion.decision is Decision.ALLOCATE_FUNDS:
        funds.allocate_by_motion(consortium, session, motion.payload, motion.id)
    elif motion.decision is Decision.ACCEPT_MILESTONE:
        milestones.decide_by_motion(consortium, session, motion.payload, motion.id)
    # admit-member: the passed motion is the admission; the member's node then joins
    # (services.members), because only the node may make the member's key.
    # Other decisions are recorded as passed acts, payload and all, for later work to carry out.


def show_motion(consortium: Consortium, motion_id: str) -> MotionInfo:
    with transaction(consortium.sessions) as session:
        return _info(session, _get(session, motion_id))


def list_motions(consortium: Consortium, status: str | None = None) -> list[MotionInfo]:
    with transaction(consortium.sessions) as session:
        query = select(MotionRow).order_by(MotionRow.proposed_at, MotionRow.id)
        if status:
            query = query.where(MotionRow.status == status)
        return [_info(session, row) for row in session.scalars(query)]


def preview(consortium: Consortium, motion_id: str) -> Tally:
    """The tally if the motion closed now (nothing is written)."""
    with transaction(consortium.sessions) as session:
        row = _get(session, motion_id)
        charter = charter_version(session, row.charter_version)
        return tally(charter, _motion(row), _votes(session, row.id))
