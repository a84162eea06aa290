"""The user's own policy over their agent's suggestions, enforced on their device.

A suggestion is made only when all of these hold (`guard`):

- its predicted rating is at least the policy's threshold (4.0 stars by default);
- none of its genres is one the user blocked (block "Horror", and a horror comedy is out);
- the hour now (UTC) is not one of the user's quiet hours, which are taken from the user's
  own rating timestamps: the hours of the day in which they have never rated anything
  (`quiet_hours_from`). A user who rated only between 18:00 and 23:59 gets no suggestion at
  3 in the morning;
- no more than `max_per_day` suggestions are made in one UTC day, counting those already
  made today.

When nothing can be suggested, the reason says which rule stopped it (a quiet hour, the
daily limit, every candidate blocked or below the threshold). `violations` is the same
policy written as a check over a finished list, so a property test can hold `guard` to it.

Nothing here does I/O; `now` is given.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kumiai.domain.errors import InvalidInput

DEFAULT_THRESHOLD = 4.0
DEFAULT_MAX_PER_DAY = 3


@dataclass(frozen=True)
class Policy:
    """What the user allows their agent to suggest, and when."""

    threshold: float = DEFAULT_THRESHOLD
    blocked_genres: frozenset[str] = field(default_factory=frozenset)
    quiet_hours: frozenset[int] = field(default_factory=frozenset)
    max_per_day: int = DEFAULT_MAX_PER_DAY

    def __post_init__(self) -> None:
        if self.max_per_day < 0:
            raise InvalidInput(f"--max-per-day must be 0 or more, got {self.max_per_day}")
        if any(not 0 <= h <= 23 for h in self.quiet_hours):
            raise InvalidInput(f"quiet hours must be 0..23, got {sorted(self.quiet_hours)}")

    def as_dict(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "blocked_genres": sorted(self.blocked_genres),
            "quiet_hours": sorted(self.quiet_hours),
            "max_per_day": self.max_per_day,
        }


@dataclass(frozen=True)
class Candidate:
    item: int
    score: float
    genres: tuple[str, ...]


@dataclass(frozen=True)
class Guarded:
    suggestions: list[Candidate]
    reason: str | None = None  # why there are none (or fewer than asked), for the user


def quiet_hours_from(timestamps: Iterable[int]) -> frozenset[int]:
    """The UTC hours of the day in which the user has never rated anything."""
    active = {datetime.fromtimestamp(int(t), UTC).hour for t in timestamps}
    return frozenset(range(24)) - active if active else frozenset()


def guard(
    ranked: Sequence[Candidate], policy: Policy, *, now: datetime, already_today: int
) -> Guarded:
    """The best candidates (`ranked` best first) the policy allows now."""
    if now.astimezone(UTC).hour in policy.quiet_hours:
        return Guarded(
            [],
            f"{now.astimezone(UTC):%H}:00 UTC is one of your quiet hours (you never rate at this "
            "hour); ask again later",
        )
    left = policy.max_per_day - already_today
    if left <= 0:
        return Guarded(
            [], f"today's {policy.max_per_day} suggestion(s) were already made; ask tomorrow"
        )
    above = [c for c in ranked if c.score >= policy.threshold]
    if not above:
        return Guarded([], f"no item is predicted at or above your threshold {policy.threshold:g}")
    allowed = [c for c in above if not policy.blocked_genres.intersection(c.genres)]
    if not allowed:
        return Guarded(
            [],
            f"every item above your threshold is in a blocked genre "
            f"({', '.join(sorted(policy.blocked_genres))})",
        )
    return Guarded(allowed[:left])


def violations(
    suggestions: Sequence[Candidate], policy: Policy, *, now: datetime, already_today: int
) -> list[str]:
    """Every way a finished list breaks the policy (empty: it keeps it)."""
    found = []
    if suggestions and now.astimezone(UTC).hour in policy.quiet_hours:
        found.append("suggested in a quiet hour")
    if suggestions and already_today + len(suggestions) > policy.max_per_day:
        found.append("over the daily limit")
    for c in suggestions:
        if c.score < policy.threshold:
            found.append(f"item {c.item} below the threshold")
        if policy.blocked_genres.intersection(c.genres):
            found.append(f"item {c.item} in a blocked genre")
    if len({c.item for c in suggestions}) < len(suggestions):
        found.append("an item suggested twice")
    return found


def genres_that_drove(
    genres: Sequence[str], own: Sequence[tuple[Sequence[str], float]], *, liked: float = 4.0
) -> list[str]:
    """The suggested item's genres the user rates highly, most liked first.

    `own` is the user's own (genres, rating) pairs. A genre drove the suggestion when the
    user's own mean rating of it is at least `liked`; with none, the genres the user rated
    most often. Example: a user who rates comedies 4.5 on average and dramas 3 sees
    "Comedy" as the reason for a comedy-drama.
    """
    totals: dict[str, list[float]] = {}
    for item_genres, rating in own:
        for g in item_genres:
            totals.setdefault(g, []).append(rating)
    mine = [g for g in genres if g in totals]
    mean = {g: sum(totals[g]) / len(totals[g]) for g in mine}
    driving = sorted((g for g in mine if mean[g] >= liked), key=lambda g: (-mean[g], g))
    if driving:
        return driving
    return sorted(mine, key=lambda g: (-len(totals[g]), g))[:2]
