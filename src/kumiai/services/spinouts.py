"""Spin-outs: a create-spinout motion proposes one; when it passes, the company joins.

The spin-out joins as a member of kind `spinout` by the same path as any member (its own
node makes its key, `services.members.join`), and `spinout.created` names the motion, in
the transaction that closes it.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import MemberRow, MotionRow, ProjectRow, SpinoutRow
from kumiai.domain.charter import Decision
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import NotFound, StateError
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.member import MemberKind
from kumiai.domain.spinout import spinout_payload
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get
from kumiai.services.members import admitting_motion, join

if TYPE_CHECKING:
    from kumiai.services.motions import MotionInfo


@dataclass(frozen=True)
class SpinoutInfo:
    name: str
    founders: tuple[str, ...]
    theme: str | None
    project: str | None
    motion: str
    created_at: datetime
    key_fingerprint: str


def check_spinout(session: Session, payload: dict[str, Any]) -> dict[str, Any]:
    """The act must be possible: a new name, founders who are members, a known project."""
    fields = ("spinout", "founders", "theme", "project")
    checked = spinout_payload(*(payload.get(f) for f in fields))
    name = checked["spinout"]
    if session.get(MemberRow, name) is not None:
        raise StateError(f"{name!r} is already a member; choose another name for the spin-out")
    if admitting_motion(session, name) is not None:
        raise StateError(f"{name!r} is already admitted as a member; choose another name")
    for founder in checked["founders"]:
        get(session, MemberRow, founder)
    if checked["project"] is not None:
        get(session, ProjectRow, checked["project"])
    return checked


def propose_spinout(
    consortium: Consortium,
    *,
    name: str,
    founders: tuple[str, ...],
    theme: str | None,
    project: str | None,
    proposer: str,
) -> "MotionInfo":
    """A create-spinout motion; the founders are conflicted and do not vote on it."""
    from kumiai.services.motions import propose_motion  # motions carries out spin-outs

    payload = spinout_payload(name, list(founders), theme, project)
    return propose_motion(
        consortium, decision=Decision.CREATE_SPINOUT.value, payload=payload, proposer=proposer
    )


def create_by_motion(
    consortium: Consortium, session: Session, payload: dict[str, Any], motion: str
) -> None:
    """Carry out a passed create-spinout motion, inside the transaction that closes it."""
    checked = check_spinout(session, payload)
    name = checked["spinout"]
    join(consortium, session, name, MemberKind.SPINOUT)
    session.add(
        SpinoutRow(
            name=name,
            founders_json=json.dumps(checked["founders"]),
            theme=checked["theme"],
            project=checked["project"],
            motion=motion,
            created_at=utc_now(),
        )
    )
    session.flush()
    consortium.ledger.append(
        session,
        Act(
            COORDINATOR,
            "spinout.created",
            {**checked, "motion": motion},
            member=name,
            project=checked["project"],
        ),
    )


def _info(session: Session, row: SpinoutRow) -> SpinoutInfo:
    member = get(session, MemberRow, row.name)
    return SpinoutInfo(
        row.name,
        tuple(json.loads(row.founders_json)),
        row.theme,
        row.project,
        row.motion,
        row.created_at,
        member.key_fingerprint,
    )


def list_spinouts(consortium: Consortium) -> list[SpinoutInfo]:
    with transaction(consortium.sessions) as session:
        rows = session.scalars(select(SpinoutRow).order_by(SpinoutRow.created_at, SpinoutRow.name))
        return [_info(session, r) for r in rows]


def show_spinout(consortium: Consortium, name: str) -> SpinoutInfo:
    with transaction(consortium.sessions) as session:
        row = session.get(SpinoutRow, name)
        if row is None:
            pending = session.scalars(
                select(MotionRow).where(
                    MotionRow.decision == Decision.CREATE_SPINOUT.value, MotionRow.status == "open"
                )
            )
            if any(json.loads(m.payload_json).get("spinout") == name for m in pending):
                raise NotFound(f"spin-out {name!r} awaits its motion; see `kumiai motion list`")
            raise NotFound(f"unknown spin-out {name!r}; see `kumiai spinout list`")
        return _info(session, row)
