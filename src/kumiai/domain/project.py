"""A project's lifecycle: proposed -> active -> closed. Nothing else is allowed."""

from enum import StrEnum

from kumiai.domain.errors import InvalidInput, StateError


class ProjectStatus(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    CLOSED = "closed"


_NEXT: dict[ProjectStatus, set[ProjectStatus]] = {
    ProjectStatus.PROPOSED: {ProjectStatus.ACTIVE, ProjectStatus.CLOSED},
    ProjectStatus.ACTIVE: {ProjectStatus.CLOSED},
    ProjectStatus.CLOSED: set(),
}


def transition(project: str, current: ProjectStatus, target: ProjectStatus) -> ProjectStatus:
    """Return the new status, or say why the move is not allowed."""
    if target not in _NEXT[current]:
        raise StateError(
            f"project {project!r} is {current.value} and cannot become {target.value}; "
            f"a {current.value} project can only become: "
            + (", ".join(sorted(s.value for s in _NEXT[current])) or "nothing (it is final)")
        )
    return target


def require_active(project: str, status: ProjectStatus) -> None:
    """Data use and jobs need an approved, open project."""
    if status is not ProjectStatus.ACTIVE:
        hint = {
            ProjectStatus.PROPOSED: f"approve it first: kumiai project approve {project}",
            ProjectStatus.CLOSED: "a closed project cannot be reopened; propose a new one",
        }.get(status, "")
        raise StateError(f"project {project!r} is {status.value}, not active; {hint}")


def require_lead(project: str, lead: str, member: str, act: str) -> None:
    """Only a project's lead member (its proposer) answers for its money and milestones."""
    if member != lead:
        raise InvalidInput(
            f"only project {project!r}'s lead member, {lead}, may {act}; not {member!r}"
        )
