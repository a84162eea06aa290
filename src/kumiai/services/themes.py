"""Themes: a seat holder adds one, projects are put under one, the board ranks them by vote.

Who adds a theme: once the charter is adopted, a board seat holder (themes steer the
association's money, so the board owns the list); before it, any member (there is no
board yet, as with the old single-member project approval). The entry is signed at the
adding member's node.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import MemberRow, ProjectRow, ProjectThemeRow, ThemeRow
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.theme import check_theme, ranking_of
from kumiai.services.charter import adopted_charter
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get


@dataclass(frozen=True)
class ThemeInfo:
    name: str
    title: str
    description: str
    created_by: str
    created_at: datetime
    rank: int | None  # 1 = the board's first priority; None before any ranking
    ranked_by: str | None  # the set-priorities motion
    projects: tuple[str, ...]


def _info(session: Session, row: ThemeRow) -> ThemeInfo:
    projects = tuple(
        session.scalars(
            select(ProjectThemeRow.project)
            .where(ProjectThemeRow.theme == row.name)
            .order_by(ProjectThemeRow.project)
        )
    )
    return ThemeInfo(
        row.name,
        row.title,
        row.description,
        row.created_by,
        row.created_at,
        row.rank,
        row.ranked_by,
        projects,
    )


def require_seat(session: Session, member: str, act: str) -> None:
    """After adoption, only a board seat holder may do this act."""
    get(session, MemberRow, member)
    charter = adopted_charter(session)
    if charter is not None and member not in charter.seats:
        raise InvalidInput(
            f"{member!r} holds no board seat, and only a seat holder may {act} "
            f"({', '.join(charter.seats)})"
        )


def add_theme(
    consortium: Consortium, *, name: str, title: str, description: str = "", by: str
) -> ThemeInfo:
    check_theme(name, title)
    with transaction(consortium.sessions) as session:
        require_seat(session, by, "add a theme")
        if session.get(ThemeRow, name) is not None:
            raise InvalidInput(f"theme {name!r} already exists; see `kumiai theme show {name}`")
        row = ThemeRow(
            name=name,
            title=title.strip(),
            description=description.strip(),
            created_by=by,
            created_at=utc_now(),
        )
        session.add(row)
        session.flush()
        payload = {"theme": name, "title": row.title, "description": row.description}
        consortium.ledger.append(session, Act(by, "theme.created", payload, member=by))
        return _info(session, row)


def put_under_theme(
    consortium: Consortium, session: Session, project: str, theme: str, by: str
) -> None:
    """Record the project's theme (replacing any earlier one) with its signed entry."""
    get(session, ThemeRow, theme)
    current = session.get(ProjectThemeRow, project)
    if current is not None and current.theme == theme:
        raise InvalidInput(f"project {project!r} is already under theme {theme!r}")
    if current is None:
        session.add(ProjectThemeRow(project=project, theme=theme))
    else:
        current.theme = theme
    session.flush()
    payload = {"project": project, "theme": theme}
    consortium.ledger.append(
        session, Act(by, "project.themed", payload, member=by, project=project)
    )


def set_project_theme(consortium: Consortium, project: str, theme: str, by: str) -> ThemeInfo:
    """The project's lead member (its proposer) or a seat holder puts it under a theme."""
    with transaction(consortium.sessions) as session:
        row = get(session, ProjectRow, project)
        if by != row.proposed_by:
            require_seat(session, by, f"theme project {project!r} (or its lead, {row.proposed_by})")
        get(session, MemberRow, by)
        put_under_theme(consortium, session, project, theme, by)
        return _info(session, get(session, ThemeRow, theme))


def project_theme(session: Session, project: str) -> str | None:
    row = session.get(ProjectThemeRow, project)
    return row.theme if row else None


def list_themes(consortium: Consortium) -> list[ThemeInfo]:
    """Ranked themes first, by rank; then the unranked, by name."""
    with transaction(consortium.sessions) as session:
        rows = session.scalars(select(ThemeRow)).all()
        ordered = sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, r.name))
        return [_info(session, r) for r in ordered]


def show_theme(consortium: Consortium, name: str) -> ThemeInfo:
    with transaction(consortium.sessions) as session:
        return _info(session, get(session, ThemeRow, name))


def check_ranking(session: Session, payload: dict[str, Any]) -> tuple[str, ...]:
    """A set-priorities motion must rank every theme there is, each once."""
    return ranking_of(payload["ranking"], list(session.scalars(select(ThemeRow.name))))


def rank_by_motion(
    consortium: Consortium, session: Session, payload: dict[str, Any], motion: str
) -> None:
    """Carry out a passed set-priorities motion: the themes take its order."""
    ranking = check_ranking(session, payload)
    for place, name in enumerate(ranking, start=1):
        row = get(session, ThemeRow, name)
        row.rank, row.ranked_by = place, motion
    session.flush()
    entry = {"ranking": list(ranking), "motion": motion}
    consortium.ledger.append(session, Act(COORDINATOR, "theme.ranked", entry))
