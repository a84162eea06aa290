"""A project's compute quota: rounds x sites ("site-rounds"), from its allocations.

One round on one site is one site-round; a 30-round job on 3 sites asks for 90. The quota is
the sum of the `site_rounds` of the project's allocations; a project none of whose
allocations names one has no quota. The coordinator refuses a job that would take the
project past its quota before the job starts, so nothing runs and no node reserves ε.
"""

from kumiai.domain.errors import StateError

# The states in which a site took part in a job (admitted; "left" = stopped mid-way).
ADMITTED = frozenset({"participating", "left"})
# The states in which a site of a running job may still take part.
MAY_RUN = ADMITTED | {"pending"}


def job_usage(status: str, planned: int, completed: int, sites: int) -> int:
    """The site-rounds a job counts against the quota.

    A running job holds its whole plan (planned rounds x the sites that may still run); a
    finished one, completed or failed, counts the rounds it actually ran x the sites its
    nodes admitted. A job that failed before its first round counts nothing.
    """
    return (planned if status == "running" else completed) * sites


class QuotaExceeded(StateError):
    """A job refused for its project's compute quota."""

    def __init__(self, project: str, quota: int, used: int, asked: int) -> None:
        self.project, self.quota, self.used, self.asked = project, quota, used, asked
        super().__init__(
            f"project {project!r} is over its compute quota: quota {quota} site-rounds, "
            f"used {used}, asked {asked} (rounds x sites), {max(quota - used, 0)} left; "
            "ask the board for more with an allocate-funds motion naming site_rounds, "
            "or train fewer rounds"
        )

    def document(self) -> dict[str, int]:
        return {"site_rounds": self.quota, "used": self.used, "asked": self.asked}


def check_quota(project: str, quota: int | None, used: int, asked: int) -> None:
    """Refuse a job whose site-rounds would take the project past its quota."""
    if quota is not None and used + asked > quota:
        raise QuotaExceeded(project, quota, used, asked)
