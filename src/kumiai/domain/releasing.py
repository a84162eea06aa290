"""When a node on its own machine gives up the ε a job reserved, and what the coordinator
records when the node says so.

Across organisations the coordinator cannot reach into a member's node to release a
reservation: the node pulls instead. It asks the coordinator how each job it holds ε for
stands, and releases when the job is over, or when the reservation has not moved for a
while whatever the coordinator says (a coordinator that answers "running" forever cannot
pin a member's budget). Releasing only gives up the right to spend more on a job, so a
coordinator that lies "it is over" can only make the node stop taking part.

The node then reports the job's spend. The coordinator's mirror only ever rises to it
(`domain.recovery.shortfall`, the rule of every job end): a report below the mirror, over
the reservation, or not a finite number is refused.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from kumiai.domain.budget import JobSpend
from kumiai.domain.errors import InvalidInput
from kumiai.domain.job import JobStatus
from kumiai.domain.recovery import Recorded, Recovered, shortfall

AWAITING_NODE = "awaiting-node"  # a mirror row whose node releases it when it checks in
ENDED = "ended"
HOLDING = frozenset({"running", AWAITING_NODE})  # mirror rows whose unspent ε is still held
OVER = frozenset({JobStatus.COMPLETED.value, JobStatus.FAILED.value})
STALE_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class Touch:
    """A reservation as the node last saw it move: (reserved, spent, rounds) and since when."""

    mark: tuple[float, float, int]
    since: datetime


def touched(previous: Touch | None, mark: tuple[float, float, int], now: datetime) -> Touch:
    """The reservation's last movement: `now` if it moved (or is new), else unchanged."""
    if previous is None or previous.mark != mark:
        return Touch(mark, now)
    return previous


def why_release(
    status: str | None, touch: Touch, now: datetime, stale_after: timedelta = STALE_AFTER
) -> str | None:
    """Why the node should release a reservation now, or None to keep holding it.

    `status` is the coordinator's answer about the job (None: it knows no such job). The
    clock is the node's own: the coordinator cannot make a reservation look fresh.
    """
    if status is None:
        return "the coordinator knows no such job"
    if status in OVER:
        return f"the job is {status}"
    idle = now - touch.since
    if idle >= stale_after:
        hours = idle.total_seconds() / 3600
        return (
            f"the coordinator says {status}, but nothing was spent on it for {hours:.1f} h "
            f"(--stale-after {stale_after.total_seconds() / 3600:g} h)"
        )
    return None


def release_report(
    job: str,
    dataset: str,
    recorded: Recorded,
    planned: float,
    spent: float,
    rounds: int,
) -> Recovered | None:
    """Check a node's report of a released job's spend against the mirror; what to raise.

    Refused (InvalidInput, naming the figures) when it would lower the mirror, exceed what
    was reserved, or is not a finite, non-negative number: a release never erases spend.
    """
    if not (math.isfinite(spent) and spent >= 0 and rounds >= 0):
        raise InvalidInput(
            f"the release report for job {job} on {dataset!r} gives ε={spent} over {rounds} "
            "round(s); both must be finite and not negative"
        )
    if spent < recorded.epsilon or rounds < recorded.rounds:
        raise InvalidInput(
            f"the release report for job {job} on {dataset!r} gives ε={spent} after {rounds} "
            f"round(s), below the ε={recorded.epsilon} after {recorded.rounds} already "
            "recorded; a release never lowers recorded spend"
        )
    if spent > planned + 1e-9:
        raise InvalidInput(
            f"the release report for job {job} on {dataset!r} gives ε={spent}, over the "
            f"ε={planned} reserved; the node's guard never spends past its reservation"
        )
    return shortfall(job, dataset, recorded, JobSpend("", spent=spent, rounds=rounds))
