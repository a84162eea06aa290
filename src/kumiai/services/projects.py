"""Projects: a researcher proposes, the board approves, and eventually someone closes."""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    CharterRow,
    MemberRow,
    MotionRow,
    ProjectMemberRow,
    ProjectRow,
    ThemeRow,
)
from kumiai.domain.charter import Decision
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, StateError
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.names import check_slug
from kumiai.domain.project import ProjectStatus, require_active, transition
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import all_rows, get
from kumiai.services.themes import put_under_theme

_ADOPTED = select(CharterRow.version).where(CharterRow.adopted_at.is_not(None)).limit(1)


@dataclass(frozen=True)
class ProjectInfo:
    name: str
    title: str
    purpose: str
    status: str
    proposed_by: str
    members: tuple[str, ...]
    approved_by: str | None  # the member who approved it, before a charter was adopted
    created_at: datetime
    approved_by_motion: str | None = None  # or the board's passed approve-project motion


def _info(session, row: ProjectRow) -> ProjectInfo:  # type: ignore[no-untyped-def]
    members = tuple(
        session.scalars(
            select(ProjectMemberRow.member)
            .where(ProjectMemberRow.project == row.name)
            .order_by(ProjectMemberRow.member)
        )
    )
    return ProjectInfo(
        row.name,
        row.title,
        row.purpose,
        row.status,
        row.proposed_by,
        members,
        row.approved_by,
        row.created_at,
        _approving_motion(session, row.name) if row.approved_at and not row.approved_by else None,
    )


def _approving_motion(session, project: str) -> str | None:  # type: ignore[no-untyped-def]
    rows = session.scalars(
        select(MotionRow).where(
            MotionRow.decision == Decision.APPROVE_PROJECT.value, MotionRow.status == "passed"
        )
    )
    return next((r.id for r in rows if json.loads(r.payload_json).get("project") == project), None)


def propose_project(
    consortium: Consortium,
    *,
    name: str,
    title: str,
    purpose: str,
    proposed_by: str,
    members: tuple[str, ...] = (),
    theme: str | None = None,
) -> ProjectInfo:
    """`theme` puts the project under a theme, with a `project.themed` entry right after."""
    check_slug(name, "project")
    if not purpose.strip():
        raise InvalidInput("a project needs a purpose; stewards consent to a stated purpose")
    with transaction(consortium.sessions) as session:
        if session.get(ProjectRow, name) is not None:
            raise InvalidInput(f"project {name!r} already exists; choose another name")
        if theme is not None:
            get(session, ThemeRow, theme)  # before anything is written or signed
        for member in {proposed_by, *members}:
            get(session, MemberRow, member)
        row = ProjectRow(
            name=name,
            title=title or name,
            purpose=purpose.strip(),
            proposed_by=proposed_by,
            status=ProjectStatus.PROPOSED.value,
            created_at=utc_now(),
        )
        session.add(row)
        session.flush()
        for member in sorted({proposed_by, *members}):
            session.add(ProjectMemberRow(project=name, member=member))
        session.flush()
        info = _info(session, row)
        consortium.ledger.append(
            session,
            Act(
                proposed_by,
                "project.proposed",
                {
                    "project": name,
                    "title": info.title,
                    "purpose": info.purpose,
                    "members": list(info.members),
                },
                member=proposed_by,
                project=name,
            ),
        )
        if theme is not None:
            put_under_theme(consortium, session, name, theme, proposed_by)
        return info


def _move(consortium: Consortium, name: str, target: ProjectStatus, by: str) -> ProjectInfo:
    with transaction(consortium.sessions) as session:
        row = get(session, ProjectRow, name)
        get(session, MemberRow, by)
        if target is ProjectStatus.ACTIVE and session.scalar(_ADOPTED) is not None:
            raise StateError(
                f"the charter is adopted: project {name!r} becomes active only by a board vote; "
                f"propose it with `kumiai motion propose approve-project --set project={name} "
                "--by SEAT`"
            )
        row.status = transition(name, ProjectStatus(row.status), target).value
        now = utc_now()
        if target is ProjectStatus.ACTIVE:
            row.approved_by, row.approved_at = by, now
        else:
            row.closed_at = now
        kind = "project.approved" if target is ProjectStatus.ACTIVE else "project.closed"
        consortium.ledger.append(session, Act(by, kind, {"project": name}, member=by, project=name))
        return _info(session, row)


def activate_by_motion(consortium: Consortium, session: Session, name: str, motion: str) -> None:
    """Carry out a passed approve-project motion, in the transaction that closes it."""
    row = get(session, ProjectRow, name)
    row.status = transition(name, ProjectStatus(row.status), ProjectStatus.ACTIVE).value
    row.approved_at = utc_now()  # approved_by stays empty: the board, not one member
    payload = {"project": name, "motion": motion}
    consortium.ledger.append(session, Act(COORDINATOR, "project.approved", payload, project=name))


def approve_project(consortium: Consortium, name: str, approved_by: str) -> ProjectInfo:
    return _move(consortium, name, ProjectStatus.ACTIVE, approved_by)


def close_project(consortium: Consortium, name: str, closed_by: str) -> ProjectInfo:
    return _move(consortium, name, ProjectStatus.CLOSED, closed_by)


def list_projects(consortium: Consortium) -> list[ProjectInfo]:
    with transaction(consortium.sessions) as session:
        return [_info(session, r) for r in all_rows(session, ProjectRow, ProjectRow.name)]


def job_starter(session: Session, project: str, by: str | None) -> tuple[ProjectRow, str]:
    """An active project and the member starting a job on it: its proposer by default, and
    only ever one of its members (every job kind starts the same way)."""
    row = get(session, ProjectRow, project)
    require_active(project, ProjectStatus(row.status))
    by = by or row.proposed_by
    if session.get(ProjectMemberRow, (project, by)) is None:
        raise InvalidInput(
            f"{by!r} is not a member of project {project!r}; only its members start jobs"
        )
    return row, by
